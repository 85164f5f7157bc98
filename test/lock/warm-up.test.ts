import assert from 'node:assert/strict';
import { chownSync, mkdirSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { systemProbe } from '../../src/identity/probe.ts';
import { acquireLockWith } from '../../src/lock/acquire.ts';
import { warmUp } from '../../src/lock/warm-up.ts';
import { resolveAcquire } from '../../src/options/resolve.ts';
import { readRecordFile } from '../../src/record/read-record.ts';
import { deadPid } from '../helpers/records.ts';
import { finished, fixture, spawnTs } from '../helpers/spawn.ts';
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
      await warmUp(systemProbe, undefined, take, () => true);
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
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
    await warmUp(systemProbe, undefined, take, () => true);
    assert.equal(takes.length, 2);
  });

  it('leaves no scratch directory behind when its process exits while it runs', async () => {
    for (const exitIn of [1, 2]) {
      const scratch = tempDir();
      const child = spawnTs(fixture('exit-in-warm-up.ts'), [String(exitIn)], {
        env: { ...process.env, TMPDIR: scratch },
        timeoutMs: 40_000,
      });
      const { code, stdout, stderr } = await finished(child);
      assert.equal(code, 0, `${stdout}${stderr}`);
      const left = readdirSync(scratch).filter((name) => name.startsWith('portlock-warm-up-'));
      assert.deepEqual(left, [], `exited in take ${exitIn}`);
    }
  });

  it('takes its scratch lock once, not twice, once the wait beside it has ended', async () => {
    const scratch = tempDir();
    const child = spawnTs(fixture('exit-in-warm-up.ts'), ['ended'], { env: { ...process.env, TMPDIR: scratch } });
    const { code, stdout, stderr } = await finished(child);
    assert.equal(code, 0, stderr);
    assert.deepEqual(JSON.parse(stdout), { takes: 1 });
    assert.deepEqual(
      readdirSync(scratch).filter((name) => name.startsWith('portlock-warm-up-')),
      [],
    );
  });

  it("removes the scratch directories of this user's dead processes, and only those", async () => {
    const scratch = tempDir();
    const dead = await deadPid();
    const old = new Date(Date.now() - 120_000);
    const stage = (name: string, { file = false, owner }: { file?: boolean; owner?: number } = {}) => {
      const path = join(scratch, name);
      if (file) writeFileSync(path, '');
      else {
        mkdirSync(path);
        writeFileSync(join(path, 'warm-up.lock'), '{}');
      }
      if (owner !== undefined) chownSync(path, owner, owner);
      utimesSync(path, old, old);
    };
    stage(`portlock-warm-up-${dead}-aaaaaa`);
    stage(`portlock-warm-up-${process.pid}-bbbbbb`);
    stage(`portlock-warm-up-${dead}-cccccc`, { file: true });
    // Another user's (nobody's), where this test may give it one.
    const asRoot = process.getuid?.() === 0;
    if (asRoot) stage(`portlock-warm-up-${dead}-eeeeee`, { owner: 65534 });
    // Dead, but touched a moment ago: perhaps a live process of another pid namespace.
    mkdirSync(join(scratch, `portlock-warm-up-${dead}-dddddd`));
    const child = spawnTs(fixture('exit-in-warm-up.ts'), ['ended'], { env: { ...process.env, TMPDIR: scratch } });
    const { code, stderr } = await finished(child);
    assert.equal(code, 0, stderr);
    assert.deepEqual(
      readdirSync(scratch)
        .filter((name) => name.startsWith('portlock-warm-up-'))
        .sort(),
      [
        `portlock-warm-up-${dead}-cccccc`,
        `portlock-warm-up-${dead}-dddddd`,
        ...(asRoot ? [`portlock-warm-up-${dead}-eeeeee`] : []),
        `portlock-warm-up-${process.pid}-bbbbbb`,
      ].sort(),
    );
  });
});
