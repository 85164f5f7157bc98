// A refusal looks first at the process the holder's answer names, and reads every process's
// descriptors only where that process does not settle it. Real processes throughout.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { acquireLock } from '../../src/index.ts';
import { kernelHolders, kernelHoldersAmong } from '../../src/interlock/holders.ts';
import { interlockName } from '../../src/interlock/name.ts';
import type { InterlockHolder } from '../../src/types.ts';
import { freePort } from '../helpers/free-port.ts';
import { abstractSocketOnly } from '../helpers/interlock-mode.ts';
import { liveProcess } from '../helpers/records.ts';
import { finished, fixture, lineMatching, spawnTracked, spawnTs } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

// The abstract socket's own refusal path: in a run that forces another interlock, it is not the one used.
const linuxOnly = {
  skip: (process.platform !== 'linux' && 'only Linux shows which process holds a socket') || abstractSocketOnly,
};

const pidsOf = (holders: InterlockHolder[] | undefined) => (holders ?? []).map((holder) => holder.pid).sort();

/** Tries to take the lock in a fresh process (its first acquire), returning what it was told. */
async function refusalIn(freshProcess: { port: number; dir: string }): Promise<string> {
  const child = spawnTs(fixture('try-acquire.ts'), [JSON.stringify({ ...freshProcess, inspect: false })], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const { stdout } = await finished(child);
  const outcome = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as {
    acquired: boolean;
    error?: { name: string; message: string };
  };
  assert.equal(outcome.acquired, false, stdout);
  assert.equal(outcome.error?.name, 'LockHeldError', stdout);
  return outcome.error.message;
}

describe('the holders of a lock, looked for among the processes an answer names', linuxOnly, () => {
  it('kernelHoldersAmong looks at the pids given alone, and settles nothing where one socket is held by none of them', async () => {
    const dir = tempDir();
    const port = await freePort();
    const name = interlockName({ kind: 'port', port }, dir) as string;
    assert.equal(kernelHoldersAmong(name, [process.pid]), undefined, 'nothing listens yet');
    const lock = await acquireLock({ port, dir });
    const fd = lock.interlockFd();
    assert.ok(fd !== undefined);
    const bystander = spawnTracked('sleep', ['60'], { stdio: 'ignore' });
    const sharer = spawnTracked('sleep', ['60'], { stdio: ['ignore', 'ignore', 'ignore', fd] });
    try {
      await Promise.all([once(bystander, 'spawn'), once(sharer, 'spawn')]);
      const mine = kernelHoldersAmong(name, [process.pid]);
      assert.equal(mine?.state, 'held');
      assert.deepEqual(pidsOf(mine?.holders), [process.pid]);
      assert.deepEqual(mine?.onOwnName, [process.pid]);
      // Under Node 22 and later the holder also keeps the name's legacy form, which the sharer did
      // not inherit: the sharer alone then does not hold every socket on the name, and settles nothing.
      const others = kernelHoldersAmong(name, [bystander.pid as number, sharer.pid as number]);
      if (Number(process.versions.node.split('.')[0]) >= 22) assert.equal(others, undefined);
      else assert.deepEqual(pidsOf(others?.holders), [sharer.pid]);
      assert.deepEqual(
        pidsOf(kernelHoldersAmong(name, [bystander.pid as number, sharer.pid as number, process.pid])?.holders),
        [process.pid, sharer.pid].sort(),
      );
      assert.equal(kernelHoldersAmong(name, [bystander.pid as number]), undefined);
      assert.equal(kernelHoldersAmong(name, []), undefined);
      // All of /proc finds both.
      assert.deepEqual(pidsOf(kernelHolders(name).holders), [process.pid, sharer.pid].sort());
    } finally {
      sharer.kill('SIGKILL');
      bystander.kill('SIGKILL');
      await lock.release();
    }
  });

  it('a refusal whose answer names a pid that holds nothing names every process that holds the name', async () => {
    const dir = tempDir();
    const port = await freePort();
    const name = interlockName({ kind: 'port', port }, dir) as string;
    const innocent = await liveProcess();
    const answer = { portlock: 1, name: 'percy', pid: innocent.pid, startedAt: new Date().toISOString() };
    const hex = Buffer.from(name, 'latin1').toString('hex');
    const squatter = spawnTs(fixture('squatter.ts'), [JSON.stringify({ names: [hex], answer, share: true })], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const ready = JSON.parse(await lineMatching(squatter, /"ready":true/)) as { pid: number; sharedWith: number };
    try {
      assert.deepEqual(pidsOf(kernelHolders(name).holders), [ready.pid, ready.sharedWith].sort());
      const message = await refusalIn({ port, dir });
      assert.match(message, /which claims to be "percy" pid \d+: it is not a portlock holder of yours/);
      assert.match(message, new RegExp(`pid ${innocent.pid}:`), 'the claim is shown as a claim');
      for (const pid of [ready.pid, ready.sharedWith]) assert.match(message, new RegExp(`pid ${pid} \\(`));
    } finally {
      squatter.stdin?.end();
      await once(squatter, 'exit');
      // The squatter kills its sharer as it exits; this is for a squatter that could not.
      try {
        process.kill(ready.sharedWith, 'SIGKILL');
      } catch {
        // Gone already.
      }
      innocent.child.kill('SIGKILL');
    }
  });

  it('a fresh process asks a holder that does not answer once, and names it', async () => {
    const dir = tempDir();
    const port = await freePort();
    const silent = spawnTs(fixture('silent-interlock.ts'), [JSON.stringify({ port, dir })], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let asked = 0;
    try {
      await lineMatching(silent, /"ready":true/);
      silent.stdout?.on('data', (chunk: Buffer) => {
        asked += chunk
          .toString('utf8')
          .split('\n')
          .filter((line) => line.includes('"asked":true')).length;
      });
      const message = await refusalIn({ port, dir });
      assert.match(
        message,
        new RegExp(`pid ${silent.pid} \\(.*\\) holds the lock's kernel interlock, and does not answer`),
      );
      // Every connection is reported before the refused process could have exited: one line per question.
      silent.stdin?.end();
      await once(silent, 'close');
      assert.equal(asked, 1, 'asked once, not once before binding and again after');
    } finally {
      silent.kill('SIGKILL');
    }
  });

  it('a refusal whose answer the kernel vouches for names the holder, though it handed its socket to a child', async () => {
    const dir = tempDir();
    const port = await freePort();
    const lock = await acquireLock({ port, dir });
    const fd = lock.interlockFd();
    assert.ok(fd !== undefined);
    const sharer = spawnTracked('sleep', ['60'], { stdio: ['ignore', 'ignore', 'ignore', fd] });
    try {
      await once(sharer, 'spawn');
      const message = await refusalIn({ port, dir });
      assert.match(message, new RegExp(`process ${process.pid} holds the lock's kernel interlock`));
      assert.doesNotMatch(message, /claims to be/);
    } finally {
      sharer.kill('SIGKILL');
      await lock.release();
    }
  });
});
