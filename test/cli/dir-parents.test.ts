import assert from 'node:assert/strict';
import { chmodSync, existsSync, lchownSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { NOBODY_GID, NOBODY_UID } from '../helpers/as-nobody.ts';
import { freePort } from '../helpers/free-port.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { cli, staleRecord } from './_support.ts';

describe('list, status, clean and stop check the directories above --dir as run does', () => {
  it("refuse a --dir reached through another user's symbolic link, and change nothing", {
    skip: process.platform === 'win32',
  }, async () => {
    // A lock directory of root's with a stale record in it, reached through a link nobody owns and
    // could point at any directory between the look and the act.
    const base = tempDir();
    const real = join(base, 'real');
    mkdirSync(real, { mode: 0o700 });
    const port = await freePort();
    const record = join(real, `portlock-${port}.lock`);
    await staleRecord(record);
    const shared = join(base, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o1777);
    const link = join(shared, 'link');
    symlinkSync(base, link);
    lchownSync(link, NOBODY_UID, NOBODY_GID);
    const dir = join(link, 'real');
    for (const command of [['list'], ['status', String(port)], ['clean'], ['stop', String(port), '--force']]) {
      const result = await cli([...command, '--dir', dir]);
      assert.notEqual(result.code, 0, `${command[0]}: ${result.stdout}${result.stderr}`);
      assert.ok(
        result.stderr.includes(`${link} is a symbolic link owned by uid ${NOBODY_UID}`),
        `${command[0]}: ${result.stderr}`,
      );
      assert.match(result.stderr, /Next step: pass --dir/);
    }
    assert.equal(existsSync(record), true, 'clean removed nothing');
  });
});
