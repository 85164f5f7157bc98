import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { stopLock } from '../../src/index.ts';
import { freePort } from '../helpers/free-port.ts';
import { recordFor, writeRecord } from '../helpers/records.ts';
import { finished, fixture, lineMatching, spawnTs } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const linuxOnly = { skip: process.platform !== 'linux' && 'the interlock is tested on Linux' };

describe('stopLock', linuxOnly, () => {
  it('gives a holder that does not answer no more than the timeout to answer', async () => {
    const dir = tempDir();
    const port = await freePort();
    // Holds the port's interlock and never answers: every question to it runs into its time limit.
    const silent = spawnTs(fixture('silent-interlock.ts'), [JSON.stringify({ port, dir })]);
    try {
      await lineMatching(silent, /"ready":true/);
      writeRecord(join(dir, `agent-${port}.lock`), recordFor(silent.pid ?? 0, { port }));
      const result = await stopLock({ port, dir, timeout: 300 });
      assert.equal(result.outcome, 'still-running');
      // Each question is cut off at what is left of the 300 ms, not at the usual second.
      const limits = [...result.reason.matchAll(/did not answer within (\d+) ms/g)].map((match) => Number(match[1]));
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
