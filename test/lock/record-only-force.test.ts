// A signal goes only to a process the kernel shows holding the lock. A holder without an interlock
// holds a presence name (Linux) that its record gives: `stop --force` signals the record's process
// only where /proc shows it holding that name. A record naming a live process of the same user
// that holds nothing is a claim: nothing is signalled, and the next step says what to do.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lockPathFor, stopLock } from '../../src/index.ts';
import { cli } from '../cli/_support.ts';
import { nobodyUnavailable, spawnTsAsNobody } from '../helpers/as-nobody.ts';
import { freePort } from '../helpers/free-port.ts';
import { startHolder } from '../helpers/holder.ts';
import { holdInside, unshareUnavailable } from '../helpers/namespaces.ts';
import { liveProcess, processStartOf, recordFor, writeRecord } from '../helpers/records.ts';
import { fixture, lineMatching, spawnTracked } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const linux = { skip: process.platform !== 'linux' && 'presence names are Linux' };

describe('stop --force and a holder by its record alone', linux, () => {
  for (const presence of [undefined, 'ab'.repeat(16)]) {
    it(`signals no live process its record names that holds no kernel name (${presence === undefined ? 'no presence name' : 'a presence name it does not hold'})`, async () => {
      const dir = tempDir();
      const port = await freePort();
      const bystander = await liveProcess();
      const start = processStartOf(bystander.pid);
      writeRecord(lockPathFor({ port, dir }), recordFor(bystander.pid, { port, ...(presence && { presence }) }));
      try {
        const stopped = await stopLock({ port, dir, force: true, timeout: 200 });
        assert.equal(stopped.outcome, 'still-running', stopped.reason);
        assert.deepEqual(stopped.signalled, []);
        assert.match(stopped.reason, /none could be verified as its holder/);
        // Why the record's process is not signalled is told once.
        assert.equal(stopped.reason.split('the process its record names is not signalled').length, 2, stopped.reason);
        const stop = await cli(['stop', String(port), '--dir', dir, '--force', '--timeout', '0.2']);
        assert.equal(stop.code, 1, stop.stderr);
        assert.match(stop.stderr, new RegExp(`Next step: if pid ${bystander.pid} is the holder, stop it yourself`));
        assert.equal(bystander.child.exitCode, null, 'the bystander was not signalled');
        assert.equal(processStartOf(bystander.pid), start);
      } finally {
        bystander.child.kill('SIGKILL');
      }
    });
  }

  it('stops a real holder without an interlock, which holds the presence name its record gives', async () => {
    const dir = tempDir();
    const port = await freePort();
    const holder = await startHolder({ port, dir, interlock: 'off' });
    const stopped = await stopLock({ port, dir, force: true, timeout: 10_000 });
    assert.equal(stopped.outcome, 'stopped', stopped.reason);
    assert.deepEqual(stopped.signalled, [holder.pid]);
  });

  // A presence name is abstract: it lives in the holder's own network namespace, whose table the
  // holder's /proc/<pid>/net/unix shows, not the reader's.
  it('stops a real holder without an interlock in another network namespace (same pid namespace)', {
    skip: unshareUnavailable(['--net']),
    timeout: 60_000,
  }, async () => {
    const dir = tempDir();
    const port = await freePort();
    const holder = await holdInside(['--net'], { port, dir, interlock: 'off' });
    try {
      const stopped = await stopLock({ port, dir, force: true, timeout: 10_000 });
      assert.equal(stopped.outcome, 'stopped', stopped.reason);
      assert.deepEqual(stopped.signalled, [holder.pid]);
    } finally {
      await holder.kill();
    }
  });
});

describe('stop --force and a forged line giving a presence name with the inode of a TCP socket', {
  skip: (process.platform !== 'linux' && 'presence names are Linux') || nobodyUnavailable(),
}, () => {
  it("signals no process of the record's whose TCP listener the line names", { timeout: 60_000 }, async () => {
    const dir = tempDir();
    const port = await freePort();
    const presence = 'cd'.repeat(16);
    const bystander = spawnTracked(process.execPath, [fixture('listening-bystander.mjs')], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let forger: ReturnType<typeof spawnTsAsNobody> | undefined;
    try {
      const inode = (await lineMatching(bystander, /^\d+$/)).trim();
      writeRecord(lockPathFor({ port, dir }), recordFor(bystander.pid as number, { port, presence }));
      // Short (an abstract name is at most 107 bytes); its own line ends before any padding.
      const forged = `\0\n0: 0 0 10000 1 1 ${inode} @portlock/holder-${presence}\n`;
      forger = spawnTsAsNobody(fixture('squatter.ts'), [
        JSON.stringify({ names: [Buffer.from(forged, 'latin1').toString('hex')], answer: { pid: 1 } }),
      ]);
      await lineMatching(forger, /"ready":true/);
      const stopped = await stopLock({ port, dir, force: true, timeout: 200 });
      assert.deepEqual(stopped.signalled, [], stopped.reason);
      assert.equal(bystander.exitCode, null, 'the bystander still runs');
      assert.equal(bystander.signalCode, null, 'the bystander still runs');
    } finally {
      forger?.stdin?.end();
      bystander.kill('SIGKILL');
    }
  });
});
