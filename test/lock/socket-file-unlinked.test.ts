import assert from 'node:assert/strict';
import { once } from 'node:events';
import { chmodSync, mkdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { acquireLock, LockHeldError, stopLock } from '../../src/index.ts';
import { giveToNobody, nobodyUnavailable, spawnTsAsNobody } from '../helpers/as-nobody.ts';
import { freePort } from '../helpers/free-port.ts';
import { interlockMode } from '../helpers/interlock-mode.ts';
import { processStartOf } from '../helpers/records.ts';
import { fixture, lineMatching } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

// These force the socket file: run once, in the default run, not again in each PORTLOCK_INTERLOCK run.
const linuxOnly = {
  skip:
    (process.platform !== 'linux' && 'the kernel shows a socket whose link is gone only through /proc/net/unix') ||
    (interlockMode !== 'auto' && `these force the socket file; this run uses PORTLOCK_INTERLOCK=${interlockMode}`),
};

// This file's own host-wide socket directory (a test never touches /tmp/.portlock).
const parent = tempDir('portlock-sockets-');
chmodSync(parent, 0o755);
const socketDir = join(parent, 'sockets');
process.env.PORTLOCK_SOCKET_DIR = socketDir;

// A cleaner of /tmp may remove a live holder's link in the shared directory: the holder still listens.
describe('a socket-file holder whose link at the slot was removed', linuxOnly, () => {
  it('still holds the port: it is not granted again, from another directory either', async () => {
    const port = await freePort();
    const first = await acquireLock({ port, dir: tempDir(), interlock: 'socket-file' });
    unlinkSync(join(socketDir, `port-${port}.sock`));
    try {
      const second: unknown = await acquireLock({ port, dir: tempDir(), interlock: 'socket-file', wait: 0 }).then(
        (lock) => lock,
        (error: unknown) => error,
      );
      if (!(second instanceof Error)) {
        (second as { releaseSync(): void }).releaseSync();
        assert.fail('granted twice');
      }
      assert.ok(second instanceof LockHeldError, String(second));
      assert.match(second.message, new RegExp(`pid ${process.pid} .*holds the lock's socket, though its file at`));
    } finally {
      first.releaseSync();
    }
  });

  it("its token never reaches another user's socket linked at the slot in its place", {
    skip: nobodyUnavailable(),
  }, async () => {
    const port = await freePort();
    const dir = tempDir();
    const lock = await acquireLock({ port, dir, interlock: 'socket-file' });
    const slot = join(socketDir, `port-${port}.sock`);
    const token = JSON.parse(readFileSync(join(dir, `agent-${port}.lock`), 'utf8')).token as string;
    // What anyone can read of the holder: its pid and start time, and the inode of its listening
    // socket (/proc/net/unix shows it under the temp name it was bound at).
    const line = readFileSync('/proc/net/unix', 'utf8')
      .split('\n')
      .find((l) => l.includes(`${socketDir}/.port-${port}.sock.`));
    const socketInode = line?.trim().split(/\s+/)[6];
    assert.ok(socketInode, 'the holder is in the table');
    unlinkSync(slot);
    const own = join(parent, `nobody-${port}`);
    mkdirSync(own);
    giveToNobody(own);
    const answer = {
      portlock: 1,
      pid: process.pid,
      startedAt: new Date().toISOString(),
      user: 'root',
      port,
      processStart: processStartOf(process.pid),
      interlock: true,
      interlockKind: 'socket-file',
      socketInode,
    };
    const bindAt = Buffer.from(join(own, 's.sock'), 'latin1').toString('hex');
    const squatter = spawnTsAsNobody(fixture('squatter.ts'), [
      JSON.stringify({ names: [bindAt], linkAt: slot, answer }),
    ]);
    try {
      await lineMatching(squatter, /"ready":true/);
      let heard = '';
      squatter.stdout?.on('data', (chunk: Buffer) => {
        heard += chunk.toString();
      });
      const stopped = await stopLock({ port, dir, timeout: 300 });
      assert.equal(stopped.outcome, 'still-running');
      assert.match(stopped.reason ?? '', /token was not sent: the socket file at .* is not the one its holder linked/);
      // The squatter reports a stop request's token before it answers: all it heard is in by the time it has exited.
      const closed = once(squatter, 'close');
      squatter.stdin?.end();
      await closed;
      assert.ok(!heard.includes(token), `the token reached the squatter: ${heard}`);
    } finally {
      squatter.stdin?.end();
      lock.releaseSync();
    }
  });
});
