import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ask, PARK_RECHECK_MS, parkBehind, TURN_STEP_MS } from '../../src/interlock/client.ts';
import { interlockName } from '../../src/interlock/name.ts';
import { parkName } from '../../src/interlock/protocol.ts';
import { MAX_WAITERS } from '../../src/interlock/server.ts';
import { freePort } from '../helpers/free-port.ts';
import { startHolder } from '../helpers/holder.ts';
import { fixture, lineMatching, spawnTs } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const linuxOnly = { skip: process.platform !== 'linux' && 'the interlock is tested on Linux' };

/**
 * The accepting end of each connection to an abstract socket whose name (as `ss` shows it, the NULs
 * of the name padded to the whole sun_path as '@') `matches`, with the bytes it has not read yet.
 */
function acceptedConnections(matches: (shown: string) => boolean): { unread: number }[] {
  const listed = spawnSync('ss', ['-xnH', 'state', 'established'], {
    encoding: 'utf8',
    timeout: 20_000,
    maxBuffer: 256 * 1024 * 1024,
  });
  if (listed.status !== 0) throw new Error(`ss failed: ${listed.error?.message ?? listed.stderr}`);
  return listed.stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => matches(fields[3]?.replace(/@+$/, '') ?? ''))
    .map((fields) => ({ unread: Number(fields[1]) }));
}

/** The name `ss` shows for an abstract name. */
const shownName = (name: string): string => `@${name.slice(1).replace(/\0+$/, '')}`;

/** The start of the name `ss` shows for the park of any waiter of this pid. */
const parkOf = (pid: number): string => shownName(parkName(`${pid}-`)).replace(/@+$/, '');

/** A park (see `Park` in client.ts) that stays open until the test closes it, and the connections it took. */
async function openPark(): Promise<{ id: string; park: Server; followers: Socket[] }> {
  const id = `${process.pid}-${randomBytes(16).toString('hex')}`;
  const park = createServer();
  const followers: Socket[] = [];
  park.on('connection', (socket) => followers.push(socket));
  park.listen({ path: parkName(id), exclusive: true });
  await once(park, 'listening');
  return { id, park, followers };
}

/**
 * Until `waiters`, which joined one after another, wait in a chain: the first connected to the
 * holder with its request read, each other at the park of the one before it (where the holder sent
 * it, so placed too); and then a question answered, which the holder takes up only after what it
 * read before. The kernel's table has no event to await, so it is looked at.
 */
async function untilChained(name: string, waiters: number[], timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const atHolder = acceptedConnections((shown) => shown === shownName(name));
    const chained = waiters.slice(0, -1).every((pid) => {
      const park = parkOf(pid);
      return acceptedConnections((shown) => shown.startsWith(park)).length === 1;
    });
    if (chained && atHolder.length === 1 && atHolder[0]?.unread === 0) break;
    if (performance.now() > deadline) throw new Error(`${waiters.length} waiters did not chain within ${timeoutMs} ms`);
    await sleep(10);
  }
  assert.equal((await ask(name, { op: 'who' })).kind, 'answered');
}

describe('waiters at the interlock', linuxOnly, () => {
  for (const release of ['release', 'SIGKILL'] as const) {
    it(`are served in the order they started waiting (holder ends by ${release})`, async () => {
      const dir = tempDir();
      const port = await freePort();
      const orderFile = join(dir, 'order');
      writeFileSync(orderFile, '');
      const holder = await startHolder({ port, dir });
      const name = interlockName({ kind: 'port', port }, dir) ?? '';
      const count = 5;
      const waiters = [];
      // One after another: each starts waiting only once the one before it has its place. Then
      // only the first waits on the holder, each other at the park of the one before it: a release
      // or the holder's death wakes the first alone.
      for (let index = 0; index < count; index++) {
        const waiter = spawnTs(fixture('queued-waiter.ts'), [JSON.stringify({ port, dir, index, orderFile })], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        await lineMatching(waiter, /"waiting":true/);
        waiters.push(waiter);
        await untilChained(
          name,
          waiters.map((queued) => queued.pid ?? 0),
        );
      }
      const exits = waiters.map((waiter) => once(waiter, 'exit'));
      if (release === 'SIGKILL') holder.child.kill('SIGKILL');
      else holder.child.stdin?.end();
      const codes = (await Promise.all(exits)).map(([code]) => code);
      assert.deepEqual(codes, Array(count).fill(0));
      assert.deepEqual(
        readFileSync(orderFile, 'utf8').trim().split('\n').map(Number),
        Array.from({ length: count }, (_, index) => index),
      );
    });
  }

  it('do not keep the places of those gone from their parks once the queue is full', async () => {
    const dir = tempDir();
    const port = await freePort();
    const holder = await startHolder({ port, dir });
    const name = interlockName({ kind: 'port', port }, dir) ?? '';
    /** Asks to wait with a park of `id` (bound or not); resolves with the first reply. */
    const join = async (since: number, id: string): Promise<{ reply: string; socket: Socket }> => {
      const socket = connect({ path: name });
      socket.on('error', () => {});
      await once(socket, 'connect');
      socket.write(`${JSON.stringify({ v: 1, op: 'wait', since, pid: process.pid, park: id })}\n`);
      const [reply] = await once(socket, 'data');
      return { reply: String(reply), socket };
    };
    const newId = () => `${process.pid}-${randomBytes(16).toString('hex')}`;
    try {
      // Waiters each told to wait at the park of the one ahead, which then hang up without ever
      // binding one: the holder keeps their places, as those of waiters gone to their parks.
      let previous = await join(1, newId());
      for (let since = 2; since <= MAX_WAITERS + 1; since++) {
        const next = await join(since, newId());
        assert.match(next.reply, /"behind":/);
        previous.socket.destroy();
        previous = next;
      }
      previous.socket.destroy();
      // The queue is full of them; a newcomer finds room all the same (behind the last of them at
      // most, whose hanging up the holder may not have read yet).
      const { reply, socket } = await join(MAX_WAITERS + 2, newId());
      socket.destroy();
      assert.match(reply, /"waiting":true,"ahead":[01],/);
    } finally {
      holder.child.kill();
    }
  });

  it('stay at the park of the one ahead while they look whether the lock is still held', async () => {
    const dir = tempDir();
    const port = await freePort();
    const orderFile = join(dir, 'order');
    writeFileSync(orderFile, '');
    const name = interlockName({ kind: 'port', port }, dir) ?? '';
    // The one ahead: a park that stays open until the test closes it.
    const { id, park, followers } = await openPark();
    // A holder that sends every waiter to that park, and tells when a waiter looks whether it is
    // still there (a connection that asks nothing).
    const sockets: Socket[] = [];
    let looked: (() => void) | undefined;
    const lookedAt = new Promise<void>((resolve) => {
      looked = resolve;
    });
    const holder = createServer((socket) => {
      sockets.push(socket);
      socket.setEncoding('utf8').once('data', () => {
        const place = { v: 1, ok: true, waiting: true, ahead: 1, after: process.pid, holder: process.pid, behind: id };
        socket.write(`${JSON.stringify(place)}\n`);
      });
      if (sockets.length < 2) return;
      // Looked at while the waiter's look is open: the kernel's table is no event to await.
      const atPark = acceptedConnections((shown) => shown === shownName(parkName(id))).length;
      looked?.();
      assert.equal(atPark, 1, 'the waiter left the park to look');
    });
    holder.listen({ path: name, exclusive: true });
    await once(holder, 'listening');
    try {
      const waiter = spawnTs(fixture('queued-waiter.ts'), [JSON.stringify({ port, dir, index: 0, orderFile })], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const exit = once(waiter, 'exit');
      await once(park, 'connection');
      // After PARK_RECHECK_MS at the park, it looks whether the lock is still held, from the park.
      await lookedAt;
      // The holder leaves and the one ahead has had its turn: the waiter takes the lock.
      holder.close();
      for (const socket of sockets) socket.destroy();
      for (const socket of followers) socket.destroy();
      assert.deepEqual(await exit, [0, null]);
      assert.equal(readFileSync(orderFile, 'utf8'), '0\n');
      assert.equal(followers.length, 1);
    } finally {
      holder.close();
      for (const socket of [...sockets, ...followers]) socket.destroy();
      park.close();
    }
  });

  it('stay at their park when the lock is free at one look only (the moment between two holders)', async (t) => {
    const { id, park, followers } = await openPark();
    t.mock.timers.enable({ apis: ['setTimeout'] });
    try {
      // Free at the first look, held at the next ones.
      const looks = [false, true, true];
      let asked = 0;
      const parked = parkBehind(id, new AbortController().signal, async () => looks[asked++] ?? true);
      await once(park, 'connection');
      const turn = () => new Promise((resolve) => setImmediate(resolve));
      for (const ms of [PARK_RECHECK_MS, TURN_STEP_MS, PARK_RECHECK_MS]) {
        t.mock.timers.tick(ms);
        await turn();
      }
      assert.equal(asked, 3);
      // The one ahead has had its turn: its park closes, and the waiter behind goes on.
      for (const socket of followers) socket.destroy();
      assert.equal(await parked, 'ended');
      assert.equal(followers.length, 1);
    } finally {
      for (const socket of followers) socket.destroy();
      park.close();
    }
  });

  it('take a lock its holder released even while the one ahead holds its park open and never takes it', async () => {
    const dir = tempDir();
    const port = await freePort();
    const orderFile = join(dir, 'order');
    writeFileSync(orderFile, '');
    const holder = await startHolder({ port, dir });
    const name = interlockName({ kind: 'port', port }, dir) ?? '';
    // A false waiter: it claims to have waited since 1970 and names a park that never closes.
    const { id, park, followers } = await openPark();
    const claim = connect({ path: name });
    await once(claim, 'connect');
    claim.write(`${JSON.stringify({ v: 1, op: 'wait', since: 0, pid: process.pid, park: id })}\n`);
    await once(claim, 'data');
    try {
      const waiter = spawnTs(fixture('queued-waiter.ts'), [JSON.stringify({ port, dir, index: 0, orderFile })], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      // Sent behind the false waiter, it waits at its park...
      await once(park, 'connection');
      const exit = once(waiter, 'exit');
      holder.child.stdin?.end();
      // ...and the holder's release still reaches it: it asks again (after PARK_RECHECK_MS), finds
      // the name free, and takes it by binding, as ever.
      assert.deepEqual(await exit, [0, null]);
      assert.equal(readFileSync(orderFile, 'utf8'), '0\n');
    } finally {
      claim.destroy();
      for (const socket of followers) socket.destroy();
      park.close();
    }
  });
});
