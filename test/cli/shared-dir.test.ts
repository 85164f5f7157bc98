import assert from 'node:assert/strict';
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { acquireLock, LockDirectoryError } from '../../src/index.ts';
import { cli, place } from './_support.ts';

describe('a shared system directory as the lock directory', () => {
  it('is refused with a private directory as the next step, never chmod; --dir on the command line, `dir` in the library', async () => {
    const { dir: parent, port } = await place();
    // Staged like /tmp: writable by every user, sticky.
    const shared = join(parent, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o1777);

    const result = await cli(['run', '-p', String(port), '--dir', shared, '--', 'true']);
    assert.equal(result.code, 1);
    assert.equal(
      result.stderr,
      `portlock: Lock directory ${shared} cannot be used: it is a shared system directory (writable by every user, sticky: mode 1777), where any user could take or fake a lock.\n` +
        'Next step: pass --dir (or set PORTLOCK_DIR) to a private directory of your own (mode 0700), such as --dir ~/.portlock (created for you); a shared directory stays shared.\n',
    );

    const error = await acquireLock({ port, dir: shared }).then(
      () => assert.fail('took a lock in a shared directory'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof LockDirectoryError);
    assert.doesNotMatch(error.message, /chmod|--dir/);
    assert.match(error.message, /pass the `dir` option to a private directory of your own/);
  });

  it('a group-writable directory of ones own may still be fixed with chmod, in the words of each', async () => {
    const { dir: parent, port } = await place();
    const loose = join(parent, 'loose');
    mkdirSync(loose);
    chmodSync(loose, 0o775);
    const result = await cli(['run', '-p', String(port), '--dir', loose, '--', 'true']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /Next step: pass --dir \(or set PORTLOCK_DIR\) .*, or run: chmod 700 /);
    assert.doesNotMatch(result.stderr, /`dir`/);
  });
});
