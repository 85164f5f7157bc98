import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { systemProbe } from '../../src/identity/probe.ts';
import { acquireLock, cleanLocks } from '../../src/index.ts';
import { claimPathFor } from '../../src/lock/claim-chain.ts';
import { judgeWith } from '../../src/lock/judge-here.ts';
import { sweepLeftovers } from '../../src/lock/leftovers.ts';
import { portLockTarget } from '../helpers/lock-target.ts';
import { deadPid, deadRecord, liveProcess, recordFor, writeRecord } from '../helpers/records.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const judge = judgeWith(systemProbe);
const token = (n: number): string => n.toString(16).padStart(2, '0').repeat(16);

describe('sweepLeftovers', () => {
  it('removes temp files of dead pids and orphan claims of dead claimers, and nothing else', async () => {
    const { dir, port, path } = await portLockTarget();
    const live = await liveProcess();
    const dead = await deadPid();
    const lock = `agent-${port}.lock`;
    // The current record is stale and two dead claimers sit on its chain: T1 -> T2 -> T3.
    writeRecord(path, await deadRecord({ port, token: token(1) }));
    writeRecord(claimPathFor(path, token(1)), await deadRecord({ port, token: token(2) }));
    writeRecord(claimPathFor(path, token(2)), await deadRecord({ port, token: token(3) }));
    const removable = [
      `${lock}.${dead}.0123456789ab.tmp`,
      `${lock}.claim-${token(5)}.${dead}.ba9876543210.tmp`,
      `${lock}.claim-${token(4)}`,
      `${lock}.claim-${token(6)}`,
    ];
    const kept = [
      lock,
      `${lock}.claim-${token(1)}`,
      `${lock}.claim-${token(2)}`,
      `${lock}.${live.pid}.0123456789ab.tmp`,
      `${lock}.claim-${token(7)}`,
      `${lock}.claim-${token(8)}`,
      `agent-${port + 1}.lock.${dead}.0123456789ab.tmp`,
      `${lock}.bak`,
      `${lock}.old.claim-${token(4)}`,
      'notes.txt',
    ];
    // A temp file of a dead pid is a leftover once it is older than a publish could take.
    writeRecord(join(dir, removable[0] ?? ''), 'half a record', 60_000);
    writeRecord(join(dir, removable[1] ?? ''), 'half a claim', 60_000);
    writeRecord(join(dir, removable[2] ?? ''), await deadRecord({ port, token: token(9) }));
    // An old unreadable claim is garbage; a fresh one may still be being written.
    writeRecord(join(dir, removable[3] ?? ''), '{', 60_000);
    writeRecord(join(dir, `${lock}.${live.pid}.0123456789ab.tmp`), 'being written');
    writeRecord(join(dir, `${lock}.claim-${token(7)}`), recordFor(live.pid, { port, token: token(10) }));
    for (const name of kept.slice(6)) writeRecord(join(dir, name), await deadRecord({ port }));
    // Last, with nothing awaited between it and the sweep: a fresh unreadable claim is kept only
    // for the grace period (1 s), and each dead record above spawns a process, which on a loaded
    // machine can take that long.
    writeRecord(join(dir, `${lock}.claim-${token(8)}`), '');

    const removed = sweepLeftovers(path, systemProbe, judge);
    assert.deepEqual(removed.sort(), removable.map((name) => join(dir, name)).sort());
    assert.deepEqual(readdirSync(dir).sort(), kept.sort());
  });

  it('never removes a claim on the chain from the current record, even a dead one', async () => {
    const { dir, port, path } = await portLockTarget();
    writeRecord(path, await deadRecord({ port, token: token(1) }));
    writeRecord(claimPathFor(path, token(1)), await deadRecord({ port, token: token(2) }));
    assert.deepEqual(sweepLeftovers(path, systemProbe, judge), []);
    assert.equal(readdirSync(dir).length, 2);
  });

  it('removes dead claims once no record is there to lead to them', async () => {
    const { dir, port, path } = await portLockTarget();
    writeRecord(claimPathFor(path, token(1)), await deadRecord({ port, token: token(2) }));
    assert.deepEqual(sweepLeftovers(path, systemProbe, judge), [claimPathFor(path, token(1))]);
    assert.deepEqual(readdirSync(dir), []);
  });

  it('leaves alone another key lock whose name only looks like a claim', async () => {
    const dir = tempDir();
    const path = join(dir, 'cache.lock');
    const lookalike = join(dir, 'cache.lock.claim-x.lock');
    writeRecord(lookalike, await deadRecord({ key: 'cache.lock.claim-x' }));
    assert.deepEqual(sweepLeftovers(path, systemProbe, judge), []);
    assert.deepEqual(readdirSync(dir), ['cache.lock.claim-x.lock']);
  });

  it('keeps a fresh temp file even of a pid that is gone here: its writer may run in another pid namespace', async () => {
    const { dir, port, path } = await portLockTarget();
    const name = `agent-${port}.lock.${await deadPid()}.0123456789ab.tmp`;
    writeRecord(join(dir, name), 'being written');
    assert.deepEqual(sweepLeftovers(path, systemProbe, judge), []);
    assert.deepEqual(readdirSync(dir), [name]);
  });

  it('runs after every acquire, and clean sweeps the leftovers of locks without a record', async () => {
    const { dir, port } = await portLockTarget();
    const dead = await deadPid();
    const other = `build.lock.${dead}.0123456789ab.tmp`;
    writeRecord(join(dir, `agent-${port}.lock.${dead}.0123456789ab.tmp`), 'cut short', 60_000);
    writeRecord(join(dir, other), 'cut short', 60_000);
    const lock = await acquireLock({ port, dir });
    assert.deepEqual(readdirSync(dir).sort(), [`agent-${port}.lock`, other]);
    await lock.release();
    await cleanLocks({ dir });
    assert.deepEqual(readdirSync(dir), []);
  });

  it('returns [] when the directory is gone', () => {
    assert.deepEqual(sweepLeftovers(join(tempDir(), 'missing', 'a.lock'), systemProbe, judge), []);
  });

  it('runs after a reclaim, so that acquireLock leaves only the lock file', async () => {
    const { dir, port, path } = await portLockTarget();
    const dead = await deadPid();
    writeRecord(path, await deadRecord({ port, token: token(1) }));
    writeRecord(join(dir, `agent-${port}.lock.${dead}.0123456789ab.tmp`), 'half a record', 60_000);
    writeRecord(claimPathFor(path, token(4)), await deadRecord({ port, token: token(5) }));
    const lock = await acquireLock({ port, dir });
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).token, lock.record.token);
    assert.deepEqual(readdirSync(dir), [`agent-${port}.lock`]);
    await lock.release();
  });
});
