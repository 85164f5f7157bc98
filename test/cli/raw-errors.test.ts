import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { portHolders } from '../../src/index.ts';
import { giveToNobody, NOBODY_GID, NOBODY_UID, nobodyUnavailable } from '../helpers/as-nobody.ts';
import { finished, spawnTracked } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { BIN } from './_support.ts';

// Errors from Node itself ("EACCES: permission denied, scandir ...") that a user can cause, each
// turned into a sentence and a next step. Run as nobody: root is never refused.

function portlockAsNobody(args: string[]) {
  const child = spawnTracked(
    'setpriv',
    [
      `--reuid=${NOBODY_UID}`,
      `--regid=${NOBODY_GID}`,
      '--clear-groups',
      '--',
      process.execPath,
      '--import',
      'tsx',
      BIN,
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: '/nonexistent' }, timeoutMs: 30_000 },
  );
  return finished(child);
}

/** A privileged port nothing listens on, or undefined where unprivileged users may bind any port. */
async function privilegedPort(): Promise<number | undefined> {
  const start = Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8'));
  for (let port = Math.min(start, 1024) - 1; port >= 1; port--) {
    if ((await portHolders(port)).length === 0) return port;
  }
  return undefined;
}

describe('no raw errors', { skip: nobodyUnavailable() }, () => {
  it("list of another user's private directory: names the directory and says what to do", async () => {
    const dir = tempDir();
    const result = await portlockAsNobody(['list', '--dir', dir]);
    assert.equal(result.code, 1);
    assert.equal(
      result.stderr,
      `portlock: cannot read the directory ${dir}: permission denied (it belongs to another user, or its mode keeps this user out).\n` +
        'Next step: use a lock directory of your own (--dir or PORTLOCK_DIR), or run this as the user who owns it.\n',
    );
  });

  it('agent on a privileged port as another user: says why and what to do', async (t) => {
    const port = await privilegedPort();
    if (port === undefined) {
      t.skip('this kernel lets every user bind every port (ip_unprivileged_port_start is 0)');
      return;
    }
    const dir = tempDir();
    giveToNobody(dir);
    const result = await portlockAsNobody(['agent', '--port', String(port), '--dir', dir]);
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      new RegExp(
        `^portlock: cannot listen on port ${port}: permission denied \\(ports below 1024 need root, or the CAP_NET_BIND_SERVICE capability\\)\\.\\nNext step: use a port from 1024 up`,
        'm',
      ),
    );
  });
});
