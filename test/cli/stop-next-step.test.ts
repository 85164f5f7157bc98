// The next step `portlock stop` prints where it cannot stop the holder: one the reader can take,
// naming only files that exist, and never one that would let a second instance start.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { AcquireOptions } from '../../src/index.ts';
import { freePort } from '../helpers/free-port.ts';
import { fixture, lineMatching, spawnTracked } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { cli } from './_support.ts';

/** Why `unshare` with these flags cannot run here, or undefined when it can. */
function unshareUnavailable(flags: string[]): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  const tried = spawnSync('unshare', [...flags, 'true'], { encoding: 'utf8', timeout: 10_000 });
  return tried.status === 0 ? undefined : `the kernel refuses unshare ${flags.join(' ')}: ${tried.stderr.trim()}`;
}

/** A holder of `options` started inside new namespaces sharing this file system; its host pid. */
async function holdInside(flags: string[], options: AcquireOptions, env?: NodeJS.ProcessEnv) {
  const node = [process.execPath, '--import', 'tsx', fixture('holder.ts'), JSON.stringify(options)];
  const child = spawnTracked('unshare', [...flags, ...node], {
    stdio: ['pipe', 'pipe', 'inherit'],
    ...(env && { env: { ...process.env, ...env } }),
  });
  await lineMatching(child, /"ready":true/);
  const pid = flags.includes('--fork')
    ? Number(readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/)[0])
    : (child.pid as number);
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    process.kill(pid, 'SIGKILL');
    await exited;
  };
  return { child, pid, kill };
}

const PID_NS = ['--pid', '--fork', '--mount-proc'];

describe('portlock stop: the next step where the holder cannot be stopped from here', () => {
  it('a holder in another pid namespace, through another directory: stop it through that directory, no absent file named', {
    skip: unshareUnavailable(PID_NS),
    timeout: 60_000,
  }, async () => {
    const root = tempDir();
    const holding = join(root, 'pc');
    const other = join(root, 'e2');
    const port = await freePort();
    const holder = await holdInside(PID_NS, { port, dir: holding });
    try {
      const stop = await cli(['stop', String(port), '--dir', other]);
      assert.notEqual(stop.code, 0, stop.stderr);
      assert.ok(!existsSync(join(other, `agent-${port}.lock`)));
      assert.doesNotMatch(stop.stderr, /remove /, stop.stderr);
      assert.match(stop.stderr, new RegExp(`^Next step: portlock stop ${port} --dir ${holding}$`, 'm'), stop.stderr);
    } finally {
      await holder.kill();
    }
  });
});
