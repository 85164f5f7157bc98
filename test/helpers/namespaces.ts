import { spawnSync } from 'node:child_process';

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
