import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { acquireLock, LockHeldError, stopLock } from '../../src/index.ts';
import { portLockTarget } from '../helpers/lock-target.ts';
import { liveProcess, writeRecord } from '../helpers/records.ts';

const linux = process.platform === 'linux';
const FUTURE = new Date(Date.now() + 365 * 86_400_000).toISOString();

describe('a seed-format record whose startedAt cannot be true, naming a live process that is not its holder', {
  skip: !linux && 'needs /proc for start times',
}, () => {
  for (const [what, startedAt] of [
    ['in the future', FUTURE],
    ['unparseable', 'the day before yesterday'],
  ] as const) {
    it(`startedAt ${what}: unknown (likely at most), the refusal says how to clear it, and stop --force signals nothing`, async () => {
      const { dir, port, path } = await portLockTarget();
      const bystander = await liveProcess();
      // Written after the bystander started: nothing shows that the bystander is not its writer.
      writeRecord(path, { pid: bystander.pid, port, startedAt });
      const error = await acquireLock({ port, dir }).then(
        () => assert.fail('took a lock whose record names a live process'),
        (failure: unknown) => failure,
      );
      assert.ok(error instanceof LockHeldError);
      assert.equal(error.certainty, 'likely');
      assert.equal(error.state, 'unknown');
      assert.match(error.reason, /(lies in the future|is not a time), so nothing confirms it/);
      assert.ok(error.message.includes(`remove ${path}`), error.message);

      const stopped = await stopLock({ port, dir, force: true, timeout: 200 });
      assert.deepEqual(stopped.signalled, []);
      assert.equal(bystander.child.exitCode, null);
      assert.equal(bystander.child.signalCode, null, 'the bystander was not signalled');
    });

    it(`startedAt ${what}: reclaimed once the lock file is older than the process its pid names`, async () => {
      const { dir, port, path } = await portLockTarget();
      const bystander = await liveProcess();
      // Last written a minute ago: before the bystander started, so the bystander did not write it.
      writeRecord(path, { pid: bystander.pid, port, startedAt }, 60_000);
      const lock = await acquireLock({ port, dir });
      await lock.release();
      assert.equal(bystander.child.signalCode, null);
    });
  }
});
