import assert from 'node:assert/strict';
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { inspectLock, stopLock } from '../../src/index.ts';
import { startHolder } from '../helpers/holder.ts';
import { fixture, lineMatching, spawnTs } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { cli, exited, place, staleRecord } from './_support.ts';

describe('portlock stop <port>', () => {
  it('says not running, exit 0, when nothing holds the port', async () => {
    const { dir, port } = await place();
    const result = await cli(['stop', String(port), '--dir', dir]);
    assert.deepEqual(result, {
      code: 0,
      stdout: `port ${port}: not running (nothing holds it: there is no lock file)\n`,
      stderr: '',
    });
    await staleRecord(join(dir, `agent-${port}.lock`));
    const stale = await cli(['stop', String(port), '--dir', dir, '--json']);
    assert.equal(stale.code, 0);
    assert.equal(JSON.parse(stale.stdout).outcome, 'not-running');
  });

  it('stops a holder that accepts stop requests, and confirms it has exited', async () => {
    const { dir, port } = await place();
    const holder = await startHolder({ port, dir, name: 'percy', stoppable: true });
    const result = await cli(['stop', String(port), '--dir', dir]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      new RegExp(
        `^port ${port}: stopped percy, pid ${holder.pid}, .*: the holder released the lock and exited \\(on request\\)\\n$`,
      ),
    );
    assert.notEqual(holder.child.exitCode, null, 'the holder has exited by the time stop returns');
  });

  it('does not signal a holder that refuses unless --force, then sends SIGTERM', async () => {
    const { dir, port } = await place();
    const holder = await startHolder({ port, dir });
    const polite = await cli(['stop', String(port), '--dir', dir]);
    assert.equal(polite.code, 1);
    assert.equal(polite.stdout, '');
    assert.match(
      polite.stderr,
      new RegExp(
        `^portlock: port ${port} is still held by portlock, pid ${holder.pid}, .*: the holder does not accept stop requests\\.$`,
        'm',
      ),
    );
    assert.match(
      polite.stderr,
      new RegExp(`^Next step: portlock stop ${port} --force \\(SIGTERM, then SIGKILL\\)\\.$`, 'm'),
    );
    assert.equal(holder.child.exitCode, null);

    const forced = await cli(['stop', String(port), '--dir', dir, '--force', '--json']);
    assert.equal(forced.code, 0, forced.stdout);
    const result = JSON.parse(forced.stdout);
    assert.equal(result.outcome, 'stopped');
    assert.equal(result.via, 'SIGTERM');
    assert.deepEqual(result.signalled, [holder.pid]);
    assert.equal((await exited(holder.child)).code, 0);
  });

  it('escalates to SIGKILL when SIGTERM is ignored, and ends the holder itself', async () => {
    const { dir, port } = await place();
    const child = spawnTs(fixture('cli-holder.ts'), [JSON.stringify({ port, dir })], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await lineMatching(child, /"ready":true/);
    // A second per step: the SIGKILLed holder is given that long to be torn down, even on a
    // loaded machine, before the stop would count it as still running. How long the stop takes
    // is measured by the benchmarks (bench/forced-stop.ts), not asserted here.
    const stop = await cli(['stop', String(port), '--dir', dir, '--force', '--timeout', '1', '--json']);
    assert.equal(stop.code, 0, stop.stderr);
    const result = JSON.parse(stop.stdout);
    assert.equal(result.outcome, 'stopped');
    assert.equal(result.via, 'SIGKILL');
    assert.match(
      result.reason,
      new RegExp(`after SIGKILL to pid ${child.pid}\\); its lock file ${dir}/agent-${port}\\.lock was removed$`),
    );
    // In this order, and no more: SIGTERM (ignored), then SIGKILL, after which the holder was gone.
    assert.deepEqual(result.processes, [{ pid: child.pid, signals: ['SIGTERM', 'SIGKILL'], outcome: 'exited' }]);
    // Ended by the stop's SIGKILL, not by the holder's own time limit (exit code 99).
    assert.deepEqual(await exited(child), { code: null, signal: 'SIGKILL' });
    // Killed, it could not remove its record: the stop removed it, the record it read.
    assert.deepEqual(await inspectLock({ port, dir }), {
      state: 'free',
      path: `${dir}/agent-${port}.lock`,
      reason: 'there is no lock file',
      certainty: 'certain',
    });
  });

  it("cannot authorise a stop through a lock directory that is not the holder's", async () => {
    const { dir, port } = await place();
    const holder = await startHolder({ port, dir });
    const result = await cli(['stop', String(port), '--dir', tempDir(), '--json']);
    assert.equal(result.code, 1);
    const { error } = JSON.parse(result.stdout);
    assert.equal(error.code, 'ESTILLRUNNING');
    // The holder names its own lock file, which holds the token: the one to act on.
    const file = join(dir, `agent-${port}.lock`);
    assert.ok(error.message.includes(`it is held through ${file} (another lock directory)`), error.message);
    assert.equal(error.before.record.pid, holder.pid);
    assert.equal(error.before.record.lockFile, file);
    holder.child.kill('SIGKILL');
  });

  it('leaves alone, exit 4, a lock it cannot judge from here', async () => {
    const { dir, port } = await place();
    symlinkSync('/nonexistent', join(dir, `agent-${port}.lock`));
    const result = await cli(['stop', String(port), '--dir', dir, '--force']);
    assert.equal(result.code, 4);
    assert.match(result.stderr, /cannot be stopped from here: the lock path is a symbolic link/);
  });

  it('stopLock rejects a bad timeout before doing anything', async () => {
    await assert.rejects(stopLock({ port: 1, timeout: -1 }), RangeError);
    await assert.rejects(stopLock({ port: 1, timeout: Number.POSITIVE_INFINITY }), RangeError);
    await assert.rejects(stopLock({ port: 0 }), RangeError);
  });
});
