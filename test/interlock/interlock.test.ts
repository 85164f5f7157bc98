import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { acquireLock, inspectLock, LockHeldError, type LockLostError, listLocks } from '../../src/index.ts';
import { ask, waitForRelease } from '../../src/interlock/client.ts';
import { interlockName } from '../../src/interlock/name.ts';
import { freePort } from '../helpers/free-port.ts';
import { startHolder } from '../helpers/holder.ts';
import { deadPid, liveProcess, recordFor, writeRecord } from '../helpers/records.ts';
import { finished, fixture, lineMatching, spawnTracked, spawnTs } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

/**
 * The pid of the zombie child of `parent`, once the child has exited unreaped. The process table
 * has no event to await, so it is polled; the deadline is generous, for a loaded machine.
 */
async function zombieChildOf(parent: number, timeoutMs = 20_000): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const children = readFileSync(`/proc/${parent}/task/${parent}/children`, 'utf8').trim();
    const pid = Number(children.split(' ')[0]);
    if (pid > 0 && / Z /.test(readFileSync(`/proc/${pid}/stat`, 'latin1'))) return pid;
    if (performance.now() > deadline) throw new Error(`no zombie child of ${parent} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const linuxOnly = { skip: process.platform !== 'linux' && 'the interlock is tested on Linux' };

async function target() {
  const dir = tempDir();
  const port = await freePort();
  return { dir, port, path: join(dir, `agent-${port}.lock`), name: interlockName({ kind: 'port', port }, dir) ?? '' };
}

describe('the kernel interlock', linuxOnly, () => {
  it('backs every lock taken with interlock auto, and marks the record', async () => {
    const { dir, port, path } = await target();
    const lock = await acquireLock({ port, dir });
    assert.equal(lock.interlocked, true);
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).interlock, true);
    await lock.release();
    const off = await acquireLock({ port, dir, interlock: 'off' });
    assert.equal(off.interlocked, false);
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).interlock, undefined);
    await off.release();
  });

  it('refuses a port held by a process using another directory and application name', async () => {
    const { dir, port } = await target();
    const holder = await startHolder({ port, dir, name: 'percy' });
    const error = await acquireLock({ port, dir: tempDir(), name: 'other-tool' }).catch((e: unknown) => e);
    assert.ok(error instanceof LockHeldError);
    assert.equal(error.meta?.pid, holder.pid);
    assert.equal(error.meta?.name, 'percy');
    assert.equal(error.certainty, 'certain');
    assert.match(error.message, /percy is already running/);
    holder.child.kill('SIGKILL');
  });

  it('answers who with the public record and never the token', async () => {
    const { dir, port, path, name } = await target();
    const holder = await startHolder({ port, dir });
    const asked = await ask(name, { op: 'who' });
    assert.equal(asked.kind, 'answered');
    assert.ok(asked.kind === 'answered' && asked.reply.ok && 'record' in asked.reply);
    const { record } = asked.reply;
    assert.equal(record.pid, holder.pid);
    assert.equal(record.port, port);
    assert.equal('token' in record, false);
    assert.ok(!JSON.stringify(asked.reply).includes(JSON.parse(readFileSync(path, 'utf8')).token));
    holder.child.kill('SIGKILL');
  });

  it('forwards a stop request only with the token, and only to a holder that accepts it', async () => {
    const { dir, port, path, name } = await target();
    const plain = await startHolder({ port, dir });
    const { token } = JSON.parse(readFileSync(path, 'utf8'));
    const unsupported = await ask(name, { op: 'stop', token });
    assert.ok(unsupported.kind === 'answered' && !unsupported.reply.ok);
    assert.equal(unsupported.reply.error.code, 'ENOTSUP');
    plain.child.stdin?.end();
    await once(plain.child, 'exit');

    const stoppable = await startHolder({ port, dir, stoppable: true });
    const exited = finished(stoppable.child);
    const denied = await ask(name, { op: 'stop', token: 'f'.repeat(32) });
    assert.ok(denied.kind === 'answered' && !denied.reply.ok);
    assert.equal(denied.reply.error.code, 'EDENIED');
    const accepted = await ask(name, { op: 'stop', token: JSON.parse(readFileSync(path, 'utf8')).token });
    assert.ok(accepted.kind === 'answered' && accepted.reply.ok);
    const { stdout, code } = await exited;
    assert.equal(code, 0);
    assert.match(stdout, /"released":"stop request"/);
    assert.equal(existsSync(path), false);
  });

  it('is freed by release(), releaseSync() and process death', async () => {
    const { dir, port, name } = await target();
    const lock = await acquireLock({ port, dir });
    await lock.release();
    assert.equal((await ask(name, { op: 'who' })).kind, 'free');
    const again = await acquireLock({ port, dir });
    again.releaseSync();
    assert.equal((await ask(name, { op: 'who' })).kind, 'free');
    const holder = await startHolder({ port, dir });
    holder.child.kill('SIGKILL');
    await once(holder.child, 'exit');
    assert.equal((await ask(name, { op: 'who' })).kind, 'free');
    const after = await acquireLock({ port, dir });
    await after.release();
  });

  it('is not inherited by a child process that outlives the holder', async () => {
    const { dir, port, path } = await target();
    const holder = await startHolder({ port, dir, child: true });
    assert.ok(holder.childPid);
    try {
      holder.child.kill('SIGKILL');
      await once(holder.child, 'exit');
      process.kill(holder.childPid, 0);
      const lock = await acquireLock({ port, dir });
      assert.equal(JSON.parse(readFileSync(path, 'utf8')).pid, process.pid);
      await lock.release();
    } finally {
      process.kill(holder.childPid, 'SIGKILL');
    }
  });

  it('does not keep the holder process alive', async () => {
    const { dir, port } = await target();
    const script = `import { acquireLock } from './src/index.ts'; await acquireLock(${JSON.stringify({ port, dir })});`;
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(run.status, 0, run.stderr);
  });

  it('waits for good with an infinite timeout, and wakes on the release', async () => {
    const { dir, port, name } = await target();
    const lock = await acquireLock({ port, dir });
    const waiting = waitForRelease(name, Number.POSITIVE_INFINITY);
    // Node fires a timer beyond 2^31-1 ms at once; the wait must not end before the release.
    const early = await Promise.race([waiting, new Promise((resolve) => setTimeout(() => resolve('pending'), 300))]);
    assert.equal(early, 'pending');
    await lock.release();
    assert.equal(await waiting, 'released');
  });

  it('lets a waiter in as soon as the holder is killed', async () => {
    const { dir, port } = await target();
    const holder = await startHolder({ port, dir });
    const waiting = acquireLock({ port, dir, wait: 20_000 });
    holder.child.kill('SIGKILL');
    const lock = await waiting;
    assert.equal(lock.record.pid, process.pid);
    await lock.release();
  });

  it('hands the lock to waiters one after another, never two at once', async () => {
    const { dir, port } = await target();
    const first = await acquireLock({ port, dir });
    let inside = 0;
    let most = 0;
    const waiters = Array.from({ length: 6 }, async () => {
      const lock = await acquireLock({ port, dir, wait: 20_000 });
      inside++;
      most = Math.max(most, inside);
      await new Promise((resolve) => setImmediate(resolve));
      inside--;
      await lock.release();
    });
    await first.release();
    await Promise.all(waiters);
    assert.equal(most, 1);
  });

  it('replaces a record left by a killed holder at once: its interlock is gone', async () => {
    const { dir, port, path } = await target();
    const holder = await startHolder({ port, dir });
    holder.child.kill('SIGKILL');
    await once(holder.child, 'exit');
    assert.equal((await inspectLock({ port, dir })).state, 'stale');
    assert.match((await inspectLock({ port, dir })).reason, /no longer holds the lock's interlock/);
    const lock = await acquireLock({ port, dir });
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).pid, process.pid);
    await lock.release();
  });

  describe('odd records never cause a false refusal or a second holder', () => {
    it('PID reuse: an interlocked record naming a live unrelated process', async () => {
      const { dir, port, path } = await target();
      const { pid } = await liveProcess();
      // Its real start time: only the free interlock shows this record is stale.
      writeRecord(path, recordFor(pid, { port, interlock: true }));
      const lock = await acquireLock({ port, dir });
      await lock.release();
    });

    it('a zombie holder', async () => {
      const { dir, port, path } = await target();
      // `sh` backgrounds a short-lived process and execs `sleep`, which never reaps it: a real zombie.
      const parent = spawnTracked('sh', ['-c', 'true & exec sleep 30'], { stdio: 'ignore', timeoutMs: 30_000 });
      await once(parent, 'spawn');
      const pid = await zombieChildOf(parent.pid ?? 0);
      writeRecord(path, recordFor(pid, { port }));
      const seen = await inspectLock({ port, dir });
      assert.equal(seen.state, 'stale');
      const lock = await acquireLock({ port, dir });
      await lock.release();
      parent.kill('SIGKILL');
    });

    it('a Linux thread id as pid', async () => {
      const { dir, port, path } = await target();
      const tid = readdirSync(`/proc/${process.pid}/task`)
        .map(Number)
        .find((id) => id !== process.pid);
      assert.ok(tid, 'node runs more than one thread');
      writeRecord(path, { pid: tid, port, startedAt: new Date(Date.now() - 60_000).toISOString() });
      const lock = await acquireLock({ port, dir });
      await lock.release();
    });

    it('a record edited by hand while held: the real holder is still named', async () => {
      const { dir, port, path } = await target();
      const holder = await startHolder({ port, dir });
      writeRecord(path, recordFor(process.pid, { pid: await deadPid(), port }));
      const error = await acquireLock({ port, dir }).catch((e: unknown) => e);
      assert.ok(error instanceof LockHeldError);
      assert.equal(error.meta?.pid, holder.pid);
      const seen = await inspectLock({ port, dir });
      assert.equal(seen.state, 'held');
      assert.equal(seen.record?.pid, holder.pid);
      holder.child.kill('SIGKILL');
    });

    it('a record deleted by hand while held: still refused, naming the holder', async () => {
      const { dir, port, path } = await target();
      const holder = await startHolder({ port, dir });
      unlinkSync(path);
      const error = await acquireLock({ port, dir }).catch((e: unknown) => e);
      assert.ok(error instanceof LockHeldError);
      assert.equal(error.meta?.pid, holder.pid);
      assert.equal((await inspectLock({ port, dir })).state, 'held');
      holder.child.kill('SIGKILL');
    });

    it('a record from another hostname', async () => {
      const { dir, port, path } = await target();
      writeRecord(path, recordFor(process.pid, { pid: await deadPid(), port, hostname: 'elsewhere.example' }));
      const lock = await acquireLock({ port, dir });
      await lock.release();
    });
  });

  it('without an interlock, reports a lost lock through onLost', async () => {
    const { dir, port, path } = await target();
    const lost: LockLostError[] = [];
    const gotLost = new Promise<void>((resolve) => {
      void acquireLock({
        port,
        dir,
        interlock: 'off',
        recheckInterval: 20,
        onLost: (error) => {
          lost.push(error);
          resolve();
        },
      }).then(() => unlinkSync(path));
    });
    await gotLost;
    assert.equal(lost.length, 1);
    assert.equal(lost[0]?.code, 'ELOCKLOST');
    assert.equal(lost[0]?.lockPath, path);
    assert.match(lost[0]?.message ?? '', /was removed/);
  });

  it('listLocks reads the kernel table once: a taken interlock is held, a freed one stale', async () => {
    const dir = tempDir();
    const [live, dead] = [await freePort(), await freePort()];
    const holder = await startHolder({ port: live, dir });
    const killed = await startHolder({ port: dead, dir });
    killed.child.kill('SIGKILL');
    await once(killed.child, 'exit');
    const locks = await listLocks({ dir });
    const byPort = new Map(locks.map((lock) => [lock.record?.port, lock]));
    assert.equal(byPort.get(live)?.state, 'held');
    assert.equal(byPort.get(live)?.record?.pid, holder.pid);
    assert.equal(byPort.get(dead)?.state, 'stale');
    assert.match(byPort.get(dead)?.reason ?? '', /no longer holds the lock's interlock/);
    holder.child.kill('SIGKILL');
  });

  it('inspect says held when the interlock is taken even if the record names a dead pid', async () => {
    const { dir, port, path } = await target();
    const holder = await startHolder({ port, dir });
    writeFileSync(path, JSON.stringify({ pid: await deadPid(), port, startedAt: new Date().toISOString() }));
    const seen = await inspectLock({ port, dir });
    assert.equal(seen.state, 'held');
    assert.equal(seen.certainty, 'certain');
    assert.equal((await inspectLock({ port, dir, interlock: 'off' })).state, 'stale');
    holder.child.kill('SIGKILL');
  });

  it('an aborted signal ends the question to a holder that does not answer, with its reason', async () => {
    const { dir, port, name } = await target();
    const silent = spawnTs(fixture('silent-interlock.ts'), [JSON.stringify({ port, dir })]);
    try {
      await lineMatching(silent, /"ready":true/);
      // The question itself: a minute to answer, given up as soon as the holder has been reached.
      const asked = lineMatching(silent, /"asked":true/);
      const question = new AbortController();
      const answer = ask(name, { op: 'who' }, 60_000, question.signal);
      await asked;
      question.abort();
      assert.deepEqual(await answer, { kind: 'silent', reason: 'the question was abandoned' });
      // An acquire given up while it asks rejects with the caller's reason, not with a refusal
      // once the question has timed out.
      const controller = new AbortController();
      const acquiring = acquireLock({ port, dir, signal: controller.signal });
      controller.abort(new Error('give up'));
      await assert.rejects(acquiring, /give up/);
    } finally {
      silent.stdin?.end();
      await finished(silent);
    }
  });
});
