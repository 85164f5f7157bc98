import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type AcquireOptions, acquireLock, stopLock } from '../../src/index.ts';
import { freePort } from '../helpers/free-port.ts';
import { interlockMode } from '../helpers/interlock-mode.ts';
import { refusalOf } from '../helpers/refusal.ts';
import { fixture, lineMatching, spawnTracked } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

/** Why `unshare` with these flags cannot run here, or undefined when it can. */
function unshareUnavailable(flags: string[]): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  const tried = spawnSync('unshare', [...flags, 'true'], { encoding: 'utf8', timeout: 10_000 });
  return tried.status === 0 ? undefined : `the kernel refuses unshare ${flags.join(' ')}: ${tried.stderr.trim()}`;
}

const PID_NS = ['--pid', '--fork', '--mount-proc'];
const PID_NET_NS = ['--pid', '--net', '--fork', '--mount-proc'];
const UTS_NS = ['--uts'];

/**
 * Starts a holder of `options` inside new namespaces that share this file system (and so the lock
 * directory). Resolves once it holds the lock, with the host pid of the holder itself.
 */
async function holdInside(flags: string[], options: AcquireOptions, hostname?: string) {
  const node = [process.execPath, '--import', 'tsx', fixture('holder.ts'), JSON.stringify(options)];
  const command = hostname === undefined ? node : ['sh', '-c', `hostname ${hostname} && exec "$@"`, 'sh', ...node];
  const child = spawnTracked('unshare', [...flags, ...command], { stdio: ['pipe', 'pipe', 'inherit'] });
  await lineMatching(child, /"ready":true/);
  // With --fork, the holder is unshare's child (pid 1 of its namespace); without, unshare itself.
  const children = flags.includes('--fork')
    ? readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).map(Number)
    : [child.pid as number];
  const holder = children[0];
  if (holder === undefined) throw new Error('no holder inside the namespace');
  const kill = async () => {
    const exited = once(child, 'exit');
    process.kill(holder, 'SIGKILL');
    await exited;
  };
  return { child, kill };
}

describe('a holder in another pid namespace sharing the lock directory', () => {
  for (const [what, flags] of [
    ['pid namespace', PID_NS],
    ['pid and network namespace', PID_NET_NS],
  ] as const) {
    const skip = unshareUnavailable(flags);
    for (const scope of ['record-only port lock', 'interlocked key lock'] as const) {
      it(`${scope}, ${what}: the host is refused, told so; after SIGKILL it acquires at once`, {
        skip,
        timeout: 60_000,
      }, async () => {
        const dir = tempDir();
        const options: AcquireOptions =
          scope === 'record-only port lock' ? { port: await freePort(), dir, interlock: 'off' } : { key: 'ns', dir };
        const inside = await holdInside(flags, options);
        try {
          const refused = await acquireLock(options).then(
            () => assert.fail('the host took a lock held in another pid namespace'),
            (error: Error) => error,
          );
          assert.equal(refused.name, 'LockHeldError');
          assert.match(refused.message, /held by pid 1\b/);
          assert.match(refused.message, /in another pid namespace \(pid:\[\d+\]\)/);
          assert.doesNotMatch(refused.message, /kill 1\b/, 'never advises killing pid 1 here');
          // Pid 1 here is some other process: stop --force leaves it alone.
          const { port, key } = options;
          const stopped = await stopLock({ ...(port ? { port } : { key }), dir, force: true, timeout: 200 });
          assert.notEqual(stopped.outcome, 'stopped');
          assert.deepEqual(stopped.signalled, []);
        } finally {
          await inside.kill();
        }
        const lock = await acquireLock(options);
        await lock.release();
      });
    }
  }
});

describe('a key holder in another network namespace whose lock directory is moved away or replaced', () => {
  // The socket file reaches across network namespaces, and a key has a second one named from its
  // directory's path; an abstract name is seen only in its own network namespace, and the holder's
  // record went with its directory.
  const skip =
    unshareUnavailable(PID_NET_NS) ||
    (interlockMode !== 'socket-file' && `it tests the socket file; this run uses PORTLOCK_INTERLOCK=${interlockMode}`);
  for (const how of ['moved away', 'replaced'] as const) {
    it(`directory ${how}: refused at its path; after SIGKILL it acquires at once`, {
      skip,
      timeout: 60_000,
    }, async () => {
      const parent = tempDir();
      const dir = join(parent, 'locks');
      const inside = await holdInside(PID_NET_NS, { key: 'moved', dir });
      try {
        if (how === 'moved away') renameSync(dir, join(parent, 'moved'));
        else {
          mkdirSync(`${dir}.new`, { mode: 0o700 });
          rmSync(dir, { recursive: true });
          renameSync(`${dir}.new`, dir);
        }
        await refusalOf({ key: 'moved', dir, wait: 0 }, 'taken while a holder of another network namespace holds it');
      } finally {
        await inside.kill();
      }
      const lock = await acquireLock({ key: 'moved', dir });
      await lock.release();
    });
  }
});

describe('a holder in another UTS namespace (its own hostname, this kernel and network)', () => {
  it('a SIGKILLed key holder: the next acquire on the host succeeds at once', {
    skip: unshareUnavailable(UTS_NS),
    timeout: 60_000,
  }, async () => {
    const dir = tempDir();
    const inside = await holdInside(UTS_NS, { key: 'uts', dir }, 'portlock-uts-inside');
    try {
      await assert.rejects(acquireLock({ key: 'uts', dir }), { name: 'LockHeldError' });
    } finally {
      await inside.kill();
    }
    const lock = await acquireLock({ key: 'uts', dir });
    await lock.release();
  });
});
