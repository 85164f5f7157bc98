import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { judgeHolder } from '../../src/identity/judge.ts';
import { type ProcessProbe, psInfo, systemProbe } from '../../src/identity/probe.ts';
import { deadPid, liveProcess, processStartOf } from '../helpers/records.ts';

const noPs = spawnSync('ps', ['-o', 'pid=', '-p', String(process.pid)]).status !== 0 && 'ps(1) is not installed';
const linuxOnly = process.platform !== 'linux' && "ps's start time is checked against /proc's";

/** What a system without /proc (macOS, BSD) tells the judge: ps alone, no boot id, no boot time. */
const psOnly: ProcessProbe = {
  ...systemProbe,
  info: psInfo,
  bootId: () => undefined,
  bootTimeMs: () => undefined,
  ownStartTime: () => undefined,
  netns: () => undefined,
  pidns: () => undefined,
};

/** A process's start time from /proc: the boot time (to the second) plus its start in ticks. */
function procStartMs(pid: number): number {
  const btime = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1]);
  return btime * 1000 + Number(processStartOf(pid)) * 10;
}

describe("ps's start time, where there is no /proc", { skip: noPs || linuxOnly }, () => {
  it("agrees with /proc's to the second", async () => {
    const { pid } = await liveProcess();
    for (const which of [process.pid, pid]) {
      const info = psInfo(which);
      assert.ok(info !== undefined && info !== 'gone', `ps tells nothing of ${which}`);
      // ps gives whole seconds; /proc's boot time is whole seconds too.
      assert.ok(Math.abs((info.startedAtMs ?? 0) - procStartMs(which)) < 2000, JSON.stringify(info));
      assert.equal(info.startTime, String((info.startedAtMs ?? 0) / 1000));
      assert.notEqual(info.state, 'Z');
    }
  });

  it('says gone for a pid that has exited', async () => {
    assert.equal(psInfo(await deadPid()), 'gone');
  });

  it('lets the judge see a reused pid: a process that started after the lock was taken is not its holder', async () => {
    const { pid } = await liveProcess();
    const context = { probe: psOnly, ownsToken: () => false };
    const before = { pid, startedAt: new Date(Date.now() - 60_000).toISOString(), hostname: systemProbe.hostname() };
    const verdict = judgeHolder(before, context);
    assert.equal(verdict.state, 'stale', verdict.reason);
    assert.match(verdict.reason, /reused/);
    // Its own lock, taken after it started, is held.
    const after = { ...before, startedAt: new Date(Date.now() + 5000).toISOString() };
    assert.equal(judgeHolder(after, context).state, 'held');
  });
});
