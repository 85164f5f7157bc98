import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { acquireLock, inspectLock, listLocks, lockPathFor } from '../../src/index.ts';
import { networkLockFileName, networkOfFileName, scopeOfFileName } from '../../src/options/resolve.ts';
import type { AcquireOptions } from '../../src/types.ts';
import { freePort } from '../helpers/free-port.ts';
import { tempDir } from '../helpers/temp-dir.ts';

type BadCase = [label: string, options: unknown, error: typeof TypeError | typeof RangeError, names: string];

const longKey = 'k'.repeat(65);

// Each option is checked with a port or key that is itself valid, so only the named value is bad.
const badCases: BadCase[] = [
  ['port as a string', { port: '5338' }, TypeError, "'5338' (a string)"],
  ['port as a non-numeric string', { port: 'abc' }, TypeError, "'abc' (a string)"],
  ['negative port', { port: -1 }, RangeError, '-1'],
  ['port 0', { port: 0 }, RangeError, 'got 0'],
  ['fractional port', { port: 1.5 }, RangeError, '1.5'],
  ['port above 65535', { port: 65536 }, RangeError, '65536'],
  ['NaN port', { port: Number.NaN }, RangeError, 'NaN'],
  ['infinite port', { port: Number.POSITIVE_INFINITY }, RangeError, 'Infinity'],
  ['port as null', { port: null }, TypeError, 'null'],
  ['neither port nor key', {}, TypeError, 'port'],
  ['both port and key', { port: 5338, key: 'cache' }, TypeError, 'not both'],
  ['key with a slash', { key: 'a/b' }, RangeError, "'a/b'"],
  ['key with ..', { key: '..' }, RangeError, "'..'"],
  ['key climbing out', { key: '../etc' }, RangeError, "'../etc'"],
  ['key with .. inside', { key: 'a..b' }, RangeError, "'a..b'"],
  ['key of dots', { key: '.' }, RangeError, "'.'"],
  ['key starting with a dot (a hidden file list and clean never show)', { key: '.cache' }, RangeError, "'.cache'"],
  ['key with a space', { key: 'my cache' }, RangeError, "'my cache'"],
  ['empty key', { key: '' }, RangeError, "''"],
  ['key of 65 characters', { key: longKey }, RangeError, longKey],
  ['key naming a port lock', { key: 'agent-80' }, RangeError, "'agent-80'"],
  ['key as a number', { key: 42 }, TypeError, 'got 42'],
  ['name with a slash', { port: 5338, name: 'a/b' }, RangeError, "'a/b'"],
  ['empty name', { port: 5338, name: '' }, RangeError, "''"],
  ['name of dots', { port: 5338, name: '..' }, RangeError, "'..'"],
  ['name as a number', { port: 5338, name: 7 }, TypeError, 'got 7'],
  ['empty dir', { port: 5338, dir: '' }, TypeError, "''"],
  ['dir as a number', { port: 5338, dir: 1 }, TypeError, 'got 1'],
  ['dir with a NUL byte', { port: 5338, dir: 'a\0b' }, TypeError, "'a\0b'"],
  ['negative wait', { port: 5338, wait: -1 }, RangeError, '-1'],
  ['NaN wait', { port: 5338, wait: Number.NaN }, RangeError, 'NaN'],
  ['wait as a string', { port: 5338, wait: '10' }, TypeError, "'10' (a string)"],
  ['signal that is not an AbortSignal', { port: 5338, signal: { aborted: false } }, TypeError, 'an object'],
  ['signal as a string', { port: 5338, signal: 'stop' }, TypeError, "'stop'"],
  ['unknown interlock', { port: 5338, interlock: 'on' }, TypeError, "'on'"],
  ['interlock as a boolean', { port: 5338, interlock: false }, TypeError, 'false'],
  ['onLost that is not a function', { port: 5338, onLost: 'log' }, TypeError, "'log'"],
  ['recheckInterval below 10 ms', { port: 5338, recheckInterval: 5 }, RangeError, 'got 5'],
  ['infinite recheckInterval', { port: 5338, recheckInterval: Number.POSITIVE_INFINITY }, RangeError, 'Infinity'],
  ['recheckInterval as a string', { port: 5338, recheckInterval: '1000' }, TypeError, "'1000'"],
  ['options as null', null, TypeError, 'null'],
  ['options as a number', 5338, TypeError, '5338'],
  ['options as a string', 'agent', TypeError, "'agent'"],
  ['options as an array', [5338], TypeError, 'an array'],
  ['no options at all', undefined, TypeError, 'undefined'],
];

/** A directory path that does not exist yet, under a fresh temp dir. */
const missingDir = (): string => join(tempDir(), 'not-yet', 'locks');

/** Merges `dir` into an options object; other kinds of options are passed as they are. */
function withDir(options: unknown, dir: string): unknown {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) return options;
  return 'dir' in options ? options : { ...options, dir };
}

function assertNames(error: unknown, kind: BadCase[2], names: string): boolean {
  assert.ok(error instanceof kind, `expected ${kind.name}, got ${String(error)}`);
  assert.equal(error.constructor, kind, `expected exactly ${kind.name}, got ${error.constructor.name}`);
  assert.ok(error.message.includes(names), `message ${JSON.stringify(error.message)} names ${JSON.stringify(names)}`);
  return true;
}

const savedEnv = process.env.PORTLOCK_DIR;
function restoreEnv(): void {
  if (savedEnv === undefined) delete process.env.PORTLOCK_DIR;
  else process.env.PORTLOCK_DIR = savedEnv;
}
after(restoreEnv);

describe('bad options', () => {
  for (const [label, options, kind, names] of badCases) {
    it(`acquireLock rejects ${label} with a ${kind.name} naming it, before touching the disk`, async () => {
      const dir = missingDir();
      // The default directory must stay untouched too, for options that name no dir.
      const envDir = missingDir();
      process.env.PORTLOCK_DIR = envDir;
      try {
        await assert.rejects(acquireLock(withDir(options, dir) as AcquireOptions), (error) =>
          assertNames(error, kind, names),
        );
      } finally {
        restoreEnv();
      }
      assert.equal(existsSync(dir), false, 'the lock directory was not created');
      assert.equal(existsSync(envDir), false, 'the default lock directory was not created');
    });
  }

  // These belong to acquireLock only; the others name a lock everywhere.
  const acquireOnly = ['wait', 'signal', 'interlock', 'onLost', 'recheckInterval'];
  const targetCases = badCases.filter(
    ([, options]) =>
      typeof options !== 'object' || options === null || !acquireOnly.some((option) => option in options),
  );

  for (const [label, options, kind, names] of targetCases) {
    it(`lockPathFor and inspectLock reject ${label} with a ${kind.name}`, async () => {
      const dir = missingDir();
      assert.throws(
        () => lockPathFor(withDir(options, dir) as AcquireOptions),
        (error) => assertNames(error, kind, names),
      );
      await assert.rejects(inspectLock(withDir(options, dir) as AcquireOptions), (error) =>
        assertNames(error, kind, names),
      );
      assert.equal(existsSync(dir), false);
    });
  }

  it('listLocks rejects a bad name, dir or options object', async () => {
    const dir = missingDir();
    await assert.rejects(listLocks({ dir, name: 'a/b' }), (error) => assertNames(error, RangeError, "'a/b'"));
    await assert.rejects(listLocks({ dir: '' }), (error) => assertNames(error, TypeError, "''"));
    await assert.rejects(listLocks(null as never), (error) => assertNames(error, TypeError, 'null'));
    assert.equal(existsSync(dir), false);
  });

  it('rejects bad options even when the signal has already aborted', async () => {
    await assert.rejects(acquireLock({ port: 0, dir: missingDir(), signal: AbortSignal.abort() }), RangeError);
  });
});

describe('good options at the edges', () => {
  it('accepts ports 1 and 65535, a 64-character key, and keys that only resemble reserved names', () => {
    const dir = missingDir();
    assert.equal(lockPathFor({ port: 1, dir }), join(dir, 'agent-1.lock'));
    assert.equal(lockPathFor({ port: 65535, dir }), join(dir, 'agent-65535.lock'));
    const key = 'k'.repeat(64);
    assert.equal(lockPathFor({ key, dir }), join(dir, `${key}.lock`));
    for (const key of ['agent-x', 'agent-80x', 'my.agent-80', 'a.b_c-d', 'v1.2']) {
      assert.equal(lockPathFor({ key, dir }), join(dir, `${key}.lock`));
    }
    assert.equal(existsSync(dir), false);
  });

  it('accepts wait Infinity, an AbortSignal and both interlock values', async () => {
    const dir = join(tempDir(), 'locks');
    const signal = new AbortController().signal;
    const good: AcquireOptions[] = [
      { wait: Number.POSITIVE_INFINITY },
      { wait: 0, signal },
      { interlock: 'auto' },
      { interlock: 'off' },
    ];
    for (const options of good) {
      const lock = await acquireLock({ port: await freePort(), dir, ...options });
      await lock.release();
    }
  });
});

describe("a network namespace's own file of a port lock", () => {
  it('is named agent-<port>.net-<inode>.lock, read back as that port, and reserved from keys', () => {
    assert.equal(networkLockFileName(8080, 'net:[4026531833]'), 'agent-8080.net-4026531833.lock');
    assert.equal(networkLockFileName(8080, 'something else'), undefined);
    assert.deepEqual(scopeOfFileName('agent-8080.net-4026531833.lock'), { kind: 'port', port: 8080 });
    assert.equal(networkOfFileName('agent-8080.net-4026531833.lock'), 'net:[4026531833]');
    assert.equal(networkOfFileName('agent-8080.lock'), undefined);
    assert.deepEqual(scopeOfFileName('agent-8080.lock'), { kind: 'port', port: 8080 });
    // Not a port's: a key's, as before.
    assert.deepEqual(scopeOfFileName('agent-8080.net-x.lock'), { kind: 'key', key: 'agent-8080.net-x' });
    assert.throws(() => lockPathFor({ key: 'agent-8080.net-4026531833', dir: missingDir() }), RangeError);
  });
});

describe('lockPathFor', () => {
  it('puts a port lock at <dir>/agent-<port>.lock and a key lock at <dir>/<key>.lock', () => {
    const dir = missingDir();
    assert.equal(lockPathFor({ port: 5338, dir }), join(dir, 'agent-5338.lock'));
    assert.equal(lockPathFor({ key: 'build-cache', dir }), join(dir, 'build-cache.lock'));
    assert.equal(existsSync(dir), false);
  });

  it('resolves a relative dir against the working directory', () => {
    assert.equal(lockPathFor({ port: 5338, dir: 'rel/locks' }), resolve('rel/locks', 'agent-5338.lock'));
  });

  it('defaults to PORTLOCK_DIR, and an explicit dir wins over it', () => {
    const envDir = missingDir();
    const dir = missingDir();
    process.env.PORTLOCK_DIR = envDir;
    try {
      assert.equal(lockPathFor({ port: 5338 }), join(envDir, 'agent-5338.lock'));
      assert.equal(lockPathFor({ key: 'jobs', name: 'percy' }), join(envDir, 'jobs.lock'));
      assert.equal(lockPathFor({ port: 5338, dir }), join(dir, 'agent-5338.lock'));
    } finally {
      restoreEnv();
    }
    assert.equal(existsSync(envDir), false);
  });

  it('without PORTLOCK_DIR, defaults to ~/.<name>, and ~/.portlock without a name', () => {
    delete process.env.PORTLOCK_DIR;
    try {
      assert.equal(lockPathFor({ port: 5338, name: 'percy' }), join(homedir(), '.percy', 'agent-5338.lock'));
      assert.equal(lockPathFor({ key: 'jobs' }), join(homedir(), '.portlock', 'jobs.lock'));
      // An empty variable is as good as unset.
      process.env.PORTLOCK_DIR = '';
      assert.equal(lockPathFor({ port: 5338 }), join(homedir(), '.portlock', 'agent-5338.lock'));
    } finally {
      restoreEnv();
    }
  });
});
