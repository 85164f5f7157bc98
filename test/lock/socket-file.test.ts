import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  existsSync,
  lchownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { basename, join } from 'node:path';
import { describe, it } from 'node:test';
import { acquireLock, inspectLock, lockPathFor, SocketDirectoryError, stopLock } from '../../src/index.ts';
import { ensureSocketDir, slotPath } from '../../src/interlock/socket-file.ts';
import { MAX_SOCKET_PATH_BYTES } from '../../src/interlock/socket-file-path.ts';
import { cli } from '../cli/_support.ts';
import { giveToNobody, NOBODY_UID, nobodyUnavailable, runTsAsNobody, spawnTsAsNobody } from '../helpers/as-nobody.ts';
import { freePort } from '../helpers/free-port.ts';
import { startHolder } from '../helpers/holder.ts';
import { interlockMode } from '../helpers/interlock-mode.ts';
import { deadPid, recordFor, writeRecord } from '../helpers/records.ts';
import { refusalOf } from '../helpers/refusal.ts';
import { finished, fixture, lineMatching, spawnTs } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

// These force the socket file: run once, in the default run, not again in each PORTLOCK_INTERLOCK run.
const posixOnly = {
  skip:
    (process.platform === 'win32' && 'socket files are a POSIX interlock') ||
    (interlockMode !== 'auto' && `these force the socket file; this run uses PORTLOCK_INTERLOCK=${interlockMode}`),
};
const interlock = 'socket-file' as const;

// This file's own host-wide socket directory (a test never touches /tmp/.portlock), reachable by
// nobody: children inherit it through the environment.
const parent = tempDir('portlock-sockets-');
chmodSync(parent, 0o755);
const socketDir = join(parent, 'sockets');
process.env.PORTLOCK_SOCKET_DIR = socketDir;
const portSocket = (port: number, slot = 0): string => slotPath(join(socketDir, `port-${port}.sock`), slot);

/** A socket file nobody listens on, as a holder killed with SIGKILL leaves it. */
async function plantDeadSocket(path: string): Promise<void> {
  ensureSocketDir(socketDir, true);
  const temp = `${path}.planting`;
  const server = createServer();
  await new Promise<void>((resolve) => server.listen({ path: temp, writableAll: true, readableAll: true }, resolve));
  linkSync(temp, path);
  // Closing removes the name it was bound at (the temp one); the link stays, dead.
  await new Promise((resolve) => server.close(resolve));
}

describe('socket-file interlock', posixOnly, () => {
  it('after a holder is killed with SIGKILL, its socket file stays and the next acquire takes it over at once', async () => {
    const dir = tempDir();
    const port = await freePort();
    const holder = await startHolder({ port, dir, interlock });
    assert.equal(holder.interlocked, true);
    holder.child.kill('SIGKILL');
    await once(holder.child, 'exit');
    assert.ok(lstatSync(portSocket(port)).isSocket(), 'the dead holder left its socket file');

    const lock = await acquireLock({ port, dir, interlock });
    assert.equal(lock.interlocked, true);
    assert.equal(lock.record.interlockKind, 'socket-file');
    assert.equal((await inspectLock({ port, dir, interlock })).state, 'held');
    await lock.release();
    assert.equal(existsSync(portSocket(port)), false, 'release removes its socket file');
    assert.equal((await inspectLock({ port, dir, interlock })).state, 'free');
  });

  it('hands a dead socket file to exactly one of 8 racers, every one of 100 rounds', {
    timeout: 240_000,
  }, async (t) => {
    const dir = tempDir();
    const port = await freePort();
    const path = lockPathFor({ port, dir });
    const dead = await deadPid();
    const workers = Array.from({ length: 8 }, () =>
      spawnTs(fixture('race-worker.ts'), [JSON.stringify({ port, dir, interlock })], {
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
        timeoutMs: 120_000,
      }),
    );
    type Result = { type: string; round: number; won: boolean; heldError?: boolean; pid: number; token?: string };
    const next = (worker: ChildProcess, match: (m: Result) => boolean): Promise<Result> =>
      new Promise((resolve) => {
        const on = (message: Result) => {
          if (!match(message)) return;
          worker.off('message', on);
          resolve(message);
        };
        worker.on('message', on);
      });
    await Promise.all(workers.map((worker) => next(worker, (m) => m.type === 'ready')));
    const wins = new Map<number, number>();
    for (let round = 0; round < 100; round++) {
      // A dead holder's socket file and its record, as SIGKILL leaves them.
      await plantDeadSocket(portSocket(port));
      writeRecord(path, recordFor(process.pid, { pid: dead, port, interlock: true, interlockKind: 'socket-file' }));
      const results = workers.map((worker) => next(worker, (m) => m.type === 'result' && m.round === round));
      const deadline = performance.timeOrigin + performance.now() + 30;
      for (const worker of workers) worker.send({ type: 'arm', round, deadline });
      const outcomes = await Promise.all(results);
      const winners = outcomes.filter((o) => o.won);
      assert.equal(winners.length, 1, `round ${round}: ${winners.length} winners`);
      assert.deepEqual(
        outcomes.filter((o) => !o.won && !o.heldError),
        [],
        `round ${round}: a loss is a LockHeldError`,
      );
      const winner = winners[0] as Result;
      assert.equal(JSON.parse(readFileSync(path, 'utf8')).token, winner.token);
      wins.set(winner.pid, (wins.get(winner.pid) ?? 0) + 1);
      const holder = workers.find((worker) => worker.pid === winner.pid) as ChildProcess;
      const released = next(holder, (m) => m.type === 'released' && m.round === round);
      holder.send({ type: 'release', round });
      await released;
      assert.equal(existsSync(portSocket(port)), false, `round ${round}: release removes the socket file`);
    }
    for (const worker of workers) worker.disconnect();
    await Promise.all(workers.map((worker) => once(worker, 'exit')));
    t.diagnostic(`wins per worker: ${[...wins.values()].join(' ')}`);
  });

  it("is not blocked by another user's dead socket file that it cannot remove: the next slot serves", {
    skip: nobodyUnavailable(),
  }, async () => {
    const port = await freePort();
    // Root's dead socket, in the sticky directory: nobody cannot remove or replace it.
    await plantDeadSocket(portSocket(port));
    const theirs = join(parent, `nobody-${port}`);
    mkdirSync(theirs, { mode: 0o700 });
    giveToNobody(theirs);
    const holder = spawnTsAsNobody(fixture('try-acquire.ts'), [
      JSON.stringify({ port, dir: theirs, interlock, hold: true }),
    ]);
    try {
      const outcome = JSON.parse(await lineMatching(holder, /"acquired"/));
      assert.equal(outcome.acquired, true, JSON.stringify(outcome));
      assert.equal(lstatSync(portSocket(port, 1)).uid, NOBODY_UID, "nobody's socket is in the second slot");
      // The port is held, host-wide: another user's acquire is refused, naming nobody's process.
      const error = await refusalOf({ port, dir: tempDir(), interlock }, 'acquired a port held in another slot');
      assert.match(error.message, new RegExp(`pid ${holder.pid}|nobody`));
    } finally {
      holder.stdin?.end();
      await finished(holder);
    }
    // Released: the first slot is still root's dead socket, and root takes it over.
    const lock = await acquireLock({ port, dir: tempDir(), interlock });
    assert.equal(lstatSync(portSocket(port)).uid, 0);
    await lock.release();
  });

  it('reports a squatter of another user by what the kernel says, and sends it no token', {
    skip: nobodyUnavailable() ?? (process.platform !== 'linux' && '/proc shows who holds a socket on Linux only'),
  }, async () => {
    const port = await freePort();
    ensureSocketDir(socketDir, true);
    const name = Buffer.from(portSocket(port), 'latin1').toString('hex');
    const squatter = spawnTsAsNobody(fixture('squatter.ts'), [
      JSON.stringify({ names: [name], answer: { pid: 1, name: 'percy', startedAt: new Date().toISOString() } }),
    ]);
    try {
      await lineMatching(squatter, /"ready":true/);
      const dir = tempDir();
      const error = await refusalOf({ port, dir, interlock }, 'acquired a squatted port');
      assert.match(error.message, new RegExp(`pid ${squatter.pid} .*user nobody.*claims to be "percy" pid 1`));
      const inspection = await inspectLock({ port, dir, interlock });
      assert.equal(inspection.holders?.[0]?.pid, squatter.pid);
      assert.equal(inspection.holders?.[0]?.uid, NOBODY_UID);
      assert.equal(inspection.claim?.pid, 1);
      assert.equal(inspection.record, undefined, 'a claim is never shown as the record');
    } finally {
      squatter.stdin?.end();
      await finished(squatter);
    }
  });

  it('gives a lock directory with a 200-character path a short socket, pointed to from the directory', async () => {
    const top = tempDir();
    const dir = join(top, 'd'.repeat(200 - top.length - 1));
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    assert.ok(dir.length >= 200, `${dir.length} characters`);
    const holder = await startHolder({ key: 'build', dir, interlock, stoppable: true });
    const pointer = join(dir, 'build.sock');
    const target = readlinkSync(pointer);
    assert.ok(Buffer.byteLength(target) < MAX_SOCKET_PATH_BYTES, target);
    assert.ok(lstatSync(target).isSocket());
    const error = await refusalOf({ key: 'build', dir, interlock }, 'acquired a held key');
    assert.equal(error.meta?.pid, holder.pid);
    holder.child.kill('SIGKILL');
    await once(holder.child, 'exit');
    const lock = await acquireLock({ key: 'build', dir, interlock });
    assert.equal(lock.interlocked, true);
    await lock.release();
    assert.equal(existsSync(target), false);
  });

  it('answers who, stop and wait as the abstract socket does', async () => {
    const dir = tempDir();
    const port = await freePort();
    const holder = await startHolder({ port, dir, interlock, stoppable: true, name: 'percy' });
    const exited = finished(holder.child);
    const inspection = await inspectLock({ port, dir, interlock });
    assert.equal(inspection.state, 'held');
    assert.equal(inspection.certainty, 'certain', inspection.reason);
    assert.equal(inspection.record?.interlockKind, 'socket-file');
    if (process.platform === 'linux') assert.equal(inspection.holders?.[0]?.pid, holder.pid);
    // status and list say which interlock holds it.
    assert.match((await cli(['status', String(port), '--dir', dir])).stdout, /, socket file \(/);
    assert.match((await cli(['list', '--dir', dir])).stdout, /socket file/);
    // A waiter is woken by the release, not by polling the record.
    const waiter = acquireLock({ port, dir, interlock, wait: 30_000 });
    const stopped = await stopLock({ port, dir, timeout: 10_000 });
    assert.equal(stopped.outcome, 'stopped', stopped.reason);
    assert.equal(stopped.via, 'request');
    const lock = await waiter;
    assert.equal(lock.record.pid, process.pid);
    await lock.release();
    await exited;
  });

  it('is not judged gone by a caller that looks at the abstract socket instead', {
    skip: process.platform !== 'linux' && 'the abstract socket is Linux only',
  }, async () => {
    const dir = tempDir();
    const port = await freePort();
    const holder = await startHolder({ port, dir, interlock });
    try {
      // The abstract name is free, but the holder never held it: its record says the socket file.
      const error = await refusalOf(
        { port, dir, interlock: 'auto' },
        'two holders: one by the socket file, one by the abstract socket',
      );
      assert.equal(error.meta?.pid, holder.pid);
    } finally {
      holder.child.kill('SIGKILL');
    }
  });

  it('refuses a socket directory that is a link, not sticky, or owned by another user, naming the fix', () => {
    const base = tempDir();
    const plain = join(base, 'plain');
    mkdirSync(plain, { mode: 0o777 });
    chmodSync(plain, 0o777);
    const link = join(base, 'link');
    symlinkSync(plain, link);
    const cases: [string, RegExp][] = [
      [plain, /not sticky/],
      [link, /symbolic link/],
    ];
    if (process.getuid?.() === 0) {
      const foreign = join(base, 'foreign');
      mkdirSync(foreign, { mode: 0o1777 });
      chmodSync(foreign, 0o1777);
      giveToNobody(foreign);
      cases.push([foreign, new RegExp(`owned by uid ${NOBODY_UID}`)]);
    }
    for (const [dir, why] of cases) {
      assert.throws(
        () => ensureSocketDir(dir, true),
        (error: unknown) =>
          error instanceof SocketDirectoryError &&
          why.test(error.message) &&
          /Next step: .*PORTLOCK_SOCKET_DIR/.test(error.message),
      );
    }
    const fresh = join(base, 'fresh');
    ensureSocketDir(fresh, true);
    assert.equal(lstatSync(fresh).mode & 0o7777, 0o1777);
    unlinkSync(link);
  });

  it('takes a key lock, by its own socket, where the shared socket directory is refused; a port lock there is refused', async () => {
    const plain = join(tempDir(), 'plain');
    mkdirSync(plain, { mode: 0o777 });
    chmodSync(plain, 0o777);
    process.env.PORTLOCK_SOCKET_DIR = plain;
    try {
      const lock = await acquireLock({ key: 'own-socket', dir: tempDir(), interlock });
      assert.equal(lock.interlocked, true);
      await lock.release();
      await assert.rejects(acquireLock({ port: await freePort(), dir: tempDir(), interlock }), SocketDirectoryError);
    } finally {
      process.env.PORTLOCK_SOCKET_DIR = socketDir;
    }
  });

  it('sweeps the temp sockets of processes that died between bind and link: old, refusing connections, and its own', async () => {
    const port = await freePort();
    ensureSocketDir(socketDir, true);
    const temp = (slot: number, hex: string, of = port) => join(socketDir, `.${basename(portSocket(of, slot))}.${hex}`);
    const longAgo = new Date(Date.now() - 60_000);
    const plantOld = async (path: string) => {
      await plantDeadSocket(path);
      utimesSync(path, longAgo, longAgo);
    };
    const swept = [temp(0, 'deadbeef'), temp(3, 'deadbee3')];
    for (const path of swept) await plantOld(path);
    // A taker's, between its bind and its listen (refused, as a dead one is, but new).
    const fresh = temp(0, 'f0f0f0f0');
    await plantDeadSocket(fresh);
    // Another user's: the sticky directory keeps it theirs.
    const theirs = temp(0, 'b2b2b2b2');
    await plantOld(theirs);
    lchownSync(theirs, NOBODY_UID, NOBODY_UID);
    const notSocket = temp(0, 'c3c3c3c3');
    writeFileSync(notSocket, '');
    utimesSync(notSocket, longAgo, longAgo);
    const otherPort = temp(0, 'deadbeef', port + 1);
    await plantOld(otherPort);
    // Old, but something listens on it.
    const live = temp(0, 'a1a1a1a1');
    const server = createServer();
    await new Promise<void>((resolve) => server.listen({ path: live }, resolve));
    utimesSync(live, longAgo, longAgo);
    try {
      const lock = await acquireLock({ port, dir: tempDir(), interlock });
      await lock.release();
      for (const path of swept) assert.equal(existsSync(path), false, `${path} swept`);
      for (const path of [fresh, theirs, notSocket, otherPort, live]) assert.ok(existsSync(path), `${path} kept`);
    } finally {
      await new Promise((resolve) => server.close(resolve));
      for (const path of [fresh, theirs, notSocket, otherPort]) unlinkSync(path);
    }

    // A key's, in its lock directory: on this process's first acquire there.
    const dir = tempDir();
    const keyTemp = join(dir, '.build.sock.0badf00d');
    await plantOld(keyTemp);
    const lock = await acquireLock({ key: 'build', dir, interlock });
    await lock.release();
    assert.equal(existsSync(keyTemp), false, `${keyTemp} swept`);
  });

  it('works for nobody too, in the socket directory root made', { skip: nobodyUnavailable() }, async () => {
    const port = await freePort();
    ensureSocketDir(socketDir, true);
    const theirs = join(parent, `nobody-own-${port}`);
    mkdirSync(theirs, { mode: 0o700 });
    giveToNobody(theirs);
    const { code, stdout, stderr } = await runTsAsNobody(fixture('try-acquire.ts'), [
      JSON.stringify({ port, dir: theirs, interlock }),
    ]);
    assert.equal(code, 0, stderr);
    assert.equal(JSON.parse(stdout).acquired, true, stdout);
  });
});
