import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Verdict } from '../../src/identity/judge.ts';
import { acquireLock } from '../../src/index.ts';
import { attemptAcquire } from '../../src/lock/attempt.ts';
import type { RecordFile } from '../../src/record/read-record.ts';
import { serializeRecord } from '../../src/record/record.ts';
import { bytesReadSoFar, snapshot } from '../helpers/disk.ts';
import { isLockPathError, portLockTarget } from '../helpers/lock-target.ts';
import { recordFor, writeRecord } from '../helpers/records.ts';
import { finished, fixture, spawnTs } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const linux = process.platform === 'linux';
const TEN_MB = 10 * 1024 * 1024;

describe('the lock path', () => {
  it('is refused when a directory sits there, and the directory is left as it was', async () => {
    const { dir, port, path } = await portLockTarget();
    mkdirSync(path);
    writeFileSync(join(path, 'inside'), 'x');
    const before = snapshot(dir, { self: false });
    await assert.rejects(acquireLock({ port, dir }), (error) => isLockPathError(error, path, 'directory'));
    assert.deepEqual(snapshot(dir, { self: false }), before, 'no temp file is left behind');
    assert.deepEqual(readdirSync(path), ['inside']);
  });

  it('is refused when a symlink points outside, and the target is not touched', async () => {
    const { dir, port, path } = await portLockTarget();
    const outside = tempDir();
    const victim = join(outside, 'victim.json');
    writeRecord(victim, { precious: true }, 60_000);
    symlinkSync(victim, path);
    const before = { dir: snapshot(dir, { self: false }), outside: snapshot(outside) };
    const victimBefore = statSync(victim);
    await assert.rejects(acquireLock({ port, dir }), (error) => isLockPathError(error, path, 'symlink'));
    assert.deepEqual({ dir: snapshot(dir, { self: false }), outside: snapshot(outside) }, before);
    assert.equal(readFileSync(victim, 'utf8'), '{"precious":true}');
    assert.equal(statSync(victim).mtimeMs, victimBefore.mtimeMs);
  });

  it('is refused when a dangling symlink points outside, and nothing is created there', async () => {
    const { dir, port, path } = await portLockTarget();
    const outside = tempDir();
    symlinkSync(join(outside, 'planted.lock'), path);
    const before = snapshot(outside);
    await assert.rejects(acquireLock({ port, dir }), (error) => isLockPathError(error, path, 'symlink'));
    assert.deepEqual(snapshot(outside), before);
    assert.deepEqual(readdirSync(dir), [`agent-${port}.lock`]);
  });

  it('is refused when a FIFO sits there, without hanging', { skip: !linux && 'mkfifo is POSIX' }, async () => {
    const { dir, port, path } = await portLockTarget();
    const made = spawnSync('mkfifo', ['-m', '600', path], { timeout: 10_000 });
    assert.equal(made.status, 0, `mkfifo failed: ${made.stderr}`);
    // In a child with a deadline, so that a blocking open fails the test instead of hanging it.
    const child = spawnTs(fixture('try-acquire.ts'), [JSON.stringify({ port, dir })], { timeoutMs: 60_000 });
    const { code, signal, stdout, stderr } = await finished(child);
    assert.equal(signal, null, 'the acquire finished on its own');
    assert.equal(code, 0, stderr);
    const outcome = JSON.parse(stdout);
    assert.equal(outcome.acquired, false);
    assert.equal(outcome.error.name, 'LockPathError');
    assert.match(outcome.error.message, /is not a regular file/);
    assert.ok(lstatSync(path).isFIFO());
    assert.deepEqual(readdirSync(dir), [`agent-${port}.lock`]);
  });

  it('is refused when a Unix socket sits there', { skip: process.platform === 'win32' }, async () => {
    const { dir, port, path } = await portLockTarget();
    const server = createServer();
    server.listen(path);
    await once(server, 'listening');
    try {
      await assert.rejects(acquireLock({ port, dir }), (error) => isLockPathError(error, path, 'special'));
    } finally {
      server.close();
    }
  });

  it('holding a 10 MB garbage file with an old mtime is reclaimed without reading it whole', async () => {
    const { dir, port, path } = await portLockTarget();
    writeRecord(path, Buffer.alloc(TEN_MB, '{').toString(), 60_000);
    const readBefore = linux ? bytesReadSoFar() : 0;
    const lock = await acquireLock({ port, dir });
    if (linux) {
      const read = bytesReadSoFar() - readBefore;
      assert.ok(read < 1024 * 1024, `read ${read} bytes while reclaiming a ${TEN_MB}-byte file`);
    }
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).pid, process.pid);
    assert.deepEqual(readdirSync(dir), [`agent-${port}.lock`], 'no claim or temp file is left');
    await lock.release();
  });
});

describe('attemptAcquire', () => {
  const bytes = serializeRecord(recordFor(process.pid, { token: 'cd'.repeat(16) }));
  const verdict = (state: Verdict['state'], retryAfterMs?: number) => (): Verdict => ({
    state,
    certainty: 'certain',
    reason: `staged ${state}`,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  });

  it('publishes on a free path', async () => {
    const { dir, path } = await portLockTarget();
    assert.deepEqual(attemptAcquire(dir, path, bytes, verdict('held')), { kind: 'acquired', reclaimed: false, path });
    assert.deepEqual(readFileSync(path), bytes);
    assert.equal(statSync(path).mode & 0o777, 0o600);
  });

  it('reports a held record as held, and leaves it', async () => {
    const { dir, path } = await portLockTarget();
    writeRecord(path, recordFor(process.pid));
    const attempt = attemptAcquire(dir, path, bytes, verdict('held'));
    assert.equal(attempt.kind, 'held');
    assert.equal(attempt.kind === 'held' && attempt.record?.token, 'ab'.repeat(16));
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).token, 'ab'.repeat(16));
  });

  it('reports a verdict that may change soon as transient, with its retry delay', async () => {
    const { dir, path } = await portLockTarget();
    writeRecord(path, '');
    const attempt = attemptAcquire(dir, path, bytes, verdict('unknown', 250));
    assert.equal(attempt.kind, 'transient');
    assert.equal(attempt.kind === 'transient' && attempt.afterMs, 250);
    assert.equal(readFileSync(path, 'utf8'), '');
  });

  it('reclaims a stale record, leaving only the new record', async () => {
    const { dir, port, path } = await portLockTarget();
    writeRecord(path, recordFor(process.pid));
    assert.deepEqual(attemptAcquire(dir, path, bytes, verdict('stale')), { kind: 'acquired', reclaimed: true, path });
    assert.deepEqual(readFileSync(path), bytes);
    assert.deepEqual(readdirSync(dir), [`agent-${port}.lock`]);
  });

  describe("with a fallback for another network namespace's record", () => {
    const foreign = recordFor(process.pid, { netns: 'net:[1]' });
    const fallbackIn = (dir: string, port: number) => ({
      path: join(dir, `agent-${port}.net-2.lock`),
      foreign: (record: { netns?: string } | undefined) => record?.netns === 'net:[1]',
    });

    it('keeps a live foreign record, byte for byte, and publishes beside it', async () => {
      const { dir, port, path } = await portLockTarget();
      writeRecord(path, foreign);
      const before = readFileSync(path);
      const fallback = fallbackIn(dir, port);
      for (const state of ['held', 'unknown'] as const) {
        const attempt = attemptAcquire(dir, path, bytes, verdict(state), fallback);
        assert.deepEqual(attempt, { kind: 'acquired', reclaimed: false, path: fallback.path });
        assert.deepEqual(readFileSync(path), before);
        assert.deepEqual(readFileSync(fallback.path), bytes);
        rmSync(fallback.path);
      }
      // Its own file found stale (a holder of this namespace that died there): reclaimed in place.
      writeRecord(fallback.path, recordFor(process.pid, { netns: 'net:[2]' }));
      const byNamespace = (file: RecordFile): Verdict => verdict(file.record?.netns === 'net:[1]' ? 'held' : 'stale')();
      const attempt = attemptAcquire(dir, path, bytes, byNamespace, fallback);
      assert.deepEqual(attempt, { kind: 'acquired', reclaimed: true, path: fallback.path });
      assert.deepEqual(readFileSync(path), before);
      assert.deepEqual(readFileSync(fallback.path), bytes);
    });

    it('reclaims a foreign record whose holder is provably gone, in place', async () => {
      const { dir, port, path } = await portLockTarget();
      writeRecord(path, foreign);
      const fallback = fallbackIn(dir, port);
      assert.deepEqual(attemptAcquire(dir, path, bytes, verdict('stale'), fallback), {
        kind: 'acquired',
        reclaimed: true,
        path,
      });
      assert.deepEqual(readdirSync(dir), [`agent-${port}.lock`]);
    });

    it("refuses a live record of this namespace as before: the fallback is another namespace's alone", async () => {
      const { dir, port, path } = await portLockTarget();
      writeRecord(path, recordFor(process.pid, { netns: 'net:[2]' }));
      assert.equal(attemptAcquire(dir, path, bytes, verdict('held'), fallbackIn(dir, port)).kind, 'held');
      assert.deepEqual(readdirSync(dir), [`agent-${port}.lock`]);
    });
  });
});
