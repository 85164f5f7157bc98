// A socket file that accepts a connection, and is the same file afterwards, is held, whatever
// /proc/net/unix here lists: the table shows the path a socket was bound at, which its binder may
// make look like another spelling of the lock's file. Whether the table lists it only changes the
// wording and whom it names.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, renameSync, symlinkSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  type AcquireOptions,
  acquireLock,
  inspectLock,
  LockHeldError,
  lockPathFor,
  stopLock,
} from '../../src/index.ts';
import { ensureSocketDir } from '../../src/interlock/socket-file.ts';
import { BIN } from '../cli/_support.ts';
import {
  giveToNobody,
  NOBODY_UID,
  nobodyUnavailable,
  ownNamespacesRefused,
  spawnTsAsNobody,
  squatAsNobodyInOwnNamespaces,
} from '../helpers/as-nobody.ts';
import { freePort } from '../helpers/free-port.ts';
import { interlockMode } from '../helpers/interlock-mode.ts';
import { holdInside, unshareUnavailable } from '../helpers/namespaces.ts';
import { liveProcess, recordFor, writeRecord } from '../helpers/records.ts';
import { finished, fixture, lineMatching, spawnTracked } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

// These force the socket file: run once, in the default run, not again in each PORTLOCK_INTERLOCK run.
const skip =
  (process.platform !== 'linux' && '/proc/net/unix is Linux') ||
  (interlockMode !== 'auto' && `these force the socket file; this run uses PORTLOCK_INTERLOCK=${interlockMode}`) ||
  nobodyUnavailable();

/** Asked only where these tests run at all (nobody is there). */
const namespacesRefused = (): string | undefined => (skip ? undefined : ownNamespacesRefused());

// This file's own host-wide socket directory (a test never touches /tmp/.portlock).
const parent = tempDir('portlock-sockets-');
chmodSync(parent, 0o755);
const socketDir = join(parent, 'sockets');
if (!skip) process.env.PORTLOCK_SOCKET_DIR = socketDir;

/** A port, a lock directory, and the socket directory made as a host's would be. */
async function freshLock(): Promise<{ port: number; dir: string }> {
  ensureSocketDir(socketDir, true);
  return { port: await freePort(), dir: tempDir() };
}

/** Takes the port's lock through the socket file, which must be refused; `check` reads the message. */
async function assertRefused(port: number, dir: string, check: (message: string) => void): Promise<void> {
  await assert.rejects(acquireLock({ port, dir, interlock: 'socket-file' }), (error: unknown) => {
    assert.ok(error instanceof LockHeldError, String(error));
    check(error.message);
    return true;
  });
}

/** Ends a child that holds until its stdin closes, and waits for it. */
async function ended(child: ChildProcess): Promise<void> {
  child.stdin?.end();
  await finished(child);
}

describe('a live socket at a lock socket file that the table here lists under another path', { skip }, () => {
  it("nobody's socket, linked into the slot, its own directory then made a link to the socket directory: held, its path not followed", {
    timeout: 60_000,
  }, async () => {
    const { port, dir } = await freshLock();
    const own = join(parent, `nobody-${port}`);
    mkdirSync(own);
    giveToNobody(own);
    const slot = join(socketDir, `port-${port}.sock`);
    const bindAt = Buffer.from(join(own, `port-${port}.sock`), 'latin1').toString('hex');
    const squatter = spawnTsAsNobody(fixture('squatter.ts'), [
      JSON.stringify({ names: [bindAt], linkAt: slot, answer: { pid: 1, name: 'percy' } }),
    ]);
    try {
      const ready = JSON.parse(await lineMatching(squatter, /"ready":true/)) as { pid: number };
      // The table's path of the squatter's socket now leads to the socket directory.
      renameSync(own, `${own}.old`);
      symlinkSync(socketDir, own);
      const inspection = await inspectLock({ port, dir, interlock: 'socket-file' });
      assert.equal(inspection.state, 'held', inspection.reason);
      assert.equal(inspection.unlistedSocket?.uid, NOBODY_UID);
      // The table's path is the binder's word (a line can be forged): no path is resolved, no process named.
      assert.equal(inspection.unlistedSocket?.listedAs, undefined);
      assert.ok(!inspection.holders?.some((holder) => holder.pid !== ready.pid), inspection.reason);
      await assertRefused(port, dir, (message) => {
        assert.doesNotMatch(message, /just leaving/);
        // A live socket file is never offered for removal.
        assert.doesNotMatch(message, /rm /);
        assert.match(message, /Next step: stop the process that listens on /);
      });
    } finally {
      await ended(squatter);
    }
  });
});

describe('a socket directory reached through a symbolic link on the way', { skip }, () => {
  it('a holder that names it by the link and a reader that names it by its real path meet at one socket', {
    timeout: 60_000,
  }, async () => {
    const { port, dir } = await freshLock();
    const link = join(parent, `link-${port}`);
    symlinkSync(parent, link);
    const holder = spawnTracked(
      process.execPath,
      ['--import', 'tsx', fixture('holder.ts'), JSON.stringify({ port, dir: tempDir(), interlock: 'socket-file' })],
      { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, PORTLOCK_SOCKET_DIR: join(link, 'sockets') } },
    );
    try {
      await lineMatching(holder, /"ready":true/);
      const inspection = await inspectLock({ port, dir, interlock: 'socket-file' });
      assert.equal(inspection.state, 'held', inspection.reason);
      assert.equal(inspection.unlistedSocket, undefined, inspection.reason);
      assert.deepEqual(
        inspection.holders?.map((found) => found.pid),
        [holder.pid],
      );
      await assertRefused(port, dir, (message) => {
        assert.doesNotMatch(message, /just leaving/);
      });
    } finally {
      await ended(holder);
    }
  });
});

describe('a socket-file holder in another network namespace, sharing this pid namespace', {
  skip: skip || unshareUnavailable(['--net']),
}, () => {
  it('is named by its record where the kernel shows that process holding the socket there, and stopped with its token', {
    timeout: 60_000,
  }, async () => {
    const { port, dir } = await freshLock();
    const holder = await holdInside(['--net'], {
      port,
      dir,
      interlock: 'socket-file',
      stoppable: true,
    } as AcquireOptions);
    try {
      const inspection = await inspectLock({ port, dir, interlock: 'socket-file' });
      assert.equal(inspection.state, 'held', inspection.reason);
      assert.equal(inspection.unlistedSocket, undefined, inspection.reason);
      assert.equal(inspection.record?.pid, holder.pid, inspection.reason);
      const stopped = await stopLock({ port, dir, timeout: 10_000 });
      assert.equal(stopped.outcome, 'stopped', stopped.reason);
      assert.equal(stopped.via, 'request');
      assert.deepEqual(stopped.signalled, []);
    } finally {
      await holder.kill();
    }
  });

  it("a squatter claiming another network namespace is held by the kernel's word: the record on file does not decide", {
    skip: namespacesRefused(),
    timeout: 60_000,
  }, async () => {
    const { port, dir } = await freshLock();
    const bystander = await liveProcess();
    writeRecord(
      lockPathFor({ port, dir }),
      recordFor(bystander.pid, { port, interlock: true, interlockKind: 'socket-file' }),
    );
    const slot = Buffer.from(join(socketDir, `port-${port}.sock`), 'latin1').toString('hex');
    const squatter = squatAsNobodyInOwnNamespaces({
      names: [slot],
      answer: { pid: bystander.pid, name: 'percy', netns: 'net:[4026530000]' },
    });
    try {
      const ready = JSON.parse(await lineMatching(squatter, /"ready":true/)) as { pid: number };
      const inspection = await inspectLock({ port, dir, interlock: 'socket-file' });
      assert.equal(inspection.state, 'held', inspection.reason);
      assert.equal(inspection.unlistedSocket?.uid, NOBODY_UID, inspection.reason);
      assert.equal(inspection.record, undefined, 'the record on file is not believed');
      assert.deepEqual(
        inspection.holders?.map((found) => found.pid),
        [ready.pid],
      );
      const stopped = await stopLock({ port, dir, force: true, timeout: 300 });
      assert.deepEqual(stopped.signalled, []);
      assert.equal(bystander.child.exitCode, null);
    } finally {
      await ended(squatter);
      bystander.child.kill('SIGKILL');
    }
  });
});

describe('a holder whose socket directory is bind-mounted at another path (another mount namespace)', {
  skip: skip || unshareUnavailable(['--mount', '--propagation', 'private']),
}, () => {
  it('is held, and its socket file is not offered for removal', { timeout: 60_000 }, async () => {
    const { port, dir } = await freshLock();
    const mountAt = join(parent, `mounted-${port}`);
    mkdirSync(mountAt);
    const options = JSON.stringify({ port, dir: tempDir(), interlock: 'socket-file' });
    const script = `mount --bind "${socketDir}" "${mountAt}" && PORTLOCK_SOCKET_DIR="${mountAt}" exec "${process.execPath}" --import tsx "${fixture('holder.ts')}" '${options}'`;
    const holder = spawnTracked('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    try {
      await lineMatching(holder, /"ready":true/);
      const inspection = await inspectLock({ port, dir, interlock: 'socket-file' });
      assert.equal(inspection.state, 'held', inspection.reason);
      // Listed under the mount's path, which the table alone cannot prove leads here: held, by nobody named.
      assert.equal(inspection.unlistedSocket?.listedAs, undefined, inspection.reason);
      assert.equal(inspection.record, undefined, inspection.reason);
      await assertRefused(port, dir, (message) => {
        assert.match(message, /or bound at another path/);
        assert.doesNotMatch(message, /rm /, 'a live socket file is never offered for removal');
      });
    } finally {
      await ended(holder);
    }
  });
});

describe('a forged table line naming another spelling of the socket file', { skip }, () => {
  it("names no process but the file owner's: not root's, whose TCP socket's inode the line gives", {
    skip: namespacesRefused(),
    timeout: 60_000,
  }, async () => {
    const { port, dir } = await freshLock();
    const slot = join(socketDir, `port-${port}.sock`);
    // A TCP listener of this process (root's): its inode is shown once, in /proc/net/tcp, not in the unix table.
    const tcp = createServer();
    await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
    const tcpPort = (tcp.address() as AddressInfo).port;
    const hexPort = tcpPort.toString(16).toUpperCase().padStart(4, '0');
    const tcpLine = readFileSync('/proc/net/tcp', 'utf8')
      .split('\n')
      .map((line) => line.trim().split(/\s+/))
      .find((fields) => fields[1] === `0100007F:${hexPort}` && fields[3] === '0A');
    const tcpInode = tcpLine?.[9];
    assert.ok(tcpInode !== undefined && tcpInode !== '0', 'the TCP listener shows in /proc/net/tcp');
    const squatter = squatAsNobodyInOwnNamespaces({
      names: [Buffer.from(slot, 'latin1').toString('hex')],
      answer: { pid: 1, name: 'percy' },
    });
    // Short (an abstract name is at most 107 bytes): the parser reads fields, not columns.
    const forged = `\0\n0: 0 0 10000 1 1 ${tcpInode} ${socketDir}//port-${port}.sock\n`;
    assert.ok(forged.length < 108, forged);
    const forger = spawnTsAsNobody(fixture('squatter.ts'), [
      JSON.stringify({ names: [Buffer.from(forged, 'latin1').toString('hex')], answer: { pid: 1 } }),
    ]);
    try {
      const ready = JSON.parse(await lineMatching(squatter, /"ready":true/)) as { pid: number };
      await lineMatching(forger, /"ready":true/);
      const inspection = await inspectLock({ port, dir, interlock: 'socket-file' });
      assert.equal(inspection.state, 'held', inspection.reason);
      assert.equal(inspection.unlistedSocket?.uid, NOBODY_UID, inspection.reason);
      const pids = inspection.holders?.map((holder) => holder.pid) ?? [];
      assert.ok(!pids.includes(process.pid), `root's process is named a holder: ${inspection.reason}`);
      assert.deepEqual(pids, [ready.pid]);
      await assertRefused(port, dir, (message) => {
        assert.doesNotMatch(message, new RegExp(`\\b${process.pid}\\b`));
      });
    } finally {
      squatter.stdin?.end();
      forger.stdin?.end();
      await Promise.all([finished(squatter), finished(forger)]);
      tcp.close();
    }
  });
});

describe('a live socket file whose change time anyone with write access bumps', { skip }, () => {
  it('is the same file throughout the look: held every time, never stale', {
    skip: namespacesRefused(),
    timeout: 60_000,
  }, async () => {
    const { port, dir } = await freshLock();
    const slot = join(socketDir, `port-${port}.sock`);
    const squatter = squatAsNobodyInOwnNamespaces({
      names: [Buffer.from(slot, 'latin1').toString('hex')],
      answer: { pid: 1, name: 'percy' },
    });
    let toucher: Promise<unknown> | undefined;
    let stopTouching = () => {};
    try {
      await lineMatching(squatter, /"ready":true/);
      // Its times set to now, over and over (by its owner here; any user may, with `touch`, as it is 0777): its ctime moves.
      const touching = spawnTsAsNobody(fixture('toucher.ts'), [slot]);
      toucher = finished(touching);
      stopTouching = () => touching.kill('SIGKILL');
      await lineMatching(touching, /touching/);
      const states: string[] = [];
      for (let round = 0; round < 30; round++) {
        states.push((await inspectLock({ port, dir, interlock: 'socket-file' })).state);
      }
      assert.deepEqual(
        states.filter((state) => state !== 'held'),
        [],
      );
    } finally {
      stopTouching();
      squatter.stdin?.end();
      await Promise.all([finished(squatter), toucher]);
    }
  });
});

describe('a command that portlock run handed a socket file to, in another network namespace', {
  skip: skip || unshareUnavailable(['--net']),
}, () => {
  it('holds the lock after run is gone: stop waits for it, is never "stopped" while it holds, and --force signals it', {
    timeout: 60_000,
  }, async () => {
    const { port, dir } = await freshLock();
    // run's command ignores SIGTERM and is killed after it; its own child (ignoring SIGTERM too) keeps the socket.
    const script = 'trap "" TERM; sleep 30 >/dev/null & echo "sleeping $!"; wait';
    const run = spawnTracked(
      'unshare',
      [
        '--net',
        process.execPath,
        '--import',
        'tsx',
        BIN,
        'run',
        '-p',
        String(port),
        '--dir',
        dir,
        '--kill-after',
        '0.1',
        '--',
        'sh',
        '-c',
        script,
      ],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
        env: { ...process.env, PORTLOCK_INTERLOCK: 'socket-file' },
        timeoutMs: 60_000,
      },
    );
    const done = finished(run);
    let sleeper: number | undefined;
    try {
      sleeper = Number(/sleeping (\d+)/.exec(await lineMatching(run, /sleeping \d+/))?.[1]);
      const polite = await stopLock({ port, dir, timeout: 1500 });
      await done;
      assert.equal(polite.outcome, 'still-running', polite.reason);
      const inspection = await inspectLock({ port, dir, interlock: 'socket-file' });
      assert.equal(inspection.state, 'held', inspection.reason);
      // run is gone, and its record with it: a stop looks at the socket file as PORTLOCK_INTERLOCK says.
      process.env.PORTLOCK_INTERLOCK = 'socket-file';
      const forced = await stopLock({ port, dir, force: true, timeout: 1500 }).finally(() => {
        delete process.env.PORTLOCK_INTERLOCK;
      });
      assert.equal(forced.outcome, 'stopped', forced.reason);
      assert.ok(forced.signalled.includes(sleeper), `the command's child is signalled: ${forced.reason}`);
    } finally {
      run.kill('SIGKILL');
      if (sleeper !== undefined) {
        try {
          process.kill(sleeper, 'SIGKILL');
        } catch {
          // Gone already.
        }
      }
      await done;
    }
  });
});
