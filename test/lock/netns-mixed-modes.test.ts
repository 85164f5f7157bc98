// A port held through the abstract socket whose record went to agent-<port>.net-<inode>.lock
// (because a container's record stood at the plain file) must stay held for a taker of the same
// port in the same network namespace that goes by the plain file (interlock 'off' or
// 'socket-file'), also once the container's record is gone.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { acquireLock, type LockHandle } from '../../src/index.ts';
import { freePort } from '../helpers/free-port.ts';
import { interlockMode } from '../helpers/interlock-mode.ts';
import { fixture, lineMatching, spawnTracked } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const CONTAINER = ['--pid', '--net', '--fork', '--mount-proc'];
const skip =
  process.platform !== 'linux'
    ? 'not Linux'
    : spawnSync('unshare', [...CONTAINER, 'true'], { timeout: 10_000 }).status === 0
      ? undefined
      : 'the kernel refuses unshare';
// The host's record goes beside the container's only when both hold the port's abstract socket.
const abstractOnly =
  interlockMode !== 'auto' &&
  `it tests the abstract socket's own file; this run uses PORTLOCK_INTERLOCK=${interlockMode}`;

describe('a host holder kept beside a container record, then a plain-file-only acquirer of the same port', () => {
  for (const mode of ['off', 'socket-file'] as const) {
    it(`interlock '${mode}' is refused while the host's abstract-socket holder lives`, {
      skip: skip ?? abstractOnly,
      timeout: 60_000,
    }, async () => {
      const dir = tempDir();
      const port = await freePort();
      const node = [process.execPath, '--import', 'tsx', fixture('holder.ts'), JSON.stringify({ port, dir })];
      const inside = spawnTracked('unshare', [...CONTAINER, ...node], { stdio: ['pipe', 'pipe', 'inherit'] });
      let host: LockHandle | undefined;
      let second: LockHandle | undefined;
      try {
        await lineMatching(inside, /"ready":true/);
        assert.equal(existsSync(join(dir, `agent-${port}.lock`)), true);
        host = await acquireLock({ port, dir });
        assert.match(host.path, /\.net-\d+\.lock$/, 'the host keeps its record beside the container');
        // The container leaves (releasing its record).
        const gone = once(inside, 'exit');
        inside.stdin?.end();
        await gone;
        assert.equal(existsSync(join(dir, `agent-${port}.lock`)), false);
        second = await acquireLock({ port, dir, interlock: mode, wait: 0 }).catch(() => undefined);
        assert.equal(second, undefined, `port ${port} handed out twice: ${host.path} and ${second?.path}`);
      } finally {
        second?.releaseSync();
        host?.releaseSync();
        inside.kill('SIGKILL');
      }
    });
  }
});
