import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { stopLock } from '../../src/index.ts';
import { interlockName, legacyForm } from '../../src/interlock/name.ts';
import { nobodyUnavailable, spawnAsNobody } from '../helpers/as-nobody.ts';
import { freePort } from '../helpers/free-port.ts';
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
// name"), where I is a socket of any process, here a TCP listener of root's.
describe('a line of /proc/net/unix forged by another user', { skip }, () => {
  it("stop --force as root signals no process of root's whose socket inode the forged line names", async () => {
    const port = await freePort();
    const dir = tempDir('portlock-forged-line-');
    const name = interlockName({ kind: 'port', port }, dir) as string;
    const legacy = legacyForm(name) as string;
    const bystander = spawnTracked(process.execPath, [fixture('tcp-bystander.mjs')], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const inode = (await lineMatching(bystander, /^\d+$/)).trim();
    const forged = `\0x\n0000000000000000: 00000002 00000000 00010000 0001 01 ${inode} ${legacy.replaceAll('\0', '@')}`;
    assert.ok(Buffer.byteLength(forged, 'latin1') <= 108, 'fits in sun_path');
    const squatter = spawnAsNobody(
      node as string,
      [fixture('bind-exact-name.mjs'), Buffer.from(forged, 'latin1').toString('hex')],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    try {
      await lineMatching(squatter, /^ready$/);
      const stopped = await stopLock({ port, dir, force: true, timeout: 500 });
      assert.deepEqual(stopped.signalled, [], stopped.reason);
      assert.equal(stopped.outcome, 'still-running');
      assert.equal(bystander.exitCode, null, 'the bystander still runs');
      assert.equal(bystander.signalCode, null, 'the bystander still runs');
    } finally {
      squatter.stdin?.end();
      bystander.kill('SIGKILL');
    }
  });
});
