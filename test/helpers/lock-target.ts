import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { LockPathError } from '../../src/errors.ts';
import { freePort } from './free-port.ts';
import { tempDir } from './temp-dir.ts';

/** A fresh lock directory (created, mode 0700) and a port nobody uses, with that port's lock path. */
export async function portLockTarget() {
  const dir = join(tempDir(), 'locks');
  mkdirSync(dir, { mode: 0o700 });
  const port = await freePort();
  return { dir, port, path: join(dir, `agent-${port}.lock`) };
}

/** For `assert.throws` and `assert.rejects`: a LockPathError about `path`, for `problem`. */
export function isLockPathError(error: unknown, path: string, problem: string): true {
  assert.ok(error instanceof LockPathError, `expected LockPathError, got ${String(error)}`);
  assert.equal(error.code, 'ELOCKPATH');
  assert.equal(error.problem, problem);
  assert.equal(error.lockPath, path);
  assert.ok(error.message.includes(path));
  return true;
}
