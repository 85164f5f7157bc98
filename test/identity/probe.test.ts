import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { delimiter, join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { judgeHolder } from '../../src/identity/judge.ts';
import { parseProcStat, processExists, systemProbe } from '../../src/identity/probe.ts';
import { bootId, deadPid, liveProcess, processStartOf, recordFor } from '../helpers/records.ts';
import { lineMatching, spawnTracked } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const linux = process.platform === 'linux';
const skip = !linux && 'the probe reads /proc';
const context = { probe: systemProbe, ownsToken: () => false };

/** The sleep(1) binary, found on PATH as a shell would. */
function sleepPath(): string {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(delimiter)) {
    const path = join(dir, 'sleep');
    if (dir !== '' && existsSync(path)) return path;
  }
  throw new Error('no sleep(1) on PATH');
}

/** Field `n` (1-based, as in proc(5)) of a stat line, counted from after the command name. */
function statField(pid: number | 'self', n: number): string | undefined {
  const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  return text.slice(text.lastIndexOf(')') + 2).split(' ')[n - 3];
}

/** Polls a condition of the process table, which has no event to await, until a deadline. */
async function until<T>(what: string, check: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

describe('systemProbe', { skip }, () => {
  it('tells its own pid, host, boot id and start time (field 22 of /proc/self/stat)', () => {
    assert.equal(systemProbe.pid, process.pid);
    assert.equal(systemProbe.hostname(), hostname());
    assert.equal(systemProbe.bootId(), bootId());
    assert.equal(systemProbe.ownStartTime(), statField('self', 22));
    assert.equal(systemProbe.ownStartTime(), processStartOf(process.pid));
    assert.equal(typeof systemProbe.user(), 'string');
  });

  it('places its own start between boot and now', () => {
    const bootMs = systemProbe.bootTimeMs();
    assert.ok(bootMs !== undefined && bootMs < Date.now());
    const startMs = bootMs + (Number(systemProbe.ownStartTime()) * 1000) / systemProbe.ticksPerSecond;
    // btime has 1 s resolution.
    assert.ok(startMs <= Date.now() + 1000, 'not in the future');
    // Clock ticks are turned into time by the kernel's own rate, not by a guess of it.
    assert.equal(systemProbe.ticksPerSecond, Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })));
    const before = Date.now();
    const now = systemProbe.now();
    assert.ok(before <= now && now <= Date.now(), 'the wall clock');
  });

  it("reports a real child's state, start time and thread group", async () => {
    const { pid, child } = await liveProcess();
    assert.equal(systemProbe.exists(pid), 'alive');
    const info = systemProbe.info(pid);
    assert.ok(typeof info === 'object');
    assert.equal(info.startTime, statField(pid, 22));
    assert.equal(info.tgid, pid);
    assert.match(info.state, /^[RSD]$/);
    assert.ok(BigInt(info.startTime) >= BigInt(systemProbe.ownStartTime() ?? '0'), 'it started after this process');
    const verdict = judgeHolder(recordFor(pid), context);
    assert.equal(verdict.state, 'held', verdict.reason);
    assert.equal(verdict.certainty, 'certain');
    child.kill('SIGKILL');
    await once(child, 'exit');
  });

  it('reports a real zombie with state Z, and the judge calls it stale', async (t) => {
    const children = (pid: number) => `/proc/${pid}/task/${pid}/children`;
    // sh backgrounds `true`, then becomes `sleep`, which never reaps it.
    const parent = spawnTracked('sh', ['-c', 'true & exec sleep 30'], { stdio: 'ignore', timeoutMs: 30_000 });
    await once(parent, 'spawn');
    const parentPid = parent.pid ?? 0;
    if (!existsSync(children(parentPid))) {
      t.skip('this kernel has no /proc/<pid>/task/<pid>/children');
      return;
    }
    const zombie = await until('the backgrounded child', () => {
      const pid = Number(readFileSync(children(parentPid), 'utf8').trim().split(' ')[0]);
      return pid > 0 ? pid : undefined;
    });
    await until('the child to become a zombie', () => (statField(zombie, 3) === 'Z' ? true : undefined));
    assert.equal(systemProbe.exists(zombie), 'alive', 'kill(pid, 0) succeeds for a zombie');
    const info = systemProbe.info(zombie);
    assert.ok(typeof info === 'object');
    assert.equal(info.state, 'Z');
    const verdict = judgeHolder(recordFor(zombie), context);
    assert.equal(verdict.state, 'stale', verdict.reason);
    assert.match(verdict.reason, /zombie/);
  });

  it('tells a thread id of a running node process by its thread group, and the judge calls it stale', async () => {
    const child = spawnTracked(
      process.execPath,
      ['-e', 'process.stdout.write("ready\\n"); setTimeout(() => {}, 30_000)'],
      { timeoutMs: 30_000 },
    );
    await lineMatching(child, /^ready$/);
    const pid = child.pid ?? 0;
    const tid = Number(readdirSync(`/proc/${pid}/task`).find((entry) => entry !== String(pid)));
    assert.ok(tid > 0, 'node runs more than one thread');
    assert.equal(systemProbe.exists(tid), 'alive', 'kill(tid, 0) succeeds for a thread');
    const info = systemProbe.info(tid);
    assert.ok(typeof info === 'object');
    assert.equal(info.tgid, pid);
    assert.notEqual(info.tgid, tid);
    const verdict = judgeHolder(recordFor(tid), context);
    assert.equal(verdict.state, 'stale', verdict.reason);
    assert.match(verdict.reason, new RegExp(`${tid} is a thread of process ${pid}`));
  });

  it('reports a dead pid as gone, and the judge calls it stale', async () => {
    const pid = await deadPid();
    assert.equal(systemProbe.exists(pid), 'gone');
    assert.equal(processExists(pid), 'gone');
    assert.equal(systemProbe.info(pid), 'gone');
    const verdict = judgeHolder({ ...recordFor(process.pid), pid }, context);
    assert.equal(verdict.state, 'stale');
    assert.match(verdict.reason, /gone/);
  });

  it('reads the start time of a process whose command name holds spaces and parentheses', async () => {
    // The kernel names a process after the file it executed, here a link to sleep. Not node: Node 24
    // renames its main thread, and with it /proc/<pid>/comm, to MainThread.
    const command = join(tempDir(), 'n) o (de');
    symlinkSync(sleepPath(), command);
    const child = spawnTracked(command, ['30'], { timeoutMs: 30_000 });
    await once(child, 'spawn');
    const pid = child.pid ?? 0;
    assert.equal(readFileSync(`/proc/${pid}/comm`, 'utf8').trim(), 'n) o (de');
    const info = systemProbe.info(pid);
    assert.ok(typeof info === 'object');
    assert.match(info.state, /^[RS]$/);
    assert.equal(info.tgid, pid);
    assert.ok(BigInt(info.startTime) >= BigInt(systemProbe.ownStartTime() ?? '0'));
    assert.equal(judgeHolder(recordFor(pid), context).state, 'held');
  });
});

describe('parseProcStat', () => {
  // Fields 3 to 52 of a stat line, with a distinct start time (field 22) to find.
  const rest = (state: string, start: string) =>
    [
      state,
      ...Array.from({ length: 18 }, (_, i) => String(i + 4)),
      start,
      ...Array.from({ length: 30 }, () => '0'),
    ].join(' ');

  it('reads state, parent and start time after a command name holding spaces and ")"', () => {
    assert.deepEqual(parseProcStat(`4242 (a) b ) S 1 (c) ${rest('R', '987654')}\n`), {
      state: 'R',
      ppid: 4,
      startTime: '987654',
    });
    assert.deepEqual(parseProcStat(`7 ()) ${rest('Z', '5')}`), { state: 'Z', ppid: 4, startTime: '5' });
  });

  it('reads a plain stat line', () => {
    assert.deepEqual(parseProcStat(`1 (init) ${rest('S', '1')}`), { state: 'S', ppid: 4, startTime: '1' });
  });

  it("reads this process's own parent", { skip }, () => {
    assert.equal(parseProcStat(readFileSync('/proc/self/stat', 'latin1'))?.ppid, process.ppid);
  });

  it('returns undefined for lines it cannot read', () => {
    assert.equal(parseProcStat(''), undefined);
    assert.equal(parseProcStat('4242 no parenthesis S 1 2 3'), undefined);
    assert.equal(parseProcStat('4242 (short) S 1 2 3'), undefined, 'too few fields');
    assert.equal(parseProcStat(`4242 (x) ${rest('S', '12ab')}`), undefined, 'start time not a number');
  });
});
