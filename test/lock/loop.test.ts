import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { acquireLock } from '../../src/index.ts';
import { finished, fixture, spawnTracked } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

describe('a loop of acquire and release', () => {
  it('lets a timer run between cycles', async () => {
    const dir = tempDir();
    let fired = false;
    setTimeout(() => {
      fired = true;
    }, 0);
    // Until the timer fires: a loop that completes in microtasks alone would never stop.
    for (let cycles = 0; !fired && cycles < 10_000; cycles++) {
      const lock = await acquireLock({ key: 'loop', dir });
      await lock.release();
    }
    assert.ok(fired, 'the timer never fired during 10,000 cycles');
  });

  it('keeps the heap flat, interlock included', async () => {
    const child = spawnTracked(
      process.execPath,
      [
        '--expose-gc',
        '--import',
        'tsx',
        fixture('lock-loop.ts'),
        JSON.stringify({ dir: tempDir(), key: 'loop', warmup: 300, cycles: 1500 }),
      ],
      { timeoutMs: 120_000 },
    );
    const { code, stdout, stderr } = await finished(child);
    assert.equal(code, 0, stderr);
    const { heapGrowth } = JSON.parse(stdout);
    assert.ok(heapGrowth < 1024 * 1024, `the heap grew by ${heapGrowth} bytes over 1,500 cycles`);
  });
});
