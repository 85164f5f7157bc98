import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { acquireLock, type LockLostError } from '../../src/index.ts';
import { startHolder } from '../helpers/holder.ts';
import { interlockOnly } from '../helpers/interlock-mode.ts';
import { fixture, lineMatching, spawnTs } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const linux = process.platform === 'linux';
const KEY = 'shared-cache';

/** A fresh lock directory, and a holder of KEY in it in another process. */
async function held() {
  const parent = tempDir();
  const dir = join(parent, 'locks');
  const holder = await startHolder({ key: KEY, dir });
  return { parent, dir, holder };
}

/**
 * Deletes the directory and puts a new one at its path. The new one is made while the old one
 * still exists, so that it cannot get the old one's inode number back (file systems reuse them).
 */
function replace(dir: string): void {
  mkdirSync(`${dir}.new`, { mode: 0o700 });
  rmSync(dir, { recursive: true });
  renameSync(`${dir}.new`, dir);
}

const refused = (dir: string) => assert.rejects(acquireLock({ key: KEY, dir }), { name: 'LockHeldError' });

describe('a key lock is one lock however its directory is reached, while it is held (Linux interlock)', {
  skip: (!linux && 'needs the Linux interlock') || interlockOnly,
}, () => {
  it('directory moved away: refused at the old path (a new directory) and at the new one', async () => {
    const { parent, dir } = await held();
    renameSync(dir, join(parent, 'moved'));
    await refused(dir);
    await refused(join(parent, 'moved'));
  });

  it('a directory with a 200-character path moved away: refused at the new path and at the old one', async () => {
    // Too long for a socket beside the record (sun_path): a socket file then has a short name elsewhere.
    const top = tempDir();
    const parent = join(top, 'p'.repeat(200 - top.length - '/locks'.length - 1));
    const dir = join(parent, 'locks');
    assert.equal(dir.length, 200);
    await startHolder({ key: KEY, dir });
    renameSync(dir, join(parent, 'moved'));
    await refused(join(parent, 'moved'));
    await refused(dir);
  });

  it('directory deleted and created anew: refused', async () => {
    const { dir } = await held();
    replace(dir);
    await refused(dir);
  });

  it('reached through a symbolic link to its parent: refused', async () => {
    const { parent } = await held();
    const link = join(tempDir(), 'link');
    symlinkSync(parent, link);
    await refused(join(link, 'locks'));
  });

  it('reached through a bind mount (as a container sees it): refused', {
    skip: process.getuid?.() !== 0 && 'bind mounts need root',
  }, async (t) => {
    const { dir } = await held();
    const view = join(tempDir(), 'view');
    mkdirSync(view, { mode: 0o700 });
    const bound = spawnSync('mount', ['--bind', dir, view], { encoding: 'utf8', timeout: 10_000 });
    if (bound.status !== 0) {
      t.skip(`the kernel refuses a bind mount: ${bound.stderr.trim()}`);
      return;
    }
    try {
      await refused(view);
    } finally {
      spawnSync('umount', ['-l', view], { timeout: 10_000 });
    }
  });

  it('a waiter derives the name again on every try: never two holders when the directory is replaced', async () => {
    const { dir, holder } = await held();
    const waiter = spawnTs(fixture('holder.ts'), [JSON.stringify({ key: KEY, dir, wait: 30_000 })], {
      stdio: ['pipe', 'pipe', 'inherit'],
      timeoutMs: 60_000,
    });
    const waiterReady = lineMatching(waiter, /"ready":true/);
    replace(dir);
    await refused(dir);
    const released = once(holder.child, 'exit');
    holder.child.stdin?.end();
    await released;
    await waiterReady;
    const record = JSON.parse(readFileSync(join(dir, `${KEY}.lock`), 'utf8'));
    assert.equal(record.pid, waiter.pid, 'the waiter holds the lock in the new directory');
    await refused(dir);
    waiter.stdin?.end();
    await once(waiter, 'exit');
  });

  for (const how of ['removed', 'moved away', 'replaced'] as const) {
    it(`a holder whose directory is ${how} learns it through onLost`, async () => {
      const parent = tempDir();
      const dir = join(parent, 'locks');
      let lost: (error: LockLostError) => void = () => {};
      const lostOnce = new Promise<LockLostError>((resolve) => {
        lost = resolve;
      });
      const lock = await acquireLock({ key: KEY, dir, onLost: lost, recheckInterval: 10 });
      assert.equal(lock.interlocked, true);
      if (how === 'moved away') renameSync(dir, join(parent, 'moved'));
      else if (how === 'replaced') replace(dir);
      else rmSync(dir, { recursive: true });
      assert.equal((await lostOnce).name, 'LockLostError');
      await lock.release();
    });
  }
});
