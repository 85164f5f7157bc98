import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { systemProbe } from '../../src/identity/probe.ts';
import { acquireLock, LockHeldError } from '../../src/index.ts';
import { claimPathFor, followClaims, reclaimStale } from '../../src/lock/claim-chain.ts';
import { judgeWith } from '../../src/lock/judge-here.ts';
import { readRecordFile } from '../../src/record/read-record.ts';
import { serializeRecord } from '../../src/record/record.ts';
import { snapshot } from '../helpers/disk.ts';
import { portLockTarget } from '../helpers/lock-target.ts';
import { deadRecord, liveProcess, recordFor, writeRecord } from '../helpers/records.ts';

const judge = judgeWith(systemProbe);
const token = (n: number): string => n.toString(16).padStart(2, '0').repeat(16);

/** Writes a stale record with token T1 and a chain of claims by dead claimers: claim-T1 holds T2, and so on. */
async function staleWithDeadChain(path: string, port: number, length: number): Promise<string[]> {
  writeRecord(path, await deadRecord({ port, token: token(1) }));
  const claims: string[] = [];
  for (let i = 1; i <= length; i++) {
    const claim = claimPathFor(path, token(i));
    writeRecord(claim, await deadRecord({ port, token: token(i + 1) }));
    claims.push(claim);
  }
  return claims;
}

describe('followClaims', () => {
  it('follows dead claims to the first free claim name', async () => {
    const { port, path } = await portLockTarget();
    const claims = await staleWithDeadChain(path, port, 2);
    const chain = followClaims(path, token(1), judge);
    assert.deepEqual(
      chain.links.map((link) => link.path),
      claims,
    );
    assert.equal(chain.tip, token(3));
    assert.equal(chain.busy, false);
  });

  it('stops at a live claimer and reports the chain busy', async () => {
    const { port, path } = await portLockTarget();
    const { pid } = await liveProcess();
    writeRecord(claimPathFor(path, token(1)), recordFor(pid, { port, token: token(2) }));
    const chain = followClaims(path, token(1), judge);
    assert.equal(chain.busy, true);
    assert.equal(chain.links.length, 1);
  });
});

describe('reclaiming a stale lock through the claim chain', () => {
  it("reclaims a stale record whose claimer died mid-way, removing the dead claimer's claim", async () => {
    const { dir, port, path } = await portLockTarget();
    await staleWithDeadChain(path, port, 1);
    const lock = await acquireLock({ port, dir });
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).pid, process.pid);
    assert.deepEqual(readdirSync(dir), [`agent-${port}.lock`], 'the chain files are gone');
    await lock.release();
  });

  it('reclaims through a chain of three dead claimers', async () => {
    const { dir, port, path } = await portLockTarget();
    await staleWithDeadChain(path, port, 3);
    const lock = await acquireLock({ port, dir });
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).token, lock.record.token);
    assert.deepEqual(readdirSync(dir), [`agent-${port}.lock`]);
    await lock.release();
  });

  it('waits out a fresh empty claim (a claimer still writing it), then reclaims through it', async () => {
    const { dir, port, path } = await portLockTarget();
    writeRecord(path, await deadRecord({ port, token: token(1) }));
    writeRecord(claimPathFor(path, token(1)), '');
    // Fresh, it counts as a claimer still writing its claim: nobody reclaims past it yet.
    assert.equal(followClaims(path, token(1), judge).busy, true, 'the empty claim is given time to be written');
    const lock = await acquireLock({ port, dir });
    assert.deepEqual(readdirSync(dir), [`agent-${port}.lock`]);
    await lock.release();
  });

  it('refuses, and reclaims nothing, while a live process holds the claim', async () => {
    const { dir, port, path } = await portLockTarget();
    const { pid } = await liveProcess();
    writeRecord(path, await deadRecord({ port, token: token(1) }));
    writeRecord(claimPathFor(path, token(1)), recordFor(pid, { port, token: token(2) }));
    const before = snapshot(dir, { self: false });
    await assert.rejects(acquireLock({ port, dir }), (error) => {
      assert.ok(error instanceof LockHeldError, String(error));
      assert.equal(error.state, 'unknown');
      assert.match(error.reason, /replacing its stale record right now/);
      return true;
    });
    assert.deepEqual(snapshot(dir, { self: false }), before, 'the record and the live claim are untouched');
  });

  it('reports busy from reclaimStale itself while a live claimer sits on the chain', async () => {
    const { dir, port, path } = await portLockTarget();
    const { pid } = await liveProcess();
    await staleWithDeadChain(path, port, 1);
    writeRecord(claimPathFor(path, token(2)), recordFor(pid, { port, token: token(3) }));
    const stale = readRecordFile(path);
    assert.ok(stale !== undefined);
    const before = snapshot(dir, { self: false });
    const bytes = serializeRecord(recordFor(process.pid, { port, token: token(9) }));
    assert.equal(reclaimStale(path, stale, bytes, judge).kind, 'busy');
    assert.deepEqual(snapshot(dir, { self: false }), before);
  });

  it('backs off, removing only its own claim, when the record changed since it was judged', async () => {
    const { dir, port, path } = await portLockTarget();
    writeRecord(path, await deadRecord({ port, token: token(1) }));
    const judged = readRecordFile(path);
    assert.ok(judged !== undefined);
    // Another reclaimer finished in between: a fresh record with another token is there now.
    writeRecord(path, recordFor(process.pid, { port, token: token(7) }));
    const bytes = serializeRecord(recordFor(process.pid, { port, token: token(9) }));
    assert.equal(reclaimStale(path, judged, bytes, judge).kind, 'changed');
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).token, token(7));
    assert.deepEqual(readdirSync(dir), [`agent-${port}.lock`]);
  });

  it('wins exactly once when two reclaimers judged the same stale record', async () => {
    const { dir, port, path } = await portLockTarget();
    writeRecord(path, await deadRecord({ port, token: token(1) }));
    const stale = readRecordFile(path);
    assert.ok(stale !== undefined);
    const first = serializeRecord(recordFor(process.pid, { port, token: token(8) }));
    const second = serializeRecord(recordFor(process.pid, { port, token: token(9) }));
    assert.equal(reclaimStale(path, stale, first, judge).kind, 'done');
    assert.equal(reclaimStale(path, stale, second, judge).kind, 'changed');
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).token, token(8));
    assert.deepEqual(readdirSync(dir), [`agent-${port}.lock`]);
  });
});
