// A record vouches only for processes of the user who owns the record file (each process writes
// its own). One in nobody's lock directory, written by nobody, naming a live root process with its
// true start time, is a claim: never "running", never signalled, and said to be what it is.
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { EXIT } from '../../src/cli/exit-codes.ts';
import { acquireLock, inspectLock, LockHeldError, listLocks, lockPathFor, stopLock } from '../../src/index.ts';
import { cli } from '../cli/_support.ts';
import { giveToNobody, NOBODY_GID, NOBODY_UID, nobodyUnavailable, runTsAsNobody } from '../helpers/as-nobody.ts';
import { freePort } from '../helpers/free-port.ts';
import { liveProcess, recordFor, writeRecord } from '../helpers/records.ts';
import { finished, fixture, lineMatching, spawnTracked } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const CLAIM =
  /the record claims process (\d+), which runs as root \(uid 0\), not as nobody \(uid 65534\), who owns the lock file/;

describe("a record naming another user's live process", { skip: nobodyUnavailable() }, () => {
  it('is unknown, not running: status, list, inspect, stop and the refusal say the record cannot speak for it', {
    timeout: 60_000,
  }, async () => {
    // nobody's own lock directory, reachable by nobody.
    const parent = tempDir();
    chmodSync(parent, 0o755);
    const dir = join(parent, 'locks');
    mkdirSync(dir, { mode: 0o700 });
    giveToNobody(dir);
    const port = await freePort();
    const root = await liveProcess();
    const path = lockPathFor({ port, dir });
    // As nobody would write it: its file, naming root's process with its true start time.
    writeRecord(path, recordFor(root.pid, { port, user: 'root' }));
    chownSync(path, NOBODY_UID, NOBODY_GID);

    const inspection = await inspectLock({ port, dir });
    assert.equal(inspection.state, 'unknown', inspection.reason);
    assert.match(inspection.reason, CLAIM);
    const [listed] = await listLocks({ dir });
    assert.equal(listed?.state, 'unknown');

    const status = await cli(['status', String(port), '--dir', dir]);
    assert.equal(status.code, EXIT.unknown, status.stdout + status.stderr);
    assert.doesNotMatch(status.stdout, /running/);
    assert.match(status.stdout, CLAIM);

    const stopped = await stopLock({ port, dir, force: true, timeout: 200 });
    assert.notEqual(stopped.outcome, 'stopped');
    assert.notEqual(stopped.outcome, 'not-running');
    assert.deepEqual(stopped.signalled, []);
    assert.equal(root.child.exitCode, null, 'the root process was not signalled');
    const stop = await cli(['stop', String(port), '--dir', dir, '--force']);
    assert.notEqual(stop.code, 0);
    assert.match(stop.stderr, /Next step: /);

    // nobody itself, taking its own lock: refused (the claim is not believed, nor is it thrown
    // away), with the next step nobody can take: remove its own file.
    const tried = await runTsAsNobody(fixture('try-acquire.ts'), [JSON.stringify({ port, dir, inspect: false })]);
    const outcome = JSON.parse(tried.stdout.trim().split('\n').at(-1) ?? '{}') as {
      acquired: boolean;
      error?: { message: string };
    };
    assert.equal(outcome.acquired, false, tried.stdout + tried.stderr);
    assert.match(outcome.error?.message ?? '', CLAIM);
    assert.match(outcome.error?.message ?? '', new RegExp(`Next step: .*remove ${path}`));
    assert.ok(existsSync(path));
    root.child.kill('SIGKILL');
  });
});

describe('a holder that took its lock as root and then changed its user to nobody', {
  skip: nobodyUnavailable(),
}, () => {
  it("is unknown; the next step is to stop it if it is the holder, never to remove a live holder's file first", {
    timeout: 60_000,
  }, async () => {
    const dir = tempDir();
    const port = await freePort();
    const holder = spawnTracked(
      process.execPath,
      ['--import', 'tsx', fixture('drop-to-nobody.ts'), JSON.stringify({ port, dir })],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    try {
      await lineMatching(holder, /"ready":true/);
      const pid = holder.pid as number;
      const path = lockPathFor({ port, dir });
      const step = `Next step: pid ${pid} now runs as nobody: if it is the holder (it changed its user after taking the lock), stop it yourself (kill ${pid}); otherwise remove ${path}.`;
      const refused = await acquireLock({ port, dir, interlock: 'off' }).catch((error: unknown) => error);
      assert.ok(refused instanceof LockHeldError, String(refused));
      assert.ok(refused.message.includes(step), refused.message);
      const stop = await cli(['stop', String(port), '--dir', dir, '--force']);
      assert.equal(stop.code, EXIT.unknown, stop.stderr);
      assert.ok(stop.stderr.includes(step), stop.stderr);
      assert.equal(holder.exitCode, null, 'the holder was not signalled');
    } finally {
      holder.stdin?.end();
      await finished(holder);
    }
  });
});
