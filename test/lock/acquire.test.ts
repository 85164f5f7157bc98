import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { acquireLock, inspectLock, LockHeldError, lockPathFor } from '../../src/index.ts';
import { freePort } from '../helpers/free-port.ts';
import { interlockOnly } from '../helpers/interlock-mode.ts';
import { deadPid, liveProcess, recordFor, writeRecord } from '../helpers/records.ts';
import { tempDir } from '../helpers/temp-dir.ts';

async function target() {
  const dir = join(tempDir(), 'locks');
  const port = await freePort();
  return { dir, port, path: join(dir, `agent-${port}.lock`) };
}

describe('acquireLock', () => {
  it('writes a record naming pid, port and startedAt, and returns a handle', async () => {
    const { dir, port, path } = await target();
    const before = Date.now();
    const lock = await acquireLock({ port, dir, name: 'percy' });
    const after = Date.now();
    assert.equal(lock.path, path);
    const record = JSON.parse(readFileSync(path, 'utf8'));
    assert.equal(record.pid, process.pid);
    assert.equal(record.port, port);
    assert.equal(record.name, 'percy');
    assert.equal(record.portlock, 1);
    // Stamped while it was taken: between the calls before and after.
    const startedAt = Date.parse(record.startedAt);
    assert.ok(before <= startedAt && startedAt <= after, `${record.startedAt} outside the acquire`);
    assert.match(record.token, /^[0-9a-f]{32}$/);
    assert.equal(typeof record.hostname, 'string');
    if (process.platform === 'linux') {
      assert.match(record.processStart, /^\d+$/);
      assert.match(record.bootId, /^[0-9a-f-]{36}$/);
    }
    assert.deepEqual(lock.record, record);
    await lock.release();
  });

  it('creates the lock directory like mkdir -p', async () => {
    const dir = join(tempDir(), 'a', 'b', 'c');
    const lock = await acquireLock({ port: await freePort(), dir });
    assert.ok(statSync(dir).isDirectory());
    await lock.release();
  });

  it('creates the file with mode 0600 and the directory with mode 0700', {
    skip: process.platform === 'win32',
  }, async () => {
    const { dir, port, path } = await target();
    const lock = await acquireLock({ port, dir });
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    await lock.release();
  });

  it('leaves only the lock file behind: no temp or claim files', async () => {
    const { dir, port } = await target();
    const lock = await acquireLock({ port, dir });
    assert.deepEqual(readdirSync(dir), [`agent-${port}.lock`]);
    await lock.release();
    assert.deepEqual(readdirSync(dir), []);
  });

  it('uses a key lock at <dir>/<key>.lock', async () => {
    const dir = tempDir();
    const lock = await acquireLock({ key: 'build-cache', dir });
    assert.equal(lock.path, join(dir, 'build-cache.lock'));
    assert.equal(JSON.parse(readFileSync(lock.path, 'utf8')).key, 'build-cache');
    await lock.release();
  });

  it('defaults the directory to PORTLOCK_DIR', async () => {
    const dir = tempDir();
    const saved = process.env.PORTLOCK_DIR;
    process.env.PORTLOCK_DIR = dir;
    try {
      const port = await freePort();
      assert.equal(lockPathFor({ port }), join(dir, `agent-${port}.lock`));
      const lock = await acquireLock({ port });
      assert.equal(lock.path, join(dir, `agent-${port}.lock`));
      await lock.release();
    } finally {
      if (saved === undefined) delete process.env.PORTLOCK_DIR;
      else process.env.PORTLOCK_DIR = saved;
    }
  });

  it('reclaims a lock whose pid is dead', async () => {
    const { dir, port, path } = await target();
    mkdirSync(dir, { mode: 0o700 });
    writeRecord(path, recordFor(process.pid, { pid: await deadPid(), port }));
    const lock = await acquireLock({ port, dir });
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).pid, process.pid);
    await lock.release();
  });

  it('reclaims a record in the original { pid, port, startedAt } format whose pid is dead', async () => {
    const { dir, port, path } = await target();
    mkdirSync(dir, { mode: 0o700 });
    writeRecord(path, { pid: await deadPid(), port, startedAt: new Date().toISOString() });
    const lock = await acquireLock({ port, dir });
    await lock.release();
  });

  it('refuses a lock held by a live process, naming pid, start time, path and next step', async () => {
    const { dir, port, path } = await target();
    const { pid } = await liveProcess();
    mkdirSync(dir, { mode: 0o700 });
    const record = recordFor(pid, { port, name: 'percy' });
    writeRecord(path, record);
    const error = await acquireLock({ port, dir, name: 'percy' }).catch((e: unknown) => e);
    assert.ok(error instanceof LockHeldError);
    assert.equal(error.name, 'LockHeldError');
    assert.equal(error.code, 'ELOCKED');
    assert.equal(error.lockPath, path);
    assert.equal(error.state, 'held');
    assert.equal(error.certainty, 'certain');
    assert.equal(error.meta?.pid, pid);
    assert.equal('token' in (error.meta ?? {}), false, 'the token is never shown');
    assert.match(error.message, new RegExp(`percy is already running on port ${port}`));
    assert.match(error.message, new RegExp(`pid ${pid}`));
    assert.ok(error.message.includes(record.startedAt));
    assert.ok(error.message.includes(path));
    assert.match(error.message, /alive, certain/);
    assert.match(error.message, new RegExp(`Next step: .*kill ${pid}`));
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).pid, pid, 'the holder record is untouched');
  });

  it('refuses a record in the original format whose live pid started before it', async () => {
    const { dir, port, path } = await target();
    const { pid } = await liveProcess();
    mkdirSync(dir, { mode: 0o700 });
    writeRecord(path, { pid, port, startedAt: new Date(Date.now() + 5000).toISOString() });
    const error = await acquireLock({ port, dir }).catch((e: unknown) => e);
    assert.ok(error instanceof LockHeldError);
    assert.equal(error.certainty, 'likely');
    assert.match(error.message, /no start time/);
  });

  it('reclaims a record naming this process when this process does not hold it', async () => {
    const { dir, port, path } = await target();
    mkdirSync(dir, { mode: 0o700 });
    writeRecord(path, { pid: process.pid, port, startedAt: new Date().toISOString() });
    const lock = await acquireLock({ port, dir });
    await lock.release();
  });

  it('refuses a second acquire in the same process while the first handle is live', async () => {
    const { dir, port } = await target();
    const lock = await acquireLock({ port, dir });
    const error = await acquireLock({ port, dir }).catch((e: unknown) => e);
    assert.ok(error instanceof LockHeldError);
    assert.match(error.reason, /this process holds it/);
    await lock.release();
    const again = await acquireLock({ port, dir });
    await again.release();
  });

  it('reclaims a live pid that was reused (recorded start time differs)', {
    skip: process.platform !== 'linux',
  }, async () => {
    const { dir, port, path } = await target();
    const { pid } = await liveProcess();
    mkdirSync(dir, { mode: 0o700 });
    writeRecord(path, recordFor(pid, { port, processStart: '1' }));
    const lock = await acquireLock({ port, dir });
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).pid, process.pid);
    await lock.release();
  });

  it('reclaims a record from an earlier boot', { skip: process.platform !== 'linux' }, async () => {
    const { dir, port, path } = await target();
    const { pid } = await liveProcess();
    mkdirSync(dir, { mode: 0o700 });
    writeRecord(path, recordFor(pid, { port, bootId: '00000000-0000-0000-0000-000000000000' }));
    const lock = await acquireLock({ port, dir });
    await lock.release();
  });

  it('without an interlock, never reclaims a record from another host, and says which host', async () => {
    const { dir, port, path } = await target();
    mkdirSync(dir, { mode: 0o700 });
    writeRecord(path, recordFor(process.pid, { pid: await deadPid(), port, hostname: 'build-7.example' }));
    const error = await acquireLock({ port, dir, interlock: 'off' }).catch((e: unknown) => e);
    assert.ok(error instanceof LockHeldError);
    assert.equal(error.state, 'unknown');
    assert.match(error.message, /build-7\.example/);
    assert.match(error.message, /if it is not running there, remove/);
  });

  it('never reclaims a key lock from another host, interlock or not', async () => {
    const dir = tempDir();
    const path = join(dir, 'shared-cache.lock');
    writeRecord(
      path,
      recordFor(process.pid, { pid: await deadPid(), key: 'shared-cache', hostname: 'build-7.example' }),
    );
    for (const interlock of ['auto', 'off'] as const) {
      const error = await acquireLock({ key: 'shared-cache', dir, interlock }).catch((e: unknown) => e);
      assert.ok(error instanceof LockHeldError, interlock);
      assert.equal(error.state, 'unknown');
    }
  });

  it('with the interlock, takes a port whose record comes from another host: ports are per host', {
    skip: process.platform !== 'linux' || interlockOnly,
  }, async () => {
    const { dir, port, path } = await target();
    mkdirSync(dir, { mode: 0o700 });
    writeRecord(path, recordFor(process.pid, { pid: await deadPid(), port, hostname: 'build-7.example' }));
    const lock = await acquireLock({ port, dir });
    assert.equal(lock.interlocked, true);
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).hostname, lock.record.hostname);
    await lock.release();
  });

  it('recovers from a corrupt payload once it is older than the grace period', async () => {
    const { dir, port, path } = await target();
    mkdirSync(dir, { mode: 0o700 });
    writeRecord(path, '{"pid": 12', 5000);
    const lock = await acquireLock({ port, dir });
    await lock.release();
  });

  it('waits out the grace period for an empty file being written, then reclaims it', async () => {
    const { dir, port, path } = await target();
    mkdirSync(dir, { mode: 0o700 });
    writeRecord(path, '');
    // Fresh, it is a record still being written: not stale yet (the judge's grace, tested with a clock of its own).
    const fresh = await inspectLock({ port, dir });
    assert.equal(fresh.state, 'unknown');
    assert.match(fresh.reason, /may still be being written/);
    const lock = await acquireLock({ port, dir });
    await lock.release();
  });

  it('sees a record completed during the grace period as held', async () => {
    const { dir, port, path } = await target();
    const { pid } = await liveProcess();
    mkdirSync(dir, { mode: 0o700 });
    writeRecord(path, '');
    setTimeout(() => writeFileSync(path, JSON.stringify(recordFor(pid, { port }))), 100);
    const error = await acquireLock({ port, dir }).catch((e: unknown) => e);
    assert.ok(error instanceof LockHeldError);
    assert.equal(error.meta?.pid, pid);
  });

  it('holds distinct ports concurrently', async () => {
    const dir = tempDir();
    const ports = [await freePort(), await freePort(), await freePort()];
    const locks = await Promise.all(ports.map((port) => acquireLock({ port, dir })));
    assert.equal(new Set(locks.map((lock) => lock.path)).size, ports.length);
    await Promise.all(locks.map((lock) => lock.release()));
  });

  it('release is idempotent, and the lock can be taken again after it', async () => {
    const { dir, port, path } = await target();
    const lock = await acquireLock({ port, dir });
    await lock.release();
    await lock.release();
    lock.releaseSync();
    assert.equal(existsSync(path), false);
    const again = await acquireLock({ port, dir });
    again.releaseSync();
    again.releaseSync();
    await again.release();
    assert.equal(existsSync(path), false);
  });

  it('release leaves alone a record that someone else has put in its place', async () => {
    const { dir, port, path } = await target();
    const lock = await acquireLock({ port, dir });
    const { pid } = await liveProcess();
    writeRecord(path, recordFor(pid, { port }));
    await lock.release();
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).pid, pid);
  });

  it('releaseSync never throws, even when the directory is gone', async () => {
    const { dir, port } = await target();
    const lock = await acquireLock({ port, dir });
    const { rmSync } = await import('node:fs');
    rmSync(dir, { recursive: true });
    assert.doesNotThrow(() => lock.releaseSync());
  });

  it('with wait, acquires as soon as the holder releases', async () => {
    const { dir, port } = await target();
    const first = await acquireLock({ port, dir });
    setTimeout(() => first.releaseSync(), 150);
    const second = await acquireLock({ port, dir, wait: 5000 });
    await second.release();
  });

  it('with wait, still refuses when the holder stays', async () => {
    const { dir, port } = await target();
    const first = await acquireLock({ port, dir });
    // That it waits at all, the test above shows by a release during the wait.
    await assert.rejects(acquireLock({ port, dir, wait: 200 }), LockHeldError);
    await first.release();
  });

  it('an aborted signal stops a waiting acquire with its reason', async () => {
    const { dir, port } = await target();
    const first = await acquireLock({ port, dir });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('give up')), 100);
    await assert.rejects(acquireLock({ port, dir, wait: 60_000, signal: controller.signal }), /give up/);
    await assert.rejects(acquireLock({ port, dir, signal: AbortSignal.abort() }), { name: 'AbortError' });
    await first.release();
  });
});
