// A stale `agent-<port>.net-<inode>.lock` of this network namespace (its holder SIGKILLed while a
// container's record stood at the plain file) beside a live holder of the same port at the plain
// file: listed stale with its own pid, not as the live holder's, and cleaned.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readlinkSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { acquireLock, cleanLocks, listLocks } from '../../src/index.ts';
import { freePort } from '../helpers/free-port.ts';
import { fixture, lineMatching, spawnTs } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

it('a stale own-namespace file beside a live plain-file holder is listed stale and cleaned', {
  skip: process.platform === 'linux' ? undefined : 'not Linux',
  timeout: 60_000,
}, async () => {
  const dir = tempDir();
  const port = await freePort();
  const inode = /\d+/.exec(readlinkSync('/proc/self/ns/net'))?.[0];
  const plain = join(dir, `agent-${port}.lock`);
  const own = join(dir, `agent-${port}.net-${inode}.lock`);
  const dead = spawnTs(fixture('holder.ts'), [JSON.stringify({ port, dir })], { stdio: ['pipe', 'pipe', 'inherit'] });
  await lineMatching(dead, /"ready":true/);
  const exited = once(dead, 'exit');
  dead.kill('SIGKILL');
  await exited;
  // Staged: where that holder's record would be had a container's record stood at the plain file.
  renameSync(plain, own);
  const live = await acquireLock({ port, dir });
  try {
    assert.equal(live.path, plain);
    const row = (await listLocks({ dir })).find((lock) => lock.path === own);
    assert.equal(
      row?.state,
      'stale',
      `listed ${row?.state}: ${row?.reason} (pid ${row?.record?.pid}, live holder ${process.pid}, dead ${dead.pid})`,
    );
    const { removed } = await cleanLocks({ dir });
    assert.deepEqual(
      removed.map((lock) => lock.path),
      [own],
    );
  } finally {
    live.releaseSync();
  }
});
