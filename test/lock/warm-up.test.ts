import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { systemProbe } from '../../src/identity/probe.ts';
import { acquireLockWith } from '../../src/lock/acquire.ts';
import { warmUp } from '../../src/lock/warm-up.ts';
import { resolveAcquire } from '../../src/options/resolve.ts';
import { readRecordFile } from '../../src/record/read-record.ts';
import { tempDir } from '../helpers/temp-dir.ts';

/** What the warm-up's takes found at the scratch lock's path, before and once it held the lock. */
interface Take {
  before: string | undefined;
  held: string | undefined;
}

describe('warmUp', () => {
  it('takes a scratch lock as from a holder that released it, then as from one that died, once, and leaves nothing', async () => {
    const scratch = tempDir();
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = scratch;
    const takes: Take[] = [];
    const take: typeof acquireLockWith = async (options, probe, choices) => {
      const { path } = resolveAcquire(options);
      const before = readRecordFile(path)?.record?.token;
      const lock = await acquireLockWith(options, probe, choices);
      takes.push({ before, held: readRecordFile(path)?.record?.token });
      return lock;
    };
    try {
      await warmUp(systemProbe, undefined, take);
    } finally {
      process.env.TMPDIR = saved;
    }
    assert.equal(takes.length, 2);
    const [released, died] = takes;
    // The first finds the path free; the second finds the record a dead holder left, and replaces it.
    assert.equal(released?.before, undefined);
    assert.notEqual(died?.before, undefined);
    assert.notEqual(died?.held, undefined);
    assert.notEqual(died?.held, died?.before);
    assert.deepEqual(readdirSync(scratch), []);
    // Once in a process: its code runs compiled from then on.
    await warmUp(systemProbe, undefined, take);
    assert.equal(takes.length, 2);
  });
});
