import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { giveToNobody, nobodyUnavailable, setprivArgs } from '../helpers/as-nobody.ts';
import { privateNetworkUnavailable } from '../helpers/namespaces.ts';
import { finished, spawnTracked } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { BIN } from './_support.ts';

// Errors from Node itself ("EACCES: permission denied, scandir ...") that a user can cause, each
// turned into a sentence and a next step. Run as nobody: root is never refused.

const AS_NOBODY = setprivArgs();
const PORTLOCK = [process.execPath, '--import', 'tsx', BIN];

function collect(command: string, args: string[]) {
  const env = { ...process.env, HOME: '/nonexistent' };
  return finished(spawnTracked(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env, timeoutMs: 30_000 }));
}

const portlockAsNobody = (args: string[]) => collect('setpriv', [...AS_NOBODY, ...PORTLOCK, ...args]);

/**
 * In a network namespace of its own with only loopback up: port 80 there is no one else's, and
 * neither is its lock's abstract socket name, which the kernel scopes to the namespace too.
 */
const inPrivateNetworkAsNobody = (args: string[]) =>
  collect('unshare', [
    '--net',
    '--',
    'sh',
    '-c',
    'ip link set lo up && exec "$@"',
    'sh',
    'setpriv',
    ...AS_NOBODY,
    ...PORTLOCK,
    ...args,
  ]);

describe('no raw errors', { skip: nobodyUnavailable() }, () => {
  it("list of another user's private directory: names the directory and says what to do", async () => {
    const dir = tempDir();
    const result = await portlockAsNobody(['list', '--dir', dir]);
    assert.equal(result.code, 1);
    assert.equal(
      result.stderr,
      `portlock: Lock directory ${dir} cannot be used: it is owned by another user, who could replace any lock in it (owner uid 0, this process runs as uid 65534).\n` +
        'Next step: pass --dir (or set PORTLOCK_DIR) to a private directory of your own (mode 0700).\n',
    );
  });

  it('agent --port 80 as another user: says why and what to do', { skip: privateNetworkUnavailable() }, async () => {
    const dir = tempDir();
    giveToNobody(dir);
    const result = await inPrivateNetworkAsNobody(['agent', '--port', '80', '--dir', dir]);
    assert.equal(result.code, 1, result.stderr);
    assert.equal(
      result.stderr,
      'portlock: cannot listen on port 80: permission denied (ports below 1024 need root, or the CAP_NET_BIND_SERVICE capability).\n' +
        'Next step: use a port from 1024 up (for example: --port 8080), or run it as root.\n',
    );
  });
});
