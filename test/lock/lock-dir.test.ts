import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, lchownSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { LockDirectoryProblem } from '../../src/errors.ts';
import { acquireLock, inspectLock, LockDirectoryError, type LockHandle, listLocks } from '../../src/index.ts';
import {
  giveToNobody,
  NOBODY_GID,
  NOBODY_UID,
  nobodyUnavailable,
  runTsAsNobody,
  spawnAsNobody,
} from '../helpers/as-nobody.ts';
import { snapshot } from '../helpers/disk.ts';
import { freePort } from '../helpers/free-port.ts';
import { finished, fixture } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const posix = process.platform !== 'win32';

async function assertRefused(dir: string, problem: LockDirectoryProblem, watched: string = dir) {
  const before = snapshot(watched);
  const port = await freePort();
  await assert.rejects(acquireLock({ port, dir }), (error) => {
    assert.ok(error instanceof LockDirectoryError, `expected LockDirectoryError, got ${String(error)}`);
    assert.equal(error.name, 'LockDirectoryError');
    assert.equal(error.code, 'ELOCKDIR');
    assert.equal(error.problem, problem);
    assert.equal(error.dir, dir);
    assert.ok(error.message.includes(dir), error.message);
    assert.match(error.message, /PORTLOCK_DIR/);
    return true;
  });
  assert.deepEqual(snapshot(watched), before, 'nothing was written');
  return port;
}

/** A directory of mode `mode` inside a fresh temp dir. */
function lockDir(mode = 0o700): string {
  const dir = join(tempDir(), 'locks');
  mkdirSync(dir, { mode });
  chmodSync(dir, mode);
  return dir;
}

describe('the lock directory', () => {
  it('is refused when it is a symlink, even to a private directory of this user', async () => {
    const real = lockDir();
    const link = join(tempDir(), 'link');
    symlinkSync(real, link);
    await assertRefused(link, 'symlink', real);
  });

  it('is refused when it is a file', async () => {
    const file = join(tempDir(), 'locks');
    writeFileSync(file, 'not a directory');
    await assertRefused(file, 'not-directory', join(file, '..'));
  });

  it('is refused when a parent of it is a file', async () => {
    const file = join(tempDir(), 'locks');
    writeFileSync(file, 'not a directory');
    await assertRefused(join(file, 'sub'), 'not-directory', join(file, '..'));
  });

  it('is refused when another user owns it', { skip: !posix }, async () => {
    const dir = lockDir();
    chownSync(dir, NOBODY_UID, NOBODY_GID);
    const before = snapshot(dir);
    await assert.rejects(acquireLock({ port: await freePort(), dir }), (error) => {
      assert.ok(error instanceof LockDirectoryError);
      assert.equal(error.problem, 'foreign-owner');
      assert.match(error.message, new RegExp(`owned by another user.*owner uid ${NOBODY_UID}`));
      return true;
    });
    assert.deepEqual(snapshot(dir), before);
  });

  for (const mode of [0o777, 0o770, 0o730, 0o703, 0o1777]) {
    it(`is refused when writable by group or others (mode 0${mode.toString(8)})`, { skip: !posix }, async () => {
      const dir = lockDir(mode);
      await assertRefused(dir, 'shared-writable');
      await assert.rejects(acquireLock({ port: await freePort(), dir }), (error) => {
        assert.ok(error instanceof Error);
        // A shared system directory (world-writable and sticky, like /tmp) is never to be chmod'ed.
        assert.equal(error.message.includes(`chmod 700 ${dir}`), mode !== 0o1777, error.message);
        return true;
      });
    });
  }

  it('is accepted when others may only read it (mode 0755)', { skip: !posix }, async () => {
    const dir = lockDir(0o755);
    const lock = await acquireLock({ port: await freePort(), dir });
    await lock.release();
  });

  it('is refused as unwritable, naming the path and PORTLOCK_DIR, when this user cannot create files in it', {
    skip: nobodyUnavailable(),
  }, async () => {
    // Root writes anywhere, so the refusal is staged for nobody, in a directory nobody owns with mode 0500.
    const parent = tempDir();
    chmodSync(parent, 0o755);
    const dir = join(parent, 'locks');
    mkdirSync(dir, { mode: 0o500 });
    giveToNobody(dir);
    chmodSync(dir, 0o500);
    const before = snapshot(dir);
    const port = await freePort();
    const { code, stdout, stderr } = await runTsAsNobody(fixture('try-acquire.ts'), [JSON.stringify({ port, dir })]);
    assert.equal(code, 0, stderr);
    const outcome = JSON.parse(stdout);
    assert.equal(outcome.acquired, false);
    assert.equal(outcome.error.name, 'LockDirectoryError');
    assert.equal(outcome.error.code, 'ELOCKDIR');
    assert.match(outcome.error.message, /cannot create files in it/);
    assert.ok(outcome.error.message.includes(dir), outcome.error.message);
    assert.match(outcome.error.message, /PORTLOCK_DIR/);
    assert.deepEqual(snapshot(dir), before, 'nothing was written');
  });

  it('is refused as unwritable when it is missing and this user cannot create it', {
    skip: nobodyUnavailable(),
  }, async () => {
    const parent = tempDir();
    chmodSync(parent, 0o755);
    const dir = join(parent, 'locks');
    const { code, stdout, stderr } = await runTsAsNobody(fixture('try-acquire.ts'), [
      JSON.stringify({ port: await freePort(), dir }),
    ]);
    assert.equal(code, 0, stderr);
    const outcome = JSON.parse(stdout);
    assert.equal(outcome.error?.name, 'LockDirectoryError');
    assert.match(outcome.error.message, /cannot create files in it/);
    assert.ok(outcome.error.message.includes(dir));
    assert.equal(existsSync(dir), false);
  });

  describe('every directory above it, up to /, checked as OpenSSH checks the path to authorized_keys', () => {
    /** Asserts that acquire is refused for `dir`, naming `parent` and the fix, and writes nothing. */
    async function assertUnsafeParent(dir: string, parent: string, watched: string) {
      const before = snapshot(watched);
      await assert.rejects(acquireLock({ port: await freePort(), dir }), (error) => {
        assert.ok(error instanceof LockDirectoryError, String(error));
        assert.equal(error.problem, 'unsafe-parent');
        assert.equal(error.parent, parent);
        assert.ok(error.message.includes(`${parent} is `), error.message);
        assert.ok(error.message.includes(`chmod go-w ${parent}`), error.message);
        return true;
      });
      assert.deepEqual(snapshot(watched), before, 'nothing was written, no directory made');
    }

    it('refuses a lock directory below one that others can write (mode 0777, no sticky bit)', {
      skip: !posix,
    }, async () => {
      const shared = join(tempDir(), 'shared');
      mkdirSync(shared);
      chmodSync(shared, 0o777);
      const dir = join(shared, 'me', 'locks');
      await assertUnsafeParent(dir, shared, shared);
      // The same directory made sticky, as /tmp is: others cannot move this user's entries.
      chmodSync(shared, 0o1777);
      const lock = await acquireLock({ port: await freePort(), dir });
      await lock.release();
      // Now that it exists, a parent made writable again is still refused.
      chmodSync(shared, 0o777);
      await assertUnsafeParent(dir, shared, dir);
    });

    it('refuses one below a directory another user owns', { skip: !posix }, async () => {
      const theirs = join(tempDir(), 'theirs');
      mkdirSync(theirs, { mode: 0o755 });
      chownSync(theirs, NOBODY_UID, NOBODY_GID);
      await assertUnsafeParent(join(theirs, 'locks'), theirs, theirs);
    });

    it('checks where a symbolic link leads too', { skip: !posix }, async () => {
      const shared = join(tempDir(), 'shared');
      mkdirSync(join(shared, 'real'), { recursive: true });
      chmodSync(shared, 0o777);
      const link = join(tempDir(), 'link');
      symlinkSync(join(shared, 'real'), link);
      await assertUnsafeParent(join(link, 'locks'), shared, shared);
    });

    /** A world-writable sticky directory owned by root, as /tmp is, that nobody can reach. */
    function stickyShared(): { base: string; shared: string } {
      const base = tempDir();
      chmodSync(base, 0o755);
      const shared = join(base, 'shared');
      mkdirSync(shared);
      chmodSync(shared, 0o1777);
      return { base, shared };
    }

    /** Asserts `outcome` is the refusal of `dir` for `link`, another user's symbolic link on the way to it. */
    function assertRefusedForLink(outcome: unknown, dir: string, link: string) {
      assert.ok(outcome instanceof LockDirectoryError, `expected a refusal, got ${String(outcome)}`);
      assert.equal(outcome.problem, 'unsafe-parent');
      assert.equal(outcome.dir, dir);
      assert.equal(outcome.parent, link);
      assert.ok(outcome.message.includes(`${link} is a symbolic link owned by uid ${NOBODY_UID}`), outcome.message);
      assert.ok(outcome.message.includes(`a path without ${link}`), outcome.message);
    }

    it("refuses a path through another user's symbolic link, which could be repointed between two acquires", {
      skip: nobodyUnavailable(),
    }, async () => {
      // nobody links a name in a sticky shared directory to one place, root locks a key through it,
      // nobody repoints the link, root locks the same key again: both would hold it.
      const { base, shared } = stickyShared();
      for (const place of ['a', 'b']) mkdirSync(join(base, place), { mode: 0o755 });
      const link = join(shared, 'link');
      const dir = join(link, 'locks');
      const pointAs = async (target: string) => {
        const { code, stderr } = await finished(spawnAsNobody('ln', ['-sfn', target, link], { timeoutMs: 10_000 }));
        assert.equal(code, 0, stderr);
      };
      const attempts: unknown[] = [];
      for (const place of ['a', 'b']) {
        await pointAs(join(base, place));
        attempts.push(await acquireLock({ key: 'kk', dir }).catch((error: unknown) => error));
      }
      const held = attempts.filter((attempt): attempt is LockHandle => !(attempt instanceof Error));
      for (const handle of held) await handle.release();
      assert.equal(held.length, 0, 'root took a key lock through a link another user controls');
      for (const attempt of attempts) assertRefusedForLink(attempt, dir, link);
      assert.equal(existsSync(join(base, 'a', 'locks')), false, 'nothing was made where the link led');
    });

    it("refuses another user's link reached through a link of its own, and follows links of root or this user", {
      skip: !posix,
    }, async () => {
      const { base, shared } = stickyShared();
      mkdirSync(join(base, 'real'), { mode: 0o755 });
      const theirs = join(shared, 'theirs');
      symlinkSync(join(base, 'real'), theirs);
      lchownSync(theirs, NOBODY_UID, NOBODY_GID);
      // A relative link of this user's, whose target is another user's link.
      const mine = join(base, 'mine');
      symlinkSync('shared/theirs', mine);
      const dir = join(mine, 'locks');
      assertRefusedForLink(await acquireLock({ key: 'kk', dir }).catch((error: unknown) => error), dir, theirs);
      // The same chain with every link root's: accepted.
      lchownSync(theirs, 0, 0);
      const lock = await acquireLock({ key: 'kk', dir });
      await lock.release();
      assert.ok(existsSync(join(base, 'real', 'locks')));
    });
  });

  describe('list and status check the directories above it as acquire does', () => {
    it("refuse an existing lock directory below one that others can write, or through another user's link", {
      skip: !posix,
    }, async () => {
      const shared = join(tempDir(), 'shared');
      const dir = join(shared, 'locks');
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      chmodSync(shared, 0o777);
      const refusal = (parent: string) => (error: unknown) => {
        assert.ok(error instanceof LockDirectoryError, String(error));
        assert.equal(error.problem, 'unsafe-parent');
        assert.equal(error.parent, parent);
        return true;
      };
      await assert.rejects(listLocks({ dir }), refusal(shared));
      await assert.rejects(inspectLock({ key: 'kk', dir }), refusal(shared));
      chmodSync(shared, 0o755);
      assert.deepEqual(await listLocks({ dir }), []);
      const link = join(tempDir(), 'link');
      symlinkSync(shared, link);
      lchownSync(link, NOBODY_UID, NOBODY_GID);
      await assert.rejects(listLocks({ dir: join(link, 'locks') }), refusal(link));
    });

    it("let root look into another user's directory below that user's own, and no other user's", {
      skip: !posix,
    }, async () => {
      const home = join(tempDir(), 'home');
      const dir = join(home, 'locks');
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      chownSync(home, NOBODY_UID, NOBODY_GID);
      chownSync(dir, NOBODY_UID, NOBODY_GID);
      assert.deepEqual(await listLocks({ dir }), []);
      // A third user, who owns the directory above, could swap the lock directory under root's feet.
      const third = 4242;
      chownSync(home, third, third);
      await assert.rejects(listLocks({ dir }), (error) => {
        assert.ok(error instanceof LockDirectoryError, String(error));
        assert.equal(error.problem, 'unsafe-parent');
        assert.equal(error.parent, home);
        assert.match(error.message, new RegExp(`owned by uid ${third}`));
        return true;
      });
    });
  });
});
