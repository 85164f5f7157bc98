import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { inForegroundGroup } from '../../src/cli/foreground.ts';
import { acquireLock, interlockHolders, LockHeldError } from '../../src/index.ts';
import { listeningInode } from '../../src/interlock/holders.ts';
import { spawnTracked } from '../helpers/spawn.ts';
import { place } from './_support.ts';

const linuxOnly = { skip: process.platform !== 'linux' && 'the interlock is handed over on Linux' };

describe('LockHandle.interlockFd and interlockHolders', linuxOnly, () => {
  it('gives a descriptor only while an interlock backs the lock', async () => {
    const { dir, port } = await place();
    const off = await acquireLock({ port, dir, interlock: 'off' });
    assert.equal(off.interlockFd(), undefined);
    await off.release();
    const lock = await acquireLock({ port, dir });
    const fd = lock.interlockFd();
    assert.ok(typeof fd === 'number' && fd > 2);
    await lock.release();
    assert.equal(lock.interlockFd(), undefined);
  });

  it('keeps the lock held by a child it was handed to, after the parent lets go, until the child exits', async () => {
    const { dir, port } = await place();
    const lock = await acquireLock({ port, dir });
    const fd = lock.interlockFd();
    assert.ok(fd !== undefined);
    const child = spawnTracked('sleep', ['60'], { stdio: ['ignore', 'ignore', 'ignore', fd] });
    await once(child, 'spawn');
    assert.deepEqual(
      interlockHolders({ port, dir })
        .map((holder) => holder.pid)
        .sort(),
      [process.pid, child.pid].sort(),
    );
    await lock.release();
    assert.deepEqual(
      interlockHolders({ port, dir }).map(({ pid, command, uid, user }) => ({ pid, command, uid, user })),
      [{ pid: child.pid, command: 'sleep 60', uid: process.getuid?.(), user: 'root' }],
    );
    const refused = await acquireLock({ port, dir }).catch((error: unknown) => error);
    assert.ok(refused instanceof LockHeldError);
    // The kernel names the holder: certain, though it does not answer.
    assert.equal(refused.certainty, 'certain');
    assert.match(refused.message, new RegExp(`pid ${child.pid} \\(sleep 60, user root\\)`));
    child.kill('SIGKILL');
    await once(child, 'exit');
    assert.deepEqual(interlockHolders({ port, dir }), []);
    const again = await acquireLock({ port, dir });
    await again.release();
  });

  it('does not hand the interlock to a child that is not given it', async () => {
    const { dir, port } = await place();
    const lock = await acquireLock({ port, dir });
    const child = spawn('sleep', ['60'], { stdio: 'ignore' });
    await once(child, 'spawn');
    try {
      assert.deepEqual(
        interlockHolders({ port, dir }).map((holder) => holder.pid),
        [process.pid],
      );
    } finally {
      child.kill('SIGKILL');
      await lock.release();
    }
  });

  it('finds the listening socket of exactly an abstract name in /proc/net/unix, never a look-alike', () => {
    const padded = (name: string) => name.padEnd(108, '@');
    const table = [
      'Num       RefCount Protocol Flags    Type St Inode Path',
      `0000000000000000: 00000003 00000000 00000000 0001 03 111 ${padded('@portlock/port-5338')}`,
      `0000000000000000: 00000002 00000000 00010000 0001 01 222 ${padded('@portlock/port-5338')}`,
      '0000000000000000: 00000002 00000000 00010000 0001 01 555 @portlock/port-5338@',
      '0000000000000000: 00000002 00000000 00010000 0001 01 666 @portlock/port-5338',
      `0000000000000000: 00000002 00000000 00010000 0001 01 333 ${padded('@portlock/port-53380')}`,
      '0000000000000000: 00000002 00000000 00010000 0001 01 444 /run/some.sock',
    ].join('\n');
    assert.equal(listeningInode('\0portlock/port-5338'.padEnd(108, '\0'), table), '222');
    assert.equal(listeningInode('\0portlock/port-5338\0', table), '555');
    assert.equal(listeningInode('\0portlock/port-5338', table), '666');
    assert.equal(listeningInode('\0portlock/port-533'.padEnd(108, '\0'), table), undefined);
    assert.equal(listeningInode('\0portlock/port-1', ''), undefined);
  });
});

describe('inForegroundGroup', () => {
  it("compares the process group with its terminal's foreground group", () => {
    const stat = (pgrp: number, tpgid: number) => `123 (node (x)) S 1 ${pgrp} 5 34816 ${tpgid} 4194560 0`;
    assert.equal(inForegroundGroup(stat(200, 200)), true);
    assert.equal(inForegroundGroup(stat(200, 300)), false);
    assert.equal(inForegroundGroup(stat(200, -1)), false, 'no controlling terminal');
    assert.equal(inForegroundGroup(undefined), false);
  });
});
