import { spawnSync } from 'node:child_process';
import { chownSync } from 'node:fs';
import { finished, fixture, projectRoot, spawnTracked } from './spawn.ts';

export const NOBODY_UID = 65534;
export const NOBODY_GID = 65534;

let cached: string | undefined | null = null;

/**
 * Why this machine cannot run a child as `nobody`, or undefined when it can. The tests run as
 * root; EPERM and foreign-owner cases need an unprivileged process.
 */
export function nobodyUnavailable(): string | undefined {
  if (cached !== null) return cached;
  if (process.platform !== 'linux') cached = 'not Linux';
  else if (process.getuid?.() !== 0) cached = 'tests are not running as root, so they cannot switch to nobody';
  else {
    const probe = spawnSync(
      'setpriv',
      [...setprivArgs(), process.execPath, '--import', 'tsx', fixture('import-check.ts')],
      { cwd: projectRoot, encoding: 'utf8', timeout: 60_000 },
    );
    cached =
      probe.status === 0
        ? undefined
        : `setpriv as nobody failed (${probe.error?.message ?? probe.stderr.trim().split('\n')[0] ?? probe.status}); the project must be readable by nobody, and the temp directory reachable`;
  }
  return cached;
}

/** What runs a command as nobody: `setpriv` with these arguments, then the command. */
export function setprivArgs(): string[] {
  return [`--reuid=${NOBODY_UID}`, `--regid=${NOBODY_GID}`, '--clear-groups', '--'];
}

/** Starts any command as nobody, tracked and timed out as every test child is. */
export function spawnAsNobody(command: string, args: string[], options: Parameters<typeof spawnTracked>[2] = {}) {
  return spawnTracked('setpriv', [...setprivArgs(), command, ...args], options);
}

/** Hands a directory to nobody, so that nobody may keep locks in it. */
export function giveToNobody(path: string): void {
  chownSync(path, NOBODY_UID, NOBODY_GID);
}

/** Runs a TypeScript fixture as nobody and collects its output. */
export function runTsAsNobody(script: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawnTracked('setpriv', [...setprivArgs(), process.execPath, '--import', 'tsx', script, ...args], {
    env: { ...process.env, ...env },
    timeoutMs: 60_000,
  });
  return finished(child);
}

/** Starts a TypeScript fixture as nobody, for as long as the test needs it (stdin piped, stdout read). */
export function spawnTsAsNobody(script: string, args: string[], node = process.execPath, timeoutMs = 60_000) {
  return spawnTracked('setpriv', [...setprivArgs(), node, '--import', 'tsx', script, ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
    timeoutMs,
  });
}

/** `unshare` into a user and network namespace of nobody's own, as any user may where the kernel allows it. */
const OWN_NAMESPACES = ['unshare', '--user', '--map-root-user', '--net', '--'];

/** Why nobody cannot make namespaces of its own here (the kernel refuses unprivileged user namespaces), or undefined. */
export function ownNamespacesRefused(): string | undefined {
  const probe = spawnSync('setpriv', [...setprivArgs(), ...OWN_NAMESPACES, 'true'], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  return probe.status === 0
    ? undefined
    : `the kernel refuses nobody a user and network namespace of its own (${probe.error?.message ?? probe.stderr.trim()})`;
}

/**
 * The squatter fixture (test/fixtures/squatter.ts) run as nobody in a user and network namespace of
 * its own, with its configuration (`names` to bind, hex; the `answer` it gives), stdin piped.
 */
export function squatAsNobodyInOwnNamespaces(config: { names: string[]; answer: object }) {
  const node = [process.execPath, '--import', 'tsx', fixture('squatter.ts'), JSON.stringify(config)];
  return spawnTracked('setpriv', [...setprivArgs(), ...OWN_NAMESPACES, ...node], {
    stdio: ['pipe', 'pipe', 'inherit'],
    timeoutMs: 60_000,
  });
}
