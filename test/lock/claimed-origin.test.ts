import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stopLock } from '../../src/index.ts';
import { nobodyUnavailable, runTsAsNobody } from '../helpers/as-nobody.ts';
import { freePort } from '../helpers/free-port.ts';
import { interlockMode, interlockOnly } from '../helpers/interlock-mode.ts';
import { refusalOf } from '../helpers/refusal.ts';
import { fixture } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

// Where an orphaned holder got the lock from is read from the environment it was started with
// (PORTLOCK_HANDOFF, PORTLOCK_RUN_PID), which any process sets for itself: another user's is told
// as that process's account, never as fact.
// The planted holder keeps the port's abstract name, or in a socket-file run, its socket file.
describe('an orphaned holder of another user whose environment names a giver', {
  skip: nobodyUnavailable() ?? interlockOnly,
}, () => {
  it("is said to claim it, not to have inherited the lock from root's pid 1; stop --force signals nothing", async () => {
    const port = await freePort();
    const dir = tempDir('portlock-claimed-origin-');
    const planted = await runTsAsNobody(fixture('claimed-orphan.ts'), [String(port), interlockMode]);
    assert.equal(planted.code, 0, planted.stderr);
    const sleeper = Number(planted.stdout.trim());
    try {
      const error = await refusalOf({ port, dir, wait: 0 });
      assert.doesNotMatch(error.message, /inherited the lock/);
      assert.match(
        error.message,
        new RegExp(
          `held by pid ${sleeper} \\(sleep 30, user nobody\\) through the kernel interlock, with no lock file \\(its environment says portlock run, pid 1, handed it the lock\\)`,
        ),
      );
      const stopped = await stopLock({ port, dir, force: true, timeout: 500 });
      assert.deepEqual(stopped.signalled, [], stopped.reason);
    } finally {
      try {
        process.kill(sleeper, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
  });
});
