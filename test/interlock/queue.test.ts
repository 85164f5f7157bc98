import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ask } from '../../src/interlock/client.ts';
import { interlockName } from '../../src/interlock/name.ts';
import { parkName } from '../../src/interlock/protocol.ts';
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

/**
 * Until `waiters` are placed in the holder's queue: each either connected to the holder with its
 * request read, or waiting at the park of one of the others (where the holder sent it, so placed
 * too); and then a question answered, which the holder takes up only after what it read before.
 * The kernel's table has no event to await, so it is looked at.
 */
async function untilQueued(name: string, waiters: number[], timeoutMs = 30_000): Promise<void> {
  const parks = waiters.map((pid) => shownName(parkName(`${pid}-`)).replace(/@+$/, ''));
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const atHolder = acceptedConnections((shown) => shown === shownName(name));
    const parked = acceptedConnections((shown) => parks.some((park) => shown.startsWith(park)));
    const placed = atHolder.length + parked.length;
    if (placed >= waiters.length && atHolder.every((connection) => connection.unread === 0)) break;
    if (performance.now() > deadline) throw new Error(`${waiters.length} waiters did not queue within ${timeoutMs} ms`);
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
      // One after another: each starts waiting only once the one before it has.
      for (let index = 0; index < count; index++) {
        const waiter = spawnTs(fixture('queued-waiter.ts'), [JSON.stringify({ port, dir, index, orderFile })], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        await lineMatching(waiter, /"waiting":true/);
        waiters.push(waiter);
      }
      await untilQueued(
        name,
        waiters.map((waiter) => waiter.pid ?? 0),
      );
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
});
