// A socket file that accepts a connection, and is the same file afterwards, is held, whatever
// /proc/net/unix here lists: the table shows the path a socket was bound at, which its binder may
// make look like another spelling of the lock's file. Whether the table lists it only changes the
// wording and whom it names.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, renameSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { acquireLock, inspectLock, LockHeldError } from '../../src/index.ts';
import { ensureSocketDir } from '../../src/interlock/socket-file.ts';
import { giveToNobody, NOBODY_UID, nobodyUnavailable, spawnTsAsNobody } from '../helpers/as-nobody.ts';
import { freePort } from '../helpers/free-port.ts';
import { interlockMode } from '../helpers/interlock-mode.ts';
import { finished, fixture, lineMatching, spawnTracked } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

// These force the socket file: run once, in the default run, not again in each PORTLOCK_INTERLOCK run.
const skip =
  (process.platform !== 'linux' && '/proc/net/unix is Linux') ||
  (interlockMode !== 'auto' && `these force the socket file; this run uses PORTLOCK_INTERLOCK=${interlockMode}`) ||
  nobodyUnavailable();

// This file's own host-wide socket directory (a test never touches /tmp/.portlock).
const parent = tempDir('portlock-sockets-');
chmodSync(parent, 0o755);
const socketDir = join(parent, 'sockets');
if (!skip) process.env.PORTLOCK_SOCKET_DIR = socketDir;

describe('a live socket at a lock socket file that the table here lists under another path', { skip }, () => {
  it("nobody's socket, linked into the slot, its own directory then made a link to the socket directory: held", {
    timeout: 60_000,
  }, async () => {
    ensureSocketDir(socketDir, true);
    const port = await freePort();
    const dir = tempDir();
    const own = join(parent, `nobody-${port}`);
    mkdirSync(own);
    giveToNobody(own);
    const slot = join(socketDir, `port-${port}.sock`);
    const bindAt = Buffer.from(join(own, `port-${port}.sock`), 'latin1').toString('hex');
    const squatter = spawnTsAsNobody(fixture('squatter.ts'), [
      JSON.stringify({ names: [bindAt], linkAt: slot, answer: { pid: 1, name: 'percy' } }),
    ]);
    try {
      const ready = JSON.parse(await lineMatching(squatter, /"ready":true/)) as { pid: number };
      // The table's path of the squatter's socket now leads to the socket directory.
      renameSync(own, `${own}.old`);
      symlinkSync(socketDir, own);
      const inspection = await inspectLock({ port, dir, interlock: 'socket-file' });
      assert.equal(inspection.state, 'held', inspection.reason);
      assert.equal(inspection.unlistedSocket?.uid, NOBODY_UID);
      assert.equal(inspection.unlistedSocket?.listedAs, join(own, `port-${port}.sock`));
      assert.deepEqual(
        inspection.holders?.map((holder) => holder.pid),
        [ready.pid],
      );
      await assert.rejects(acquireLock({ port, dir, interlock: 'socket-file' }), (error: unknown) => {
        assert.ok(error instanceof LockHeldError, String(error));
        assert.doesNotMatch(error.message, /just leaving/);
        return true;
      });
    } finally {
      squatter.stdin?.end();
      await finished(squatter);
    }
  });
});

describe('a socket directory reached through a symbolic link on the way', { skip }, () => {
  it('a holder that names it by the link and a reader that names it by its real path meet at one socket', {
    timeout: 60_000,
  }, async () => {
    ensureSocketDir(socketDir, true);
    const port = await freePort();
    const dir = tempDir();
    const link = join(parent, `link-${port}`);
    symlinkSync(parent, link);
    const holder = spawnTracked(
      process.execPath,
      ['--import', 'tsx', fixture('holder.ts'), JSON.stringify({ port, dir: tempDir(), interlock: 'socket-file' })],
      { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, PORTLOCK_SOCKET_DIR: join(link, 'sockets') } },
    );
    try {
      await lineMatching(holder, /"ready":true/);
      const inspection = await inspectLock({ port, dir, interlock: 'socket-file' });
      assert.equal(inspection.state, 'held', inspection.reason);
      assert.equal(inspection.unlistedSocket, undefined, inspection.reason);
      assert.deepEqual(
        inspection.holders?.map((found) => found.pid),
        [holder.pid],
      );
      await assert.rejects(acquireLock({ port, dir, interlock: 'socket-file' }), (error: unknown) => {
        assert.ok(error instanceof LockHeldError, String(error));
        assert.doesNotMatch(error.message, /just leaving/);
        return true;
      });
    } finally {
      holder.stdin?.end();
      await finished(holder);
    }
  });
});
