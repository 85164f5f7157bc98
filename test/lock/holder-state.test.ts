import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { acquireLock, inspectLock, LockLostError } from '../../src/index.ts';
import { ask } from '../../src/interlock/client.ts';
import { interlockToAsk } from '../../src/interlock/flavour.ts';
import type { Lock } from '../../src/lock/handle.ts';
import { HANDOFF_ENV, handoffValue } from '../../src/lock/handoff.ts';
import { validateInterlock } from '../../src/options/validate.ts';
import { jsonLine } from '../cli/_support.ts';
import { freePort } from '../helpers/free-port.ts';
import { interlockOnly } from '../helpers/interlock-mode.ts';
import { writeRecord } from '../helpers/records.ts';
import { refusalOf } from '../helpers/refusal.ts';
import { fixture, spawnTs } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

async function target() {
  const dir = join(tempDir(), 'locks');
  const port = await freePort();
  return { dir, port, path: join(dir, `agent-${port}.lock`) };
}

/** Where this run's interlock (PORTLOCK_INTERLOCK) asks about a port's lock: its abstract name, or its socket file. */
async function askedName(port: number, dir: string): Promise<string> {
  return (await interlockToAsk(validateInterlock(undefined), { kind: 'port', port }, dir, undefined))?.name ?? '';
}

describe("the holder's state", { skip: interlockOnly }, () => {
  it('is in the record and the who answer; update() changes both, and only while the record is ours', async () => {
    const { dir, port, path } = await target();
    const holder = { command: ['node', 'server.js'], cwd: '/srv/app', state: 'starting' as const };
    const lock = await acquireLock({ port, dir, holder });
    assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')).command, ['node', 'server.js']);
    assert.equal((await inspectLock({ port, dir })).record?.state, 'starting');

    lock.update({ state: 'ready', url: `http://localhost:${port}` });
    const onFile = JSON.parse(readFileSync(path, 'utf8'));
    assert.equal(onFile.state, 'ready');
    assert.equal(onFile.url, `http://localhost:${port}`);
    assert.equal(onFile.token, lock.record.token);
    const asked = await inspectLock({ port, dir });
    assert.equal(asked.record?.state, 'ready');
    assert.equal(asked.record?.cwd, '/srv/app');
    assert.equal(lock.record.state, 'ready');
    // The answer still names its socket, by which an asker tells it from a look-alike of its name.
    // This run's interlock (PORTLOCK_INTERLOCK): the abstract name, or the socket file.
    const name = await askedName(port, dir);
    const who = await ask(name, { op: 'who' });
    assert.ok(who.kind === 'answered' && who.reply.ok && 'record' in who.reply);
    assert.match(who.reply.record.socketInode ?? '', /^\d+$/);

    assert.throws(() => lock.update({ state: 'bogus' as 'ready' }), TypeError);
    // Replaced by hand: the record is someone else's now, and update says so instead of writing.
    writeRecord(path, { ...onFile, token: 'ab'.repeat(16) });
    assert.throws(() => lock.update({ state: 'stopping' }), LockLostError);
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).state, 'ready');
    await lock.release();
  });
});

// Also with a socket file: the child is handed the socket that listens on it.
describe('a lock handed to a child process', { skip: interlockOnly }, () => {
  async function handOut(extra: { fd?: 'pipe'; token?: string } = {}) {
    const { dir, port, path } = await target();
    const lock = (await acquireLock({ port, dir, holder: { command: ['portlock', 'agent'], cwd: '/srv' } })) as Lock;
    lock.handOff('staying');
    const fd = lock.interlockFd();
    assert.ok(fd !== undefined);
    const token = extra.token ?? lock.record.token ?? '';
    const child = spawnTs(fixture('adopt.ts'), [JSON.stringify({ port, dir: tempDir(), holder: { state: 'ready' } })], {
      stdio: ['pipe', 'pipe', 'inherit', extra.fd ?? fd],
      env: { ...process.env, [HANDOFF_ENV]: handoffValue({ port, fd: 3, token, leaving: false, dir }) },
      timeoutMs: 20_000,
    });
    const answer = await jsonLine<{ record?: Record<string, unknown>; error?: { code: string; message: string } }>(
      child,
      () => true,
    );
    return { lock, child, answer, port, dir, path };
  }

  it('is adopted: the record names the child, under the process that handed it over, and keeps its command', async () => {
    const { lock, child, answer, port, dir, path } = await handOut();
    assert.equal(answer.record?.pid, child.pid);
    assert.equal(answer.record?.supervisorPid, process.pid);
    assert.deepEqual(answer.record?.command, ['portlock', 'agent']);
    assert.equal(answer.record?.state, 'ready');
    // The child's directory option gave way to the directory the lock lives in.
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).pid, child.pid);
    // Whoever of the two answers, the answer names the child.
    assert.equal((await inspectLock({ port, dir })).record?.pid, child.pid);
    child.stdin?.end();
    await lock.release();
  });

  it('stays held by the child once the process that handed it over lets go; free once the child has gone too', async () => {
    const { lock, child, answer, port, dir } = await handOut();
    assert.equal(answer.record?.pid, child.pid);
    const socket = lock.record.interlockKind === 'socket-file' ? await askedName(port, dir) : undefined;
    await lock.release();
    // A socket file is the child's too: it is not removed under it.
    if (socket !== undefined) assert.ok(existsSync(socket), `${socket} is still there`);
    await refusalOf({ port, dir, wait: 0 }, 'taken while the child holds it');
    const gone = once(child, 'exit');
    child.stdin?.end();
    await gone;
    const again = await acquireLock({ port, dir });
    await again.release();
  });

  it('is refused as before when the descriptor is not the kernel name, or the token is not the record’s', async () => {
    for (const extra of [{ fd: 'pipe' as const }, { token: 'cd'.repeat(16) }]) {
      const { lock, answer } = await handOut(extra);
      assert.equal(answer.error?.code, 'ELOCKED', JSON.stringify(answer));
      assert.match(answer.error?.message ?? '', new RegExp(`on port \\d+: held by pid ${process.pid} `));
      await lock.release();
    }
  });
});
