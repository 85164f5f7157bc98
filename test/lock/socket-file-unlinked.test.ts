import assert from 'node:assert/strict';
import { chmodSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { acquireLock } from '../../src/index.ts';
import { freePort } from '../helpers/free-port.ts';
import { interlockMode } from '../helpers/interlock-mode.ts';
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
      const second = await acquireLock({ port, dir: tempDir(), interlock: 'socket-file', wait: 0 }).then(
        (lock) => lock,
        () => undefined,
      );
      second?.releaseSync();
      assert.equal(second, undefined, 'granted twice');
    } finally {
      first.releaseSync();
    }
  });
});
