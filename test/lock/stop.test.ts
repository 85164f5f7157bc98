import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { stopLock } from '../../src/index.ts';
import { freePort } from '../helpers/free-port.ts';
import { startHolder } from '../helpers/holder.ts';
import { interlockMode, interlockOnly } from '../helpers/interlock-mode.ts';
import { liveProcess, recordFor, writeRecord } from '../helpers/records.ts';
import { finished, fixture, lineMatching, spawnTs } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const linuxOnly = { skip: process.platform !== 'linux' && 'the interlock is tested on Linux' };

describe('stopLock', linuxOnly, () => {
  it('with no time to wait, still sees a free interlock as free and signals nobody', async () => {
    const dir = tempDir();
    const port = await freePort();
    // An interlocked record whose pid now names an unrelated live process (PID reuse).
    const bystander = await liveProcess();
    writeRecord(join(dir, `agent-${port}.lock`), recordFor(bystander.pid, { port, interlock: true }));
    for (let round = 0; round < 20; round++) {
      const result = await stopLock({ port, dir, timeout: 0, force: true });
      assert.equal(result.outcome, 'not-running', result.reason);
      assert.deepEqual(result.signalled, []);
    }
    assert.equal(bystander.child.exitCode, null);
    assert.equal(bystander.child.signalCode, null);
  });

  it('takes a holder that agrees with no time left for stopping, not for silent', { skip: interlockOnly }, async () => {
    const dir = tempDir();
    const port = await freePort();
    const holder = await startHolder({ port, dir, stoppable: true });
    const result = await stopLock({ port, dir, timeout: 0 });
    // A question gets at least 0.1 s whatever the timeout. A holder kept off the CPU that long (a
    // loaded machine) is heard as silent: then the question must have had those 0.1 s, not 0.
    if (/does not answer/.test(result.reason)) {
      assert.match(result.reason, /did not answer within 0\.1 s\)$/);
      holder.child.kill('SIGKILL');
    } else {
      // Asked and agreed; whether it has gone yet is a race with a timeout of 0, but it was heard.
      assert.ok(['stopped', 'still-running'].includes(result.outcome), result.reason);
      if (result.outcome === 'still-running') assert.match(result.reason, /within 0 ms of agreeing to stop/);
    }
    await finished(holder.child);
  });

  it('gives a holder that does not answer no more than the timeout to answer', { skip: interlockOnly }, async () => {
    const dir = tempDir();
    const port = await freePort();
    // Holds the port's interlock (this run's: the abstract name, or the socket file) and never
    // answers: every question to it runs into its time limit.
    const socketFile = interlockMode === 'socket-file';
    const silent = spawnTs(fixture('silent-interlock.ts'), [JSON.stringify({ port, dir, socketFile })]);
    try {
      await lineMatching(silent, /"ready":true/);
      const kind = socketFile ? ({ interlock: true, interlockKind: 'socket-file' } as const) : {};
      writeRecord(join(dir, `agent-${port}.lock`), recordFor(silent.pid ?? 0, { port, ...kind }));
      const result = await stopLock({ port, dir, timeout: 300 });
      assert.equal(result.outcome, 'still-running');
      // Each question is cut off at what is left of the 300 ms, not at the usual second (and says so
      // as a round figure).
      const limits = [...result.reason.matchAll(/did not answer within ([\d.]+) (ms|s)\b/g)].map(
        (match) => Number(match[1]) * (match[2] === 's' ? 1000 : 1),
      );
      assert.ok(limits.length > 0, result.reason);
      assert.ok(
        limits.every((ms) => ms <= 300),
        result.reason,
      );
    } finally {
      silent.stdin?.end();
      await finished(silent);
    }
  });
});
