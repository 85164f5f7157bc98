// What portlock trusts when the host holds someone else: another user (nobody) squatting kernel
// names and forging answers, a holder in another pid namespace, root acting on another user's
// directory. Real processes throughout.
import assert from 'node:assert/strict';
import { type ChildProcess, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chownSync, existsSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { acquireLock, inspectLock, LockHeldError, stopLock } from '../../src/index.ts';
import { kernelHolders } from '../../src/interlock/holders.ts';
import { interlockName, SUN_PATH_BYTES } from '../../src/interlock/name.ts';
import { presenceName } from '../../src/interlock/presence.ts';
import { cli, exited, staleRecord } from '../cli/_support.ts';
import { giveToNobody, NOBODY_UID, nobodyUnavailable, spawnAsNobody, spawnTsAsNobody } from '../helpers/as-nobody.ts';
import { freePort } from '../helpers/free-port.ts';
import { startHolder } from '../helpers/holder.ts';
import { abstractSocketOnly } from '../helpers/interlock-mode.ts';
import { otherNode } from '../helpers/other-node.ts';
import { deadRecord, liveProcess, processStartOf, recordFor, writeRecord } from '../helpers/records.ts';
import { seed } from '../helpers/seed.ts';
import { finished, fixture, lineMatching, onLines, spawnTracked, spawnTs } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const asNobody = { skip: nobodyUnavailable() };

/** Why `unshare` with these flags cannot run here, or undefined when it can. */
function unshareUnavailable(flags: string[]): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  const tried = spawnSync('unshare', [...flags, 'true'], { encoding: 'utf8', timeout: 10_000 });
  return tried.status === 0 ? undefined : `the kernel refuses unshare ${flags.join(' ')}: ${tried.stderr.trim()}`;
}
/** Whether text holds a control character other than the newlines between lines. */
const hasControl = (text: string) => /\p{Cc}/u.test(text.replaceAll('\n', ''));

/** An answer forged to look like a holder: an innocent pid, a made-up user, escape sequences. */
const forged = (pid: number) => ({
  portlock: 1,
  name: 'percy\u001b]0;pwned\u0007\nport 1: not running',
  pid,
  startedAt: new Date().toISOString(),
  hostname: 'innocent-host\u001b[2J',
  user: 'root\u001b[31m',
});

interface Squatter {
  child: ChildProcess;
  pid: number;
  /** Tokens it was sent in stop requests. */
  tokens: string[];
}

/** Binds kernel names as nobody (all their bytes), answering `who` with `answer`. */
function startSquatter(names: string[], answer: object, node?: string, wrap: string[] = [], grab = false) {
  const hex = names.map((name) => Buffer.from(name, 'latin1').toString('hex'));
  const args = [JSON.stringify({ names: hex, answer, ...(grab && { grab }) })];
  const child =
    wrap.length === 0
      ? spawnTsAsNobody(fixture('squatter.ts'), args, node)
      : spawnAsNobody(
          wrap[0] as string,
          [...wrap.slice(1), process.execPath, '--import', 'tsx', fixture('squatter.ts'), ...args],
          {
            stdio: ['pipe', 'pipe', 'inherit'],
            timeoutMs: 60_000,
          },
        );
  return child;
}

async function squat(names: string[], answer: object, node?: string, wrap: string[] = []): Promise<Squatter> {
  const child = startSquatter(names, answer, node, wrap);
  const tokens: string[] = [];
  onLines(child, (line) => {
    const value = JSON.parse(line) as { token?: string };
    if (value.token !== undefined) tokens.push(value.token);
  });
  const ready = lineMatching(child, /"ready":true/);
  await ready;
  return { child, pid: child.pid ?? 0, tokens };
}

async function leave(child: ChildProcess): Promise<void> {
  child.stdin?.end();
  if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
}

const alive = (pid: number, startTime: string) => {
  try {
    return processStartOf(pid) === startTime;
  } catch {
    return false;
  }
};

describe('a squatter of a lock name, as another user', { skip: asNobody.skip || abstractSocketOnly }, () => {
  it('is named by the kernel in status, list, the refusal and stop --force: no escape byte, no innocent signalled, no token', async () => {
    const dir = tempDir();
    const port = await freePort();
    const key = 'build-cache';
    const innocent = await liveProcess();
    const innocentStart = processStartOf(innocent.pid);
    const names = [interlockName({ kind: 'port', port }, dir), interlockName({ kind: 'key', key }, dir)];
    const squatter = await squat(names as string[], forged(innocent.pid));
    try {
      // Records of this directory's holders that have gone: the lock files list shows.
      await staleRecord(join(dir, `agent-${port}.lock`), { port });
      writeRecord(join(dir, `${key}.lock`), await deadRecord({ key }));
      for (const target of [{ port }, { key }]) {
        const lock = await inspectLock({ ...target, dir });
        assert.equal(lock.state, 'held');
        assert.match(lock.reason, new RegExp(`held by pid ${squatter.pid} \\(.*user nobody\\), which claims to be`));
        assert.match(lock.reason, /it is not a portlock holder of yours/);
        assert.ok(!hasControl(lock.reason), lock.reason);
        assert.notEqual(lock.record?.pid, innocent.pid, 'the forged answer is not shown as the record');
        assert.deepEqual(
          lock.holders?.map((holder) => holder.pid),
          [squatter.pid],
        );

        const refused = await acquireLock({ ...target, dir }).catch((error: unknown) => error);
        assert.ok(refused instanceof LockHeldError);
        assert.match(refused.message, new RegExp(`pid ${squatter.pid}\\b`));
        assert.doesNotMatch(refused.message, new RegExp(`kill ${innocent.pid}\\b`));
        assert.ok(!hasControl(refused.message), refused.message);

        const stopped = await stopLock({ ...target, dir, force: true, timeout: 200 });
        assert.equal(stopped.outcome, 'still-running', stopped.reason);
        assert.deepEqual(stopped.signalled, []);
        assert.match(stopped.reason, /no process was signalled/);
      }
      const status = await cli(['status', String(port), '--dir', dir]);
      assert.match(
        status.stdout,
        new RegExp(`^port ${port}: running: held by pid ${squatter.pid} \\(.*user nobody\\)`),
      );
      assert.equal(status.stdout.split('\n').length, 2, 'one line, whatever the answer holds');
      assert.ok(!hasControl(status.stdout + status.stderr), status.stdout + status.stderr);
      const list = await cli(['list', '--dir', dir]);
      assert.match(list.stdout, new RegExp(`^${port} +running +\\S+ +${squatter.pid} +nobody`, 'm'));
      assert.ok(!hasControl(list.stdout + list.stderr), list.stdout + list.stderr);
      const stop = await cli(['stop', String(port), '--dir', dir, '--force', '--timeout', '0.2']);
      assert.equal(stop.code, 1);
      assert.ok(!hasControl(stop.stdout + stop.stderr), stop.stdout + stop.stderr);
      assert.ok(alive(innocent.pid, innocentStart), 'the innocent process was not signalled');
      assert.equal(squatter.child.exitCode, null);
      assert.deepEqual(squatter.tokens, [], 'no token was sent to the squatter');
    } finally {
      await leave(squatter.child);
    }
  });

  it('answering with its own pid is believed only as far as the kernel agrees: user, start time, pid namespace', async () => {
    const dir = tempDir();
    const [userPort, startPort, nsPort] = [await freePort(), await freePort(), await freePort()];
    const name = (port: number) => interlockName({ kind: 'port', port }, dir) as string;
    const longAgo = new Date(Date.now() - 18 * 3600_000).toISOString();
    const claims = { portlock: 1, name: 'percy', startedAt: longAgo, processStart: '1' };
    // Its own pid, with root's name; its own pid and user, with a start time not its own; and,
    // from a pid namespace of its own, a pid that is not its own there, with that namespace named.
    const squatters = await Promise.all([
      squat([name(userPort)], { ...claims, pid: 'self', user: 'root' }),
      squat([name(startPort)], { ...claims, pid: 'self', user: 'nobody' }),
      squat([name(nsPort)], { ...claims, pid: 4242, pidns: 'self', user: 'root' }, undefined, [
        'unshare',
        '-Urp',
        '--fork',
      ]),
    ]);
    try {
      for (const port of [userPort, startPort, nsPort]) {
        const [holder] = kernelHolders(name(port)).holders;
        assert.equal(holder?.user, 'nobody');
        const lock = await inspectLock({ port, dir });
        assert.equal(lock.state, 'held', lock.reason);
        const claimed = port === nsPort ? 4242 : holder?.pid;
        assert.match(
          lock.reason,
          new RegExp(
            `held by pid ${holder?.pid} \\(.*user nobody\\), which claims to be "percy" pid ${claimed}: it is not a portlock holder of yours`,
          ),
        );
        assert.equal(lock.record, undefined, 'the answer is not shown as the record');
        const refused = await acquireLock({ port, dir }).catch((error: unknown) => error);
        assert.ok(refused instanceof LockHeldError);
        assert.doesNotMatch(refused.message, /user root|percy is already running/);
      }
    } finally {
      await Promise.all(squatters.map((squatter) => leave(squatter.child)));
    }
  });

  it("never sends the token to it when the holder runs with interlock 'off'; --force stops the real holder", async () => {
    const dir = tempDir();
    const port = await freePort();
    const innocent = await liveProcess();
    const holder = await startHolder({ port, dir, interlock: 'off', stoppable: true });
    const squatter = await squat([interlockName({ kind: 'port', port }, dir) as string], forged(innocent.pid));
    try {
      const polite = await stopLock({ port, dir, timeout: 300 });
      assert.equal(polite.outcome, 'still-running', polite.reason);
      assert.match(polite.reason, /its token was not sent/);
      assert.equal(holder.child.exitCode, null);
      const forced = await stopLock({ port, dir, timeout: 10_000, force: true });
      assert.equal(forced.outcome, 'stopped', forced.reason);
      assert.deepEqual(forced.signalled, [holder.pid]);
      assert.deepEqual(forced.processes, [{ pid: holder.pid, signals: ['SIGTERM'], outcome: 'exited' }]);
      assert.deepEqual(squatter.tokens, []);
      assert.equal(squatter.child.exitCode, null);
      assert.equal(innocent.child.exitCode, null);
    } finally {
      await leave(squatter.child);
    }
  });

  // Node 20 pads every abstract name to the full sun_path: only Node 22 or later binds a look-alike.
  const exactNode = Number(process.versions.node.split('.')[0]) >= 22 ? process.execPath : otherNode();
  const lookAlikes =
    exactNode === undefined ? 'look-alike names need Node 22 or later (PORTLOCK_OTHER_NODE)' : undefined;
  it('binding look-alike names (trailing NULs) does not hide the real holder: status names it, stop --force reaches it', {
    skip: lookAlikes,
  }, async () => {
    const dir = tempDir();
    const port = await freePort();
    const innocent = await liveProcess();
    const holder = await startHolder({ port, dir });
    const base = `\0portlock/port-${port}`;
    const squatter = await squat([`${base}\0`, `${base}\0\0`, base.padEnd(107, '\0')], forged(innocent.pid), exactNode);
    try {
      const lock = await inspectLock({ port, dir });
      assert.equal(lock.state, 'held');
      assert.equal(lock.certainty, 'certain');
      assert.equal(lock.record?.pid, holder.pid);
      assert.deepEqual(
        lock.holders?.map((h) => h.pid),
        [holder.pid],
      );
      const status = await cli(['status', String(port), '--dir', dir]);
      assert.match(status.stdout, new RegExp(`pid ${holder.pid}\\b`));
      const forced = await stopLock({ port, dir, timeout: 10_000, force: true });
      assert.equal(forced.outcome, 'stopped', forced.reason);
      assert.deepEqual(forced.signalled, [holder.pid]);
      assert.equal((await exited(holder.child)).code, 0);
      assert.equal(squatter.child.exitCode, null, 'the look-alikes’ holder was not signalled');
      assert.equal(innocent.child.exitCode, null);
    } finally {
      await leave(squatter.child);
    }
  });

  it("binding a look-alike with a literal '@' (shown as the real name) changes nothing: the token reaches the holder, no impostor, a dead holder is gone", async () => {
    const dir = tempDir();
    const port = await freePort();
    // A port below 1024 too, whose name nobody holds; from the run's seed, so a failure can be replayed.
    let low = 600 + ((seed + 200) % 400);
    while (kernelHolders(interlockName({ kind: 'port', port: low }, '') as string).state !== 'free') low++;
    console.log(`privileged port ${low} (seed ${seed})`);
    const lookAlike = (p: number) => `\0portlock/port-${p}@`.padEnd(SUN_PATH_BYTES, '\0');
    const [holder, privileged] = await Promise.all([
      startHolder({ port, dir, stoppable: true }),
      startHolder({ port: low, dir }),
    ]);
    const squatter = await squat([lookAlike(port), lookAlike(low)], forged(1));
    try {
      const lock = await inspectLock({ port: low, dir });
      assert.equal(lock.state, 'held', lock.reason);
      assert.doesNotMatch(lock.reason, /impostor/);
      assert.equal(lock.record?.pid, privileged.pid);
      assert.deepEqual(
        lock.holders?.map((h) => h.pid),
        [privileged.pid],
      );
      assert.match(lock.reason, new RegExp(`pid ${squatter.pid} .*holds a look-alike of its name`));
      const run = await cli(['run', '--port', String(low), '--dir', dir, '--', 'true']);
      assert.equal(run.code, 75);
      assert.doesNotMatch(run.stderr, /impostor/);

      // The owner's stop: the token goes to the holder, on request.
      const stopped = await stopLock({ port, dir, timeout: 10_000 });
      assert.equal(stopped.outcome, 'stopped', stopped.reason);
      assert.equal(stopped.via, 'request');
      assert.equal((await exited(holder.child)).code, 0);
      assert.deepEqual(squatter.tokens, []);

      // A holder killed outright: its lock is stale, whatever shows as its name.
      process.kill(privileged.pid, 'SIGKILL');
      await exited(privileged.child);
      const dead = await inspectLock({ port: low, dir });
      assert.equal(dead.state, 'stale', dead.reason);
      const status = await cli(['status', String(low), '--dir', dir]);
      assert.doesNotMatch(status.stdout, /running/);
      const lock2 = await acquireLock({ port: low, dir });
      await lock2.release();
      assert.equal(squatter.child.exitCode, null);
    } finally {
      await leave(squatter.child);
    }
  });

  it('of a privileged port is an impostor: status and a start say so, with its pid and user, exit 75', async () => {
    // A port below 1024 whose name nobody holds; from the run's seed, so a failure can be replayed.
    let port = 600 + (seed % 400);
    while (kernelHolders(interlockName({ kind: 'port', port }, '') as string).state !== 'free') port++;
    console.log(`privileged port ${port} (seed ${seed})`);
    const dir = tempDir();
    const squatter = await squat([interlockName({ kind: 'port', port }, dir) as string], forged(1));
    try {
      const lock = await inspectLock({ port, dir });
      assert.match(
        lock.reason,
        new RegExp(`pid ${squatter.pid} \\(.*user nobody\\), which cannot bind port ${port}: an impostor`),
      );
      const refused = await acquireLock({ port, dir }).catch((error: unknown) => error);
      assert.ok(refused instanceof LockHeldError);
      assert.match(refused.message, new RegExp(`pid ${squatter.pid} \\(.*user nobody\\).*an impostor`));
      const run = await cli(['run', '--port', String(port), '--dir', dir, '--', 'true']);
      assert.equal(run.code, 75);
      assert.match(run.stderr, new RegExp(`pid ${squatter.pid}\\b.*impostor`));
      assert.ok(!hasControl(run.stderr), run.stderr);
    } finally {
      await leave(squatter.child);
    }
  });
});

describe('stop --force and the lock changing hands', { skip: process.platform !== 'linux' && 'Linux' }, () => {
  // Without an interlock, the waiter and the stop both poll: who looks first after the holder has
  // gone varies, so the record-only case runs twice.
  for (const interlock of ['auto', 'off', 'off'] as const) {
    it(`never signals the waiter that takes the lock when the holder exits on SIGTERM (interlock ${interlock})`, async () => {
      const dir = tempDir();
      const port = await freePort();
      const holder = await startHolder({ port, dir, interlock });
      const waiter = spawnTs(fixture('waiter.ts'), [JSON.stringify({ port, dir, interlock })], {
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      const output = finished(waiter);
      await lineMatching(waiter, /"waiting":true/);
      const acquired = lineMatching(waiter, /"acquired":true/);
      const result = await stopLock({ port, dir, timeout: 2000, force: true });
      assert.equal(result.outcome, 'stopped', result.reason);
      assert.equal(result.via, 'SIGTERM');
      assert.deepEqual(result.signalled, [holder.pid]);
      await acquired;
      assert.equal((await inspectLock({ port, dir })).record?.pid, waiter.pid, 'the waiter holds the lock');
      waiter.stdin?.end();
      const { stdout, code } = await output;
      assert.equal(code, 0);
      assert.doesNotMatch(stdout, /SIGTERM/, 'the waiter was sent nothing');
    });
  }
});

describe('a holder in another pid namespace, sharing the lock directory', {
  skip: process.platform !== 'linux' && 'Linux',
}, () => {
  for (const net of [false, true]) {
    it(`is never signalled by the pid its record names (${net ? 'own network namespace' : 'host network'})`, async (t) => {
      const dir = tempDir();
      const key = 'in-a-container';
      const options = JSON.stringify({ key, dir });
      // sh is pid 1 inside; the holder is pid 2 there, which on the host is someone else entirely.
      const script = `exec 3<&0; "${process.execPath}" --import tsx "${fixture('holder.ts')}" '${options}' <&3 3<&- & wait`;
      const args = ['--pid', ...(net ? ['--net'] : []), '--fork', '--mount-proc', 'sh', '-c', script];
      const inside = spawnTracked('unshare', args, { stdio: ['pipe', 'pipe', 'pipe'] });
      const ready = await lineMatching(inside, /"ready":true/).catch(() => undefined);
      if (ready === undefined) {
        t.skip('the kernel refused to make the namespace');
        return;
      }
      try {
        const recorded = (await inspectLock({ key, dir, interlock: 'off' })).record;
        assert.ok(recorded !== undefined && recorded.pidns !== undefined);
        const hostStart = (() => {
          try {
            return processStartOf(recorded.pid);
          } catch {
            return undefined;
          }
        })();
        const result = await stopLock({ key, dir, force: true, timeout: 2000 });
        assert.ok(!result.signalled.includes(recorded.pid), `pid ${recorded.pid} of the host was signalled`);
        if (hostStart !== undefined) assert.equal(processStartOf(recorded.pid), hostStart);
        // Whether or not the kernel can show its interlock from here, a holder of another pid
        // namespace is stopped inside it: nothing here is signalled.
        assert.deepEqual(result.signalled, []);
        assert.equal(result.outcome, 'unknown', result.reason);
        assert.match(result.reason, /another pid namespace/);
      } finally {
        inside.stdin?.end();
        inside.kill('SIGKILL');
        await exited(inside);
      }
    });
  }
});

describe('a record-only holder in another pid namespace whose presence name is taken by another user', {
  skip: nobodyUnavailable() ?? unshareUnavailable(['--pid', '--fork', '--mount-proc']),
}, () => {
  it('is judged by the kernel, not by the name: after it is SIGKILLed the host acquires at once', async () => {
    const dir = tempDir();
    const options = { port: await freePort(), dir, interlock: 'off' as const };
    const inside = spawnTracked(
      'unshare',
      [
        '--pid',
        '--fork',
        '--mount-proc',
        process.execPath,
        '--import',
        'tsx',
        fixture('holder.ts'),
        JSON.stringify(options),
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    await lineMatching(inside, /"ready":true/);
    const presence = (await inspectLock(options)).record?.presence;
    assert.ok(presence !== undefined, 'a record-only holder names its presence');
    const name = presenceName(presence);
    // Nobody binds a look-alike at once (a literal '@' that /proc/net/unix shows as it shows a NUL),
    // and the name itself the moment the holder's death frees it.
    const squatter = startSquatter([`${name}@`.padEnd(SUN_PATH_BYTES, '\0'), name], { pid: 1 }, undefined, [], true);
    const grabbed = lineMatching(squatter, /"ready":true/);
    try {
      await assert.rejects(acquireLock(options), { name: 'LockHeldError' });
      const holder = Number(
        readFileSync(`/proc/${inside.pid}/task/${inside.pid}/children`, 'utf8').trim().split(/\s+/)[0],
      );
      process.kill(holder, 'SIGKILL');
      await exited(inside);
      await grabbed;
      const lock = await acquireLock(options);
      await lock.release();
    } finally {
      await leave(squatter);
    }
  });
});

describe("root on another user's lock directory", asNobody, () => {
  it('follows no symlink, deletes no file that is not a record, and signals none of its own processes', async () => {
    const dir = tempDir();
    giveToNobody(dir);
    const port = await freePort();
    const rootProcess = await liveProcess();
    const rootStart = processStartOf(rootProcess.pid);
    // Planted by nobody: a record naming a root process, with its real start time.
    const planted = join(dir, `agent-${port}.lock`);
    writeRecord(planted, recordFor(rootProcess.pid, { port, user: 'nobody' }));
    chownSync(planted, NOBODY_UID, NOBODY_UID);
    // Root's own file with a lock's name, not a record.
    const xtables = join(dir, 'xtables.lock');
    writeRecord(xtables, '', 60_000);
    const link = join(tempDir(), 'locks');
    symlinkSync(dir, link);

    const clean = await cli(['clean', '--dir', dir]);
    assert.equal(clean.code, 0, clean.stderr);
    assert.match(clean.stderr, /belongs to nobody/);
    assert.match(clean.stderr, /xtables\.lock: not a lock record, left alone/);
    const stop = await cli(['stop', String(port), '--dir', dir, '--force', '--timeout', '0.2']);
    assert.match(stop.stderr, /belongs to nobody/);
    // Unknown, not held: nobody's record cannot speak for root's process.
    assert.equal(stop.code, 4, stop.stderr);
    assert.match(stop.stderr, /cannot speak for this one/);
    for (const args of [
      ['list'],
      ['clean'],
      ['status', String(port)],
      ['stop', String(port), '--force', '--timeout', '0.2'],
    ]) {
      const followed = await cli([...args, '--dir', link]);
      assert.equal(followed.code, 1, `${args[0]}: ${followed.stderr}`);
      assert.match(followed.stderr, /symbolic link/);
    }
    assert.ok(existsSync(xtables), 'xtables.lock is still there');
    assert.ok(existsSync(planted), 'the planted record is kept (its pid is alive)');
    assert.ok(alive(rootProcess.pid, rootStart), "root's process was not signalled");
  });

  it("signals no root process that only takes that user's effective uid (a daemon serving them)", async () => {
    const dir = tempDir();
    giveToNobody(dir);
    const port = await freePort();
    // Real and saved uid root, effective uid nobody: nobody cannot signal it, so cannot vouch for it.
    const daemon = spawnTracked(
      process.execPath,
      ['-e', `process.seteuid(${NOBODY_UID}); console.log('ready'); setTimeout(() => {}, 60_000)`],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await lineMatching(daemon, /^ready$/);
    const pid = daemon.pid ?? 0;
    const start = processStartOf(pid);
    const planted = join(dir, `agent-${port}.lock`);
    writeRecord(planted, recordFor(pid, { port, user: 'nobody' }));
    chownSync(planted, NOBODY_UID, NOBODY_UID);
    const stop = await cli(['stop', String(port), '--dir', dir, '--force', '--timeout', '0.2']);
    assert.equal(stop.code, 1, stop.stderr);
    assert.match(stop.stderr, /does not run wholly as the lock directory's user/);
    assert.ok(alive(pid, start), 'the daemon was not signalled');
  });
});

describe('a holder that fell back to the record alone', () => {
  it("says so in its record, and status and list show 'record only' with the reason", async () => {
    const dir = tempDir();
    const port = await freePort();
    const holder = await liveProcess();
    const unavailable = 'EACCES\u001b[2J';
    writeRecord(
      join(dir, `agent-${port}.lock`),
      recordFor(holder.pid, { port, name: 'percy', interlockUnavailable: unavailable }),
    );
    assert.equal((await inspectLock({ port, dir })).record?.interlockUnavailable, unavailable);
    const status = await cli(['status', String(port), '--dir', dir]);
    assert.equal(status.code, 0, status.stdout);
    assert.match(status.stdout, /record only \(the kernel interlock was unavailable: EACCES\\u\{1b\}\[2J\)/);
    const list = await cli(['list', '--dir', dir]);
    assert.match(list.stdout, /record only \(the kernel interlock was unavailable: EACCES\\u\{1b\}\[2J\)/);
  });
});
