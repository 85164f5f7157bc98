import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import module from 'node:module';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { finished, projectRoot, spawnTs } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { BIN } from './_support.ts';

const { version } = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { version: string };
const hasCompileCache = 'enableCompileCache' in module;
const uid = process.getuid?.();
const NOBODY = 65534;

/** `portlock --version` with TMPDIR set, and Node telling on stderr which compile cache it uses. */
async function versionWith(tmp: string) {
  const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: tmp, NODE_DEBUG_NATIVE: 'COMPILE_CACHE' };
  delete env.NODE_COMPILE_CACHE;
  delete env.NODE_DISABLE_COMPILE_CACHE;
  const run = await finished(spawnTs(BIN, ['--version'], { env }));
  assert.deepEqual([run.code, run.stdout], [0, `${version}\n`], run.stderr);
  return run.stderr;
}

describe("the command's compile cache", () => {
  it('is kept in a directory of its own user, mode 0700', async (t) => {
    if (!hasCompileCache || uid === undefined) {
      t.skip(`Node ${process.version} has no module compile cache, or this OS no user ids`);
      return;
    }
    const tmp = tempDir();
    const said = await versionWith(tmp);
    const dir = join(tmp, `portlock-compile-cache-${uid}`);
    const made = statSync(dir);
    assert.deepEqual([made.uid, made.mode & 0o777], [uid, 0o700]);
    assert.match(said, new RegExp(`resolved path ${dir.replaceAll('/', '\\/')}`));
  });

  it("never uses one that another user made, where it or Node's default would be", async (t) => {
    if (!hasCompileCache || uid !== 0) {
      t.skip(`needs root and a Node with a module compile cache (Node ${process.version}, uid ${uid})`);
      return;
    }
    // Made first by nobody, writable by anybody: whatever lies there is nobody's to plant.
    const tmp = tempDir();
    for (const name of [`portlock-compile-cache-${uid}`, 'node-compile-cache']) {
      const dir = join(tmp, name);
      mkdirSync(dir);
      chownSync(dir, NOBODY, NOBODY);
      chmodSync(dir, 0o777);
    }
    const said = await versionWith(tmp);
    assert.ok(!said.includes(tmp), `the command used a compile cache another user made:\n${said}`);
  });
});
