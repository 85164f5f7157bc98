import assert from 'node:assert/strict';
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { acquireLock, inspectLock, listLocks } from '../../src/index.ts';
import { snapshot } from '../helpers/disk.ts';
import { freePort } from '../helpers/free-port.ts';
import { deadPid, liveProcess, recordFor, writeRecord } from '../helpers/records.ts';
import { finished, fixture, lineMatching, spawnTs } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const savedEnv = process.env.PORTLOCK_DIR;
function restoreEnv(): void {
  if (savedEnv === undefined) delete process.env.PORTLOCK_DIR;
  else process.env.PORTLOCK_DIR = savedEnv;
}
after(restoreEnv);

function lockDir(): string {
  const dir = join(tempDir(), 'locks');
  mkdirSync(dir, { mode: 0o700 });
  return dir;
}

/** Runs `look` and asserts that it changed nothing in `dir`, not even the directory's mtime. */
async function unchanged<T>(dir: string, look: () => Promise<T>): Promise<T> {
  const before = snapshot(dir);
  const result = await look();
  assert.deepEqual(snapshot(dir), before, 'inspecting changed nothing on disk');
  return result;
}

describe('inspectLock', () => {
  it('reports free without creating the directory', async () => {
    const dir = join(tempDir(), 'missing');
    const port = await freePort();
    const inspection = await inspectLock({ port, dir });
    assert.deepEqual(inspection, {
      state: 'free',
      path: join(dir, `agent-${port}.lock`),
      reason: 'there is no lock file',
      certainty: 'certain',
    });
    assert.equal(existsSync(dir), false);
  });

  it('reports a live holder as held, certain, without its token', async () => {
    const dir = lockDir();
    const port = await freePort();
    const { pid } = await liveProcess();
    writeRecord(join(dir, `agent-${port}.lock`), recordFor(pid, { port }));
    const inspection = await unchanged(dir, () => inspectLock({ port, dir }));
    assert.equal(inspection.state, 'held');
    assert.equal(inspection.certainty, 'certain');
    assert.match(inspection.reason, new RegExp(`process ${pid} is alive`));
    assert.equal(inspection.record?.pid, pid);
    assert.equal(inspection.record !== undefined && 'token' in inspection.record, false);
  });

  it('reports a dead holder as stale and leaves its record in place', async () => {
    const dir = lockDir();
    const port = await freePort();
    const pid = await deadPid();
    writeRecord(join(dir, `agent-${port}.lock`), { ...recordFor(process.pid, { port }), pid });
    const inspection = await unchanged(dir, () => inspectLock({ port, dir }));
    assert.equal(inspection.state, 'stale');
    assert.equal(inspection.certainty, 'certain');
    assert.match(inspection.reason, new RegExp(`process ${pid} is gone`));
  });

  it('reports a key record from another host as unknown', async () => {
    const dir = lockDir();
    writeRecord(join(dir, 'jobs.lock'), recordFor(process.pid, { key: 'jobs', hostname: 'build-7.example' }));
    const inspection = await unchanged(dir, () => inspectLock({ key: 'jobs', dir }));
    assert.equal(inspection.state, 'unknown');
    assert.equal(inspection.certainty, 'likely');
    assert.match(inspection.reason, /build-7\.example/);
  });

  it('reports a port record from another host as unknown when the interlock is off', async () => {
    const dir = lockDir();
    const port = await freePort();
    writeRecord(join(dir, `agent-${port}.lock`), recordFor(process.pid, { port, hostname: 'build-7.example' }));
    const inspection = await unchanged(dir, () => inspectLock({ port, dir, interlock: 'off' }));
    assert.equal(inspection.state, 'unknown');
    assert.match(inspection.reason, /build-7\.example/);
  });

  it('reports a fresh empty file as unknown, likely, and an old garbage file as stale', async () => {
    const dir = lockDir();
    writeRecord(join(dir, 'fresh.lock'), '');
    writeRecord(join(dir, 'old.lock'), 'not json', 60_000);
    const [fresh, old] = await unchanged(dir, () =>
      Promise.all([inspectLock({ key: 'fresh', dir }), inspectLock({ key: 'old', dir })]),
    );
    assert.equal(fresh.state, 'unknown');
    assert.equal(fresh.certainty, 'likely');
    assert.match(fresh.reason, /empty/);
    assert.equal(fresh.record, undefined);
    assert.equal(old.state, 'stale');
    assert.match(old.reason, /not a readable record/);
  });

  it('reports a directory or a symlink at the lock path as unknown, saying what it is', async () => {
    const dir = lockDir();
    const outside = tempDir();
    mkdirSync(join(dir, 'a.lock'));
    writeFileSync(join(outside, 'target'), JSON.stringify(recordFor(process.pid)));
    symlinkSync(join(outside, 'target'), join(dir, 'b.lock'));
    const [directory, link] = await unchanged(dir, () =>
      Promise.all([inspectLock({ key: 'a', dir }), inspectLock({ key: 'b', dir })]),
    );
    assert.equal(directory.state, 'unknown');
    // A clause for a sentence, as every reason is: no full stop, no next step of its own.
    assert.equal(directory.reason, 'the lock path is a directory, not a lock file');
    assert.equal(link.state, 'unknown');
    assert.equal(link.reason, 'the lock path is a symbolic link; portlock never follows one');
    assert.equal(link.record, undefined, 'the link was not followed');
  });

  it("reports this process's own lock as held, with or without the interlock", async () => {
    const dir = lockDir();
    for (const interlock of ['auto', 'off'] as const) {
      const port = await freePort();
      const lock = await acquireLock({ port, dir, interlock });
      const inspection = await unchanged(dir, () => inspectLock({ port, dir, interlock }));
      assert.equal(inspection.state, 'held', interlock);
      assert.equal(inspection.certainty, 'certain');
      assert.match(inspection.reason, /this process holds it/);
      assert.equal(inspection.record?.pid, process.pid);
      assert.equal(inspection.record !== undefined && 'token' in inspection.record, false);
      await lock.release();
    }
  });

  it('reports a lock held by another process as held, naming it', async () => {
    const dir = lockDir();
    const port = await freePort();
    const holder = spawnTs(fixture('try-acquire.ts'), [JSON.stringify({ port, dir, hold: true })], {
      timeoutMs: 60_000,
    });
    const done = finished(holder);
    assert.equal(JSON.parse(await lineMatching(holder, /acquired/)).acquired, true);
    const inspection = await unchanged(dir, () => inspectLock({ port, dir }));
    assert.equal(inspection.state, 'held');
    assert.equal(inspection.certainty, 'certain');
    assert.equal(inspection.record?.pid, holder.pid);
    holder.stdin?.end();
    await done;
    assert.equal((await inspectLock({ port, dir })).state, 'free');
  });

  it('looks in PORTLOCK_DIR when given only a name', async () => {
    const dir = lockDir();
    const port = await freePort();
    const { pid } = await liveProcess();
    writeRecord(join(dir, `agent-${port}.lock`), recordFor(pid, { port }));
    process.env.PORTLOCK_DIR = dir;
    try {
      const inspection = await inspectLock({ port, name: 'percy' });
      assert.equal(inspection.path, join(dir, `agent-${port}.lock`));
      assert.equal(inspection.state, 'held');
    } finally {
      restoreEnv();
    }
  });
});

describe('listLocks', () => {
  async function populated() {
    const dir = lockDir();
    const { pid } = await liveProcess();
    const dead = await deadPid();
    const deadRecord = (fields: object) => ({ ...recordFor(process.pid, fields), pid: dead });
    writeRecord(join(dir, 'agent-1000.lock'), 'garbage', 60_000);
    writeRecord(join(dir, 'agent-80.lock'), recordFor(pid, { port: 80 }));
    writeRecord(join(dir, 'agent-9.lock'), deadRecord({ port: 9 }));
    writeRecord(join(dir, 'build-cache.lock'), recordFor(pid, { key: 'build-cache' }));
    writeRecord(join(dir, 'a.lock'), deadRecord({ key: 'a' }));
    // None of these is a lock file.
    for (const name of [
      `agent-80.lock.${dead}.0123456789ab.tmp`,
      `agent-80.lock.claim-${'ef'.repeat(16)}`,
      'notes.txt',
      '.hidden.lock',
      'agent-0.lock',
      'agent-65536.lock',
      // A key may not look like a port lock's name, so no key lock has this name.
      'agent-123456.lock',
      'agent-080.lock',
      'two..dots.lock',
      'lock',
      '.lock',
    ]) {
      writeRecord(join(dir, name), deadRecord({ port: 80 }));
    }
    return { dir, pid, dead };
  }

  it('lists only lock files, ports in numeric order before keys, each judged, changing nothing', async () => {
    const { dir, pid } = await populated();
    const locks = await unchanged(dir, () => listLocks({ dir, interlock: 'off' }));
    assert.deepEqual(
      locks.map((lock) => [lock.path, lock.state]),
      [
        [join(dir, 'agent-9.lock'), 'stale'],
        [join(dir, 'agent-80.lock'), 'held'],
        [join(dir, 'agent-1000.lock'), 'stale'],
        [join(dir, 'a.lock'), 'stale'],
        [join(dir, 'build-cache.lock'), 'held'],
      ],
    );
    assert.equal(locks[1]?.record?.pid, pid);
    for (const lock of locks) assert.equal(lock.record !== undefined && 'token' in lock.record, false);
  });

  it('gives the same answers with the interlock asked', async () => {
    const { dir } = await populated();
    const locks = await unchanged(dir, () => listLocks({ dir }));
    assert.deepEqual(
      locks.map((lock) => lock.state),
      ['stale', 'held', 'stale', 'stale', 'held'],
    );
  });

  it('lists the PORTLOCK_DIR when given a name or nothing', async () => {
    const { dir } = await populated();
    process.env.PORTLOCK_DIR = dir;
    try {
      const byName = await listLocks({ name: 'percy' });
      assert.equal(byName.length, 5);
      assert.ok(byName.every((lock) => lock.path.startsWith(`${dir}/`)));
      assert.deepEqual(
        (await listLocks()).map((lock) => lock.path),
        byName.map((lock) => lock.path),
      );
    } finally {
      restoreEnv();
    }
  });

  it('returns [] for a missing directory, without creating it', async () => {
    const dir = join(tempDir(), 'missing');
    assert.deepEqual(await listLocks({ dir }), []);
    assert.equal(existsSync(dir), false);
  });

  it('returns [] for an empty directory', async () => {
    assert.deepEqual(await listLocks({ dir: lockDir() }), []);
  });
});
