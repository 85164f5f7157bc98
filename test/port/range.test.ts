import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { candidates } from '../../src/port/candidates.ts';
import { DEFAULT_PORT_RANGE, defaultRangeFrom } from '../../src/port/range.ts';
import { replayHint, seed, seeded } from '../helpers/seed.ts';

describe('the default range', () => {
  it('lies below the ephemeral range the kernel reports', () => {
    assert.deepEqual(defaultRangeFrom('32768\t60999\n'), [20000, 32767]);
    // A wider ephemeral range leaves the same default: prefer strings map alike on every host.
    assert.deepEqual(defaultRangeFrom('49152 65535'), [20000, 32767]);
    assert.deepEqual(defaultRangeFrom('25000 60999'), [20000, 24999]);
    assert.deepEqual(defaultRangeFrom('10000 60999'), [1024, 9999]);
    assert.deepEqual(defaultRangeFrom('1024 50000'), [50001, 65535]);
  });

  it('is the documented constant where there is no ephemeral range to read, or it covers everything', () => {
    assert.deepEqual(DEFAULT_PORT_RANGE, [20000, 32767]);
    for (const text of [undefined, '', 'garbage', '60999 32768', '0 100', '1024 65535']) {
      assert.deepEqual(defaultRangeFrom(text), DEFAULT_PORT_RANGE, String(text));
    }
  });
});

describe('candidates', () => {
  it('tries the preferred port first, then every other port once from a random start', () => {
    const random = seeded(seed);
    for (let round = 0; round < 20; round++) {
      const order = [...candidates([100, 109], 104, random)];
      assert.equal(order[0], 104);
      // The rest: all ports but the preferred one, consecutive from some start, wrapping around.
      const all = [100, 101, 102, 103, 104, 105, 106, 107, 108, 109];
      const rotations = all.map((_, k) => [...all.slice(k), ...all.slice(0, k)].filter((port) => port !== 104));
      assert.ok(
        rotations.some((rotation) => rotation.join() === order.slice(1).join()),
        `${order.join()} (${replayHint})`,
      );
    }
    assert.deepEqual([...candidates([7, 7], undefined)], [7]);
  });
});
