import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { duration, impossibleTime, since } from '../../src/record/started-at.ts';

const NOW = Date.parse('2026-11-29T12:00:00.000Z');

describe("a record's startedAt", () => {
  it('says how long ago a possible time was, in the largest unit that fits', () => {
    assert.equal(since('2026-11-29T11:59:48.000Z', NOW), '12 s');
    assert.equal(since('2026-11-29T11:55:00.000Z', NOW), '5 min');
    assert.equal(since('2026-11-27T12:00:00.000Z', NOW), '2 days');
    // A clock a little ahead of this one is not an impossible time.
    assert.equal(since('2026-11-29T12:00:30.000Z', NOW), '0 s');
    assert.equal(duration(3 * 3_600_000), '3 h');
  });

  it('gives no age for a time that cannot be true, instead of "0 s ago"', () => {
    assert.equal(since('2027-11-29T12:00:00.000Z', NOW), undefined);
    assert.equal(since('the day before yesterday', NOW), undefined);
    assert.match(impossibleTime('2027-11-29T12:00:00.000Z', NOW) ?? '', /lies in the future/);
    assert.match(impossibleTime('the day before yesterday', NOW) ?? '', /is not a time/);
    assert.equal(impossibleTime('2026-11-29T11:00:00.000Z', NOW), undefined);
  });
});
