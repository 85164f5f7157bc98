// Any user may make a user and network namespace of their own (`unshare -rn`) and bind a socket
// at a port's path in the shared socket directory from there. Its answers may claim this network
// namespace (and any pid): /proc/net/unix here, which lists this namespace's sockets alone, does
// not list it, and that, with the connection it accepts, is the kernel's word that it is held from
// elsewhere. It is reported by what the kernel says, and sent neither a token nor a signal.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { acquireLock, inspectLock, LockHeldError, listLocks, lockPathFor, stopLock } from '../../src/index.ts';
import { ensureSocketDir } from '../../src/interlock/socket-file.ts';
import { portSocketDir } from '../../src/interlock/socket-file-path.ts';
import { cli } from '../cli/_support.ts';
import {
  NOBODY_UID,
  nobodyUnavailable,
  ownNamespacesRefused,
  squatAsNobodyInOwnNamespaces,
} from '../helpers/as-nobody.ts';
import { freePort } from '../helpers/free-port.ts';
import { interlockMode } from '../helpers/interlock-mode.ts';
import { deadRecord, writeRecord } from '../helpers/records.ts';
import { finished, lineMatching, onLines } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const skip =
  (interlockMode !== 'socket-file' &&
    `it tests the socket-file interlock; this run uses PORTLOCK_INTERLOCK=${interlockMode}`) ||
  (process.platform !== 'linux' && 'network namespaces are Linux') ||
  nobodyUnavailable() ||
  ownNamespacesRefused();

if (!skip && process.env.PORTLOCK_SOCKET_DIR === undefined) {
  // Run alone, not by .ci/run: a socket directory of this file's own, reachable by nobody.
  const parent = tempDir('portlock-sockets-');
  chmodSync(parent, 0o755);
  process.env.PORTLOCK_SOCKET_DIR = join(parent, 'sockets');
}

describe("a squatter in a network namespace of its own, at a port's socket file", { skip }, () => {
  it('is reported by what the kernel says, held; never sent a token or a signal; run refused, stop fails', {
    timeout: 60_000,
  }, async () => {
    const port = await freePort();
    const dir = tempDir();
    ensureSocketDir(portSocketDir(), true);
    const path = join(portSocketDir(), `port-${port}.sock`);
    // It claims this network namespace, and pid 1.
    const answer = {
      pid: 1,
      name: 'percy',
      netns: readlinkSync('/proc/self/ns/net'),
      startedAt: new Date().toISOString(),
    };
    const names = [Buffer.from(path, 'latin1').toString('hex')];
    const squatter = squatAsNobodyInOwnNamespaces({ names, answer });
    const heard: string[] = [];
    try {
      const ready = JSON.parse(await lineMatching(squatter, /"ready":true/)) as { pid: number };
      onLines(squatter, (line) => heard.push(line));

      const inspection = await inspectLock({ port, dir });
      assert.equal(inspection.state, 'held', inspection.reason);
      assert.deepEqual(inspection.unlistedSocket, { path, uid: NOBODY_UID, user: 'nobody' });
      assert.equal(inspection.holders?.[0]?.pid, ready.pid, 'the kernel shows the process that holds it');
      assert.equal(inspection.holders?.[0]?.uid, NOBODY_UID);
      assert.equal(inspection.claim?.pid, 1);
      assert.equal(inspection.record, undefined, 'a claim is never shown as the record');
      assert.match(
        inspection.reason,
        /does not list it under this path: it was bound in another network namespace, or at another path/,
      );

      const status = await cli(['status', String(port), '--dir', dir]);
      assert.equal(status.code, 0, status.stdout + status.stderr);
      assert.match(status.stdout, /running: .*user nobody.*another network namespace/);

      await assert.rejects(acquireLock({ port, dir }), (error: unknown) => {
        assert.ok(error instanceof LockHeldError, String(error));
        assert.doesNotMatch(error.message, /just leaving/);
        assert.match(error.message, new RegExp(`Socket file: ${path} \\(owned by nobody, uid ${NOBODY_UID}\\)`));
        // Each pid labelled with its own user; its live socket file is never offered for removal.
        assert.match(error.message, new RegExp(`Next step: stop pid ${ready.pid} \\(nobody's\\)`));
        assert.doesNotMatch(error.message, /rm |remove/);
        return true;
      });

      // A record of root's own, left by a dead holder: the socket file's holder, not the record, decides.
      writeRecord(
        lockPathFor({ port, dir }),
        await deadRecord({ port, interlock: true, interlockKind: 'socket-file' }),
      );
      const [listed] = await listLocks({ dir });
      assert.equal(listed?.state, 'held', listed?.reason);
      assert.equal(listed?.unlistedSocket?.uid, NOBODY_UID);

      const stopped = await stopLock({ port, dir, force: true, timeout: 500 });
      assert.equal(stopped.outcome, 'still-running', stopped.reason);
      assert.deepEqual(stopped.signalled, []);
      const stop = await cli(['stop', String(port), '--dir', dir, '--force']);
      assert.notEqual(stop.code, 0, stop.stdout + stop.stderr);
      assert.match(
        stop.stderr,
        new RegExp(`Next step: stop pid ${ready.pid} \\(nobody's\\).*: kill ${ready.pid}; or use another port\\.`),
      );
      assert.doesNotMatch(stop.stderr, /rm |remove/, 'a live socket file is never offered for removal');
      assert.ok(existsSync(lockPathFor({ port, dir })), 'the record is left');
    } finally {
      squatter.stdin?.end();
      await finished(squatter);
    }
    // Everything it heard is in once it has exited: no stop request, so no token.
    assert.deepEqual(
      heard.filter((line) => line.includes('stop')),
      [],
    );
  });
});
