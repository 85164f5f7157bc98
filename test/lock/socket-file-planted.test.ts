import assert from 'node:assert/strict';
import { once } from 'node:events';
import { chmodSync, lchownSync, lstatSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { acquireLock, inspectLock } from '../../src/index.ts';
import { ensureSocketDir, slotPath } from '../../src/interlock/socket-file.ts';
import { NOBODY_GID, NOBODY_UID } from '../helpers/as-nobody.ts';
import { freePort } from '../helpers/free-port.ts';
import { interlockMode } from '../helpers/interlock-mode.ts';
import { tempDir } from '../helpers/temp-dir.ts';

// These force the socket file: run once, in the default run, not again in each PORTLOCK_INTERLOCK run.
const posixOnly = {
  skip:
    (process.platform === 'win32' && 'socket files are a POSIX interlock') ||
    (interlockMode !== 'auto' && `these force the socket file; this run uses PORTLOCK_INTERLOCK=${interlockMode}`),
};

// This file's own host-wide socket directory (a test never touches /tmp/.portlock).
const parent = tempDir('portlock-sockets-');
chmodSync(parent, 0o755);
const socketDir = join(parent, 'sockets');
process.env.PORTLOCK_SOCKET_DIR = socketDir;

/** A live socket elsewhere that counts the connections made to it, in the order they came. */
async function countingSocket(): Promise<{ path: string; seen: () => Promise<number>; close: () => void }> {
  const path = join(tempDir('portlock-target-'), 'silent.sock');
  const open: Socket[] = [];
  const server = createServer((socket) => open.push(socket));
  server.listen({ path });
  await once(server, 'listening');
  return {
    path,
    // Connections are accepted in the order they were made: once this one is in, any earlier one is.
    seen: async () => {
      const mine = connect({ path });
      await once(server, 'connection');
      mine.destroy();
      return open.length - 1;
    },
    close: () => {
      for (const socket of open) socket.destroy();
      server.close();
    },
  };
}

describe('a link or file planted at a port slot in the shared socket directory', posixOnly, () => {
  it('is never followed: the acquire takes the next slot and connects to nothing the link points at', async () => {
    ensureSocketDir(socketDir, true);
    const target = await countingSocket();
    const port = await freePort();
    const base = join(socketDir, `port-${port}.sock`);
    symlinkSync(target.path, base);
    lchownSync(base, NOBODY_UID, NOBODY_GID);
    const dir = tempDir();
    try {
      const lock = await acquireLock({ port, dir, interlock: 'socket-file', wait: 0 });
      try {
        assert.ok(lstatSync(slotPath(base, 1)).isSocket(), 'the next slot holds the lock');
        const inspected = await inspectLock({ port, dir, interlock: 'socket-file' });
        assert.equal(inspected.state, 'held');
      } finally {
        lock.releaseSync();
      }
      assert.ok(lstatSync(base).isSymbolicLink(), 'the planted link is left alone');
      assert.equal(await target.seen(), 0, 'nothing connected to the socket the link points at');
    } finally {
      target.close();
    }
  });

  it('a regular file at the slot is skipped the same way', async () => {
    ensureSocketDir(socketDir, true);
    const port = await freePort();
    const base = join(socketDir, `port-${port}.sock`);
    writeFileSync(base, 'not a socket');
    lchownSync(base, NOBODY_UID, NOBODY_GID);
    const lock = await acquireLock({ port, dir: tempDir(), interlock: 'socket-file', wait: 0 });
    try {
      assert.ok(lstatSync(slotPath(base, 1)).isSocket());
    } finally {
      lock.releaseSync();
    }
  });
});
