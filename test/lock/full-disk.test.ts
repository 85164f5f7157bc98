import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { acquireLock, cleanLocks } from '../../src/index.ts';
import { deadPid, deadRecord, writeRecord } from '../helpers/records.ts';

/** A small tmpfs of its own, unmounted when the test file ends; or why there cannot be one. */
function smallDisk(): { mount: string } | { skip: string } {
  if (process.platform !== 'linux') return { skip: 'not Linux' };
  if (process.getuid?.() !== 0) return { skip: 'mounting a tmpfs needs root' };
  // Not under tempDir(): that is removed when the file ends, possibly before this is unmounted.
  const mount = mkdtempSync(join(tmpdir(), 'portlock-disk-'));
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', mount], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  if (mounted.status !== 0) return { skip: `the kernel refuses to mount a tmpfs: ${mounted.stderr.trim()}` };
  after(() => {
    spawnSync('umount', ['-l', mount], { timeout: 10_000 });
    rmSync(mount, { recursive: true, force: true });
  });
  return { mount };
}

/** Fills the disk to its last byte; returns the filler's path, whose removal frees it again. */
function fill(dir: string, name = 'filler'): string {
  const path = join(dir, name);
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(4096, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (error) {
    assert.equal((error as NodeJS.ErrnoException).code, 'ENOSPC');
  } finally {
    closeSync(fd);
  }
  return path;
}

const disk = smallDisk();

describe('a full disk (a small tmpfs)', { skip: 'skip' in disk ? disk.skip : undefined }, () => {
  it('acquire, release and clean fail in one clear line and leave nothing; after space is freed all works', async () => {
    const mount = 'mount' in disk ? disk.mount : '';
    const dir = join(mount, 'locks');
    const held = await acquireLock({ key: 'held', dir });
    writeRecord(join(dir, 'stale.lock'), await deadRecord({ key: 'stale' }));
    // An empty leftover of a writer that died: sweeping it frees no room.
    const leftover = `stale.lock.${await deadPid()}.0123456789ab.tmp`;
    writeRecord(join(dir, leftover), '', 60_000);
    const filler = fill(mount);

    for (const key of ['new', 'stale']) {
      const error = await acquireLock({ key, dir }).then(
        () => assert.fail(`took ${key} on a full disk`),
        (failure: Error) => failure,
      );
      assert.equal(error.name, 'DiskFullError');
      const [first, next] = error.message.split('\n');
      assert.match(
        first ?? '',
        new RegExp(`^The disk holding ${dir} is full: there is no room to write the lock record ${key}\\.lock\\.$`),
      );
      assert.match(next ?? '', /^Next step: free some space/);
    }
    // A socket-file run (PORTLOCK_INTERLOCK) keeps the live holder's socket beside its record.
    const files = readdirSync(dir).filter((name) => !name.endsWith('.sock'));
    assert.deepEqual(files.sort(), ['held.lock', 'stale.lock', leftover], 'no temp or claim file is left');

    await held.release();
    // Release needed no room, and freed some: fill that too.
    const more = fill(mount, 'more');
    const cleaning = await cleanLocks({ dir }).then(
      () => assert.fail('clean removed a record without room for its claim'),
      (failure: Error) => failure,
    );
    assert.equal(cleaning.name, 'DiskFullError');
    assert.match(
      cleaning.message.split('\n')[0] ?? '',
      /is full: could not remove 1 stale lock file \(stale\.lock\), since a safe removal first writes a small claim file\.$/,
    );
    assert.deepEqual(readdirSync(dir), ['stale.lock'], 'clean swept the leftover');

    unlinkSync(filler);
    unlinkSync(more);
    const lock = await acquireLock({ key: 'new', dir });
    await lock.release();
    const { removed } = await cleanLocks({ dir });
    assert.deepEqual(
      removed.map((found) => found.path),
      [join(dir, 'stale.lock')],
    );
    assert.deepEqual(readdirSync(dir), []);
  });
});
