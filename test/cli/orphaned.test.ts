import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { acquireLock, inspectLock } from '../../src/index.ts';
import { giveToNobody, nobodyUnavailable, setprivArgs } from '../helpers/as-nobody.ts';
import { finished, lineMatching, spawnTracked } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { BIN, cli, exited, place, spawnCli } from './_support.ts';

// A port held through its kernel interlock by processes no record names, which cannot answer a
// question: every command names them from the kernel's table, at once, and stop --force stops them.

/** Kills a process the test started that may have outlived its parent (reparented, untracked). */
function killQuietly(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Gone already.
  }
}

const lockFile = (dir: string, port: number) => join(dir, `agent-${port}.lock`);

/**
 * A shell loop that returns once process `pid` has exec'd `sleep` (a forked shell shows as `sh`
 * until then): its /proc/<pid>/comm is read by the shell itself, a bounded number of times.
 */
const UNTIL_SLEEP = (pid: string) =>
  `i=0; until { read -r c 2>/dev/null </proc/${pid}/comm && [ "$c" = sleep ]; } || [ $i -ge 1000000 ]; do i=$((i + 1)); done`;

/**
 * Waits until process `pid` runs `comm` (it has exec'd it): nothing signals an exec, so its
 * /proc/<pid>/comm is looked at between turns of the event loop, for 10 s at most.
 */
async function untilCommand(pid: number, comm: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== comm) {
    assert.ok(Date.now() < deadline, `pid ${pid} did not exec ${comm} within 10 s`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe('a port held by a process that inherited its interlock', () => {
  it('a background child of the command of portlock run: named at once by run, status, list and stop; stop --force stops it', async () => {
    const { dir, port } = await place();
    let child: number | undefined;
    try {
      // The command starts a background sleep (its output elsewhere, so that run's pipes close) and exits: portlock run exits and removes its lock
      // file, and the sleep keeps the interlock's descriptor (3). The command exits only once its
      // child has become `sleep` (a forked shell until it execs), so that run names it so.
      const run = spawnCli([
        'run',
        '-p',
        String(port),
        '--dir',
        dir,
        '--',
        'sh',
        '-c',
        `sleep 30 >/dev/null 2>&1 & ${UNTIL_SLEEP('$!')}; echo $!`,
      ]);
      const ran = await finished(run);
      assert.equal(ran.code, 0, ran.stderr);
      child = Number(ran.stdout.trim());
      assert.ok(child > 0, ran.stdout);
      assert.equal(existsSync(lockFile(dir, port)), false);
      // Told at once, as it exits, that the port stays locked, and by whom.
      assert.equal(
        ran.stderr,
        `portlock: port ${port} stays locked: held by pid ${child} (sleep 30, user root) through the kernel interlock, with no lock file (it inherited the lock from portlock run, pid ${run.pid}).\n` +
          `Next step: let it exit, or stop it: portlock stop ${port} --force.\n`,
      );
      const sentence = `held by pid ${child} (sleep 30, user root) through the kernel interlock, with no lock file (it inherited the lock from portlock run, pid ${run.pid}, which has exited)`;

      const refused = await cli(['run', '-p', String(port), '--dir', dir, '--', 'true']);
      assert.equal(refused.code, 75);
      assert.equal(
        refused.stderr,
        `portlock: portlock cannot take the lock for port ${port}: ${sentence}.\n` +
          `Next step: stop it (kill ${child}; none answers a stop request, so it must be signalled), then try again.\n`,
      );

      const status = await cli(['status', String(port), '--dir', dir]);
      assert.deepEqual(status, { code: 0, stdout: `port ${port}: running: ${sentence}\n`, stderr: '' });
      const inspected = await inspectLock({ port, dir });
      assert.equal(inspected.orphaned, true);
      assert.deepEqual(
        inspected.holders?.map((holder) => holder.pid),
        [child],
      );

      const list = await cli(['list', '--dir', dir, '--json']);
      const [row, ...more] = JSON.parse(list.stdout).locks;
      assert.equal(more.length, 0);
      assert.equal(row.lock, String(port));
      assert.equal(row.state, 'held');
      assert.equal(row.reason, sentence);
      const table = await cli(['list', '--dir', dir]);
      assert.match(
        table.stdout,
        new RegExp(`^${port} +running +sleep +${child} +root .*${sentence.replace(/[()]/g, '\\$&')}$`, 'm'),
      );

      const polite = await cli(['stop', String(port), '--dir', dir]);
      assert.equal(polite.code, 1);
      assert.equal(
        polite.stderr,
        `portlock: port ${port} is ${sentence}; it cannot be asked to stop, as it does not wait on the interlock for requests.\n` +
          `Next step: portlock stop ${port} --force (SIGTERM, then SIGKILL).\n`,
      );
      const forced = await cli(['stop', String(port), '--dir', dir, '--force']);
      assert.equal(forced.code, 0, forced.stderr);
      assert.equal(
        forced.stdout,
        `port ${port}: stopped pid ${child} (sleep 30, user root): the holder released the lock and exited (after SIGTERM to pid ${child})\n`,
      );
      const after = await cli(['status', String(port), '--dir', dir]);
      assert.equal(after.code, 3, after.stdout);
    } finally {
      killQuietly(child);
    }
  });

  it('the command of a portlock run killed with SIGKILL: the refusal and list name it, not the dead wrapper; stop --force leaves no record', async () => {
    const { dir, port } = await place();
    let command: number | undefined;
    try {
      const run = spawnCli(['run', '-p', String(port), '--dir', dir, '--', 'sh', '-c', 'echo $$; exec sleep 30']);
      command = Number(await lineMatching(run, /^\d+$/));
      // Named by its command line: a shell until it execs, so wait until it is `sleep`.
      await untilCommand(command, 'sleep');
      run.kill('SIGKILL');
      await exited(run);
      const sentence = `held by pid ${command} (sleep 30, user root) through the kernel interlock (it inherited the lock from portlock run, pid ${run.pid}, which has exited)`;

      const refused = await cli(['run', '-p', String(port), '--dir', dir, '--', 'true']);
      assert.equal(refused.code, 75);
      assert.equal(
        refused.stderr,
        `portlock: portlock cannot take the lock for port ${port}: ${sentence}.\n` +
          `Lock file: ${lockFile(dir, port)} (the process it names no longer holds the lock)\n` +
          `Next step: stop it (kill ${command}; none answers a stop request, so it must be signalled), then try again.\n`,
      );
      assert.doesNotMatch(refused.stderr, /Verdict: alive/);

      const [row] = JSON.parse((await cli(['list', '--dir', dir, '--json'])).stdout).locks;
      assert.equal(row.reason, sentence);
      assert.equal(row.record, undefined, 'the dead wrapper is not shown as running');
      assert.deepEqual(
        row.holders.map((holder: { pid: number }) => holder.pid),
        [command],
      );

      const forced = await cli(['stop', String(port), '--dir', dir, '--force']);
      assert.equal(forced.code, 0, forced.stderr);
      assert.equal(
        forced.stdout,
        `port ${port}: stopped pid ${command} (sleep 30, user root): the holder released the lock and exited (after SIGTERM to pid ${command}); its lock file ${lockFile(dir, port)} was removed\n`,
      );
      assert.equal(existsSync(lockFile(dir, port)), false);
      const after = await cli(['status', String(port), '--dir', dir]);
      assert.deepEqual(after, { code: 3, stdout: `port ${port}: not running (there is no lock file)\n`, stderr: '' });
    } finally {
      killQuietly(command);
    }
  });
});

describe("a port held by another user's process", { skip: nobodyUnavailable() }, () => {
  it('says whose it is and that only that user or root can stop it; --force says it may not signal it', async () => {
    const { dir, port } = await place();
    const lock = await acquireLock({ port, dir });
    try {
      const own = tempDir();
      giveToNobody(own);
      const asNobody = async (args: string[]) =>
        finished(
          spawnTracked('setpriv', [...setprivArgs(), process.execPath, '--import', 'tsx', BIN, ...args], {
            stdio: ['ignore', 'pipe', 'pipe'],
            env: { ...process.env, HOME: '/nonexistent' },
            timeoutMs: 30_000,
          }),
        );
      const stopAsNobody = (args: string[]) => asNobody(['stop', String(port), '--dir', own, ...args]);
      // The holder's command line as the CLI shows it, perhaps shortened: only its pid and user are fixed.
      const holder = `pid ${process.pid} \\([^\\n]*, user root\\)`;
      const why = `port ${port} is held by another user's process: ${holder}, by its own account \\(/proc does not show you which process holds it, as it shows no other user's descriptors\\); only root can stop it`;
      const next = `Next step: ask root to stop it; as root: portlock stop ${port}\\.\n`;
      const polite = await stopAsNobody([]);
      assert.equal(polite.code, 1);
      assert.match(polite.stderr, new RegExp(`^portlock: ${why}\\.\n${next}$`));
      const forced = await stopAsNobody(['--force']);
      assert.equal(forced.code, 1);
      assert.match(
        forced.stderr,
        new RegExp(`^portlock: ${why}; no process was signalled, as you may not signal it\\.\n${next}$`),
      );
      assert.doesNotMatch(forced.stderr, /no process to signal was found/);
      // A start is refused with the same truth: no lock file of nobody's to remove.
      const refused = await asNobody(['run', '-p', String(port), '--dir', own, '--', 'true']);
      assert.equal(refused.code, 75);
      assert.match(
        refused.stderr,
        /^Next step: the holder runs as another user, and only that user or root can stop it: ask them, wait for it to exit, or use another port\.$/m,
      );
      assert.doesNotMatch(refused.stderr, /remove/);
    } finally {
      await lock.release();
    }
  });
});
