import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { stopLock } from '../../src/index.ts';
import { kernelHolders } from '../../src/interlock/holders.ts';
import { interlockName, legacyForm } from '../../src/interlock/name.ts';
import { nobodyUnavailable, spawnAsNobody } from '../helpers/as-nobody.ts';
import { freePort } from '../helpers/free-port.ts';
import { interlockMode } from '../helpers/interlock-mode.ts';
import { otherNode } from '../helpers/other-node.ts';
import { fixture, lineMatching, spawnTracked } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

/** A Node that binds an abstract name's exact bytes (22 and later; Node 20 pads it to sun_path). */
function exactNode(): string | undefined {
  if (Number(process.versions.node.split('.')[0]) >= 22) return process.execPath;
  const other = otherNode();
  if (other === undefined) return undefined;
  const version = spawnSync(other, ['-p', 'process.versions.node'], { encoding: 'utf8', timeout: 10_000 }).stdout;
  return Number(version?.split('.')[0]) >= 22 ? other : undefined;
}

const node = exactNode();
const skip =
  nobodyUnavailable() ??
  (node === undefined ? 'needs a Node 22 or later (this one, or PORTLOCK_OTHER_NODE) to bind exact names' : undefined);

// /proc/net/unix prints an abstract name's bytes raw, newlines included: another user binds a name
// holding a newline and a whole forged line after it ("listening, inode I, on the lock's legacy
// name"), where I is a socket of any process: here a listener of root's, on TCP or on a Unix path.
describe('a line of /proc/net/unix forged by another user', { skip }, () => {
  /** Binds, as nobody, a name whose bytes end in a forged line: the lock's legacy name on `inode`. */
  async function forgeLine(name: string, inode: string) {
    const legacy = (legacyForm(name) as string).replaceAll('\0', '@');
    const forged = `\0x\n0000000000000000: 00000002 00000000 00010000 0001 01 ${inode} ${legacy}`;
    assert.ok(Buffer.byteLength(forged, 'latin1') <= 108, 'fits in sun_path');
    const squatter = spawnAsNobody(
      node as string,
      [fixture('bind-exact-name.mjs'), Buffer.from(forged, 'latin1').toString('hex')],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    await lineMatching(squatter, /^ready$/);
    return squatter;
  }

  it("stop --force as root signals no process of root's whose socket inode the forged line names", async () => {
    const port = await freePort();
    const dir = tempDir('portlock-forged-line-');
    const name = interlockName({ kind: 'port', port }, dir) as string;
    const bystander = spawnTracked(process.execPath, [fixture('listening-bystander.mjs')], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let squatter: ReturnType<typeof spawnAsNobody> | undefined;
    try {
      squatter = await forgeLine(name, (await lineMatching(bystander, /^\d+$/)).trim());
      const stopped = await stopLock({ port, dir, force: true, timeout: 500 });
      assert.deepEqual(stopped.signalled, [], stopped.reason);
      // With the socket file forced, the abstract name is no interlock of the lock: nothing holds it.
      assert.equal(stopped.outcome, interlockMode === 'socket-file' ? 'not-running' : 'still-running', stopped.reason);
      assert.equal(bystander.exitCode, null, 'the bystander still runs');
      assert.equal(bystander.signalCode, null, 'the bystander still runs');
    } finally {
      squatter?.stdin?.end();
      bystander.kill('SIGKILL');
    }
  });

  it('a forged line giving the inode of another Unix socket (shown on its own line too) names no holder', async () => {
    const port = await freePort();
    const dir = tempDir('portlock-forged-line-');
    const name = interlockName({ kind: 'port', port }, dir) as string;
    const bystander = spawnTracked(process.execPath, [fixture('listening-bystander.mjs'), join(dir, 'daemon.sock')], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let squatter: ReturnType<typeof spawnAsNobody> | undefined;
    try {
      squatter = await forgeLine(name, (await lineMatching(bystander, /^\d+$/)).trim());
      const kernel = kernelHolders(name);
      assert.equal(kernel.state, 'held');
      assert.deepEqual(
        kernel.holders.map((holder) => holder.pid),
        [],
      );
    } finally {
      squatter?.stdin?.end();
      bystander.kill('SIGKILL');
    }
  });
});
