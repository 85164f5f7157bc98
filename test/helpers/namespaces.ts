import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { AcquireOptions } from '../../src/index.ts';
import { fixture, lineMatching, spawnTracked } from './spawn.ts';

/** Why a network namespace of its own cannot be made here, or undefined when it can. */
export function privateNetworkUnavailable(): string | undefined {
  const probe = spawnSync('unshare', ['--net', '--', 'ip', 'link', 'set', 'lo', 'up'], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  return probe.status === 0
    ? undefined
    : `unshare --net with ip failed (${probe.error?.message ?? probe.stderr.trim()})`;
}

/** Why `unshare` with these flags cannot run here, or undefined when it can. */
export function unshareUnavailable(flags: string[]): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  const tried = spawnSync('unshare', [...flags, 'true'], { encoding: 'utf8', timeout: 10_000 });
  return tried.status === 0 ? undefined : `the kernel refuses unshare ${flags.join(' ')}: ${tried.stderr.trim()}`;
}

/**
 * A holder of `options` (test/fixtures/holder.ts) started inside new namespaces that share this
 * file system. Resolves once it holds the lock, with its host pid and a kill that awaits its end.
 */
export async function holdInside(flags: string[], options: AcquireOptions, env?: NodeJS.ProcessEnv) {
  const node = [process.execPath, '--import', 'tsx', fixture('holder.ts'), JSON.stringify(options)];
  const child = spawnTracked('unshare', [...flags, ...node], {
    stdio: ['pipe', 'pipe', 'inherit'],
    ...(env && { env: { ...process.env, ...env } }),
  });
  await lineMatching(child, /"ready":true/);
  // With --fork, the holder is unshare's child (pid 1 of its namespace); without, unshare itself.
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
