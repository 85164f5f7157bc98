import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { lockLabel } from '../../src/cli/commands/list.ts';
import { type AcquireOptions, acquireLock, cleanLocks, inspectLock, listLocks, stopLock } from '../../src/index.ts';
import { freePort } from '../helpers/free-port.ts';
import { interlockMode, interlockOnly } from '../helpers/interlock-mode.ts';
import { refusalOf } from '../helpers/refusal.ts';
import { finished, fixture, lineMatching, spawnTracked, spawnTs } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

/** Why `unshare` with these flags cannot run here, or undefined when it can. */
function unshareUnavailable(flags: string[]): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  const tried = spawnSync('unshare', [...flags, 'true'], { encoding: 'utf8', timeout: 10_000 });
  return tried.status === 0 ? undefined : `the kernel refuses unshare ${flags.join(' ')}: ${tried.stderr.trim()}`;
}

const PID_NS = ['--pid', '--fork', '--mount-proc'];
const PID_NET_NS = ['--pid', '--net', '--fork', '--mount-proc'];
const UTS_NS = ['--uts'];
const RACE_ROUNDS = 20;

/**
 * Starts a holder of `options` inside new namespaces that share this file system (and so the lock
 * directory). Resolves once it holds the lock, with the host pid of the holder itself.
 */
async function holdInside(flags: string[], options: AcquireOptions, hostname?: string) {
  const node = [process.execPath, '--import', 'tsx', fixture('holder.ts'), JSON.stringify(options)];
  const command = hostname === undefined ? node : ['sh', '-c', `hostname ${hostname} && exec "$@"`, 'sh', ...node];
  const child = spawnTracked('unshare', [...flags, ...command], { stdio: ['pipe', 'pipe', 'inherit'] });
  await lineMatching(child, /"ready":true/);
  // With --fork, the holder is unshare's child (pid 1 of its namespace); without, unshare itself.
  const children = flags.includes('--fork')
    ? readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).map(Number)
    : [child.pid as number];
  const holder = children[0];
  if (holder === undefined) throw new Error('no holder inside the namespace');
  const kill = async () => {
    const exited = once(child, 'exit');
    process.kill(holder, 'SIGKILL');
    await exited;
  };
  return { child, kill };
}

describe('a holder in another pid namespace sharing the lock directory', () => {
  for (const [what, flags] of [
    ['pid namespace', PID_NS],
    ['pid and network namespace', PID_NET_NS],
  ] as const) {
    const skip = unshareUnavailable(flags);
    for (const scope of ['record-only port lock', 'interlocked key lock'] as const) {
      it(`${scope}, ${what}: the host is refused, told so; after SIGKILL it acquires at once`, {
        skip,
        timeout: 60_000,
      }, async () => {
        const dir = tempDir();
        const options: AcquireOptions =
          scope === 'record-only port lock' ? { port: await freePort(), dir, interlock: 'off' } : { key: 'ns', dir };
        const inside = await holdInside(flags, options);
        try {
          const refused = await acquireLock(options).then(
            () => assert.fail('the host took a lock held in another pid namespace'),
            (error: Error) => error,
          );
          assert.equal(refused.name, 'LockHeldError');
          assert.match(refused.message, /held by pid 1\b/);
          assert.match(refused.message, /in another pid namespace \(pid:\[\d+\]\)/);
          assert.doesNotMatch(refused.message, /kill 1\b/, 'never advises killing pid 1 here');
          // Pid 1 here is some other process: stop --force leaves it alone.
          const { port, key } = options;
          const stopped = await stopLock({ ...(port ? { port } : { key }), dir, force: true, timeout: 200 });
          assert.notEqual(stopped.outcome, 'stopped');
          assert.deepEqual(stopped.signalled, []);
        } finally {
          await inside.kill();
        }
        const lock = await acquireLock(options);
        await lock.release();
      });
    }
  }
});

describe('a key holder in another network namespace whose lock directory is moved away or replaced', () => {
  // The socket file reaches across network namespaces, and a key has a second one named from its
  // directory's path; an abstract name is seen only in its own network namespace, and the holder's
  // record went with its directory.
  const skip =
    unshareUnavailable(PID_NET_NS) ||
    (interlockMode !== 'socket-file' && `it tests the socket file; this run uses PORTLOCK_INTERLOCK=${interlockMode}`);
  for (const how of ['moved away', 'replaced'] as const) {
    it(`directory ${how}: refused at its path; after SIGKILL it acquires at once`, {
      skip,
      timeout: 60_000,
    }, async () => {
      const parent = tempDir();
      const dir = join(parent, 'locks');
      const inside = await holdInside(PID_NET_NS, { key: 'moved', dir });
      try {
        if (how === 'moved away') renameSync(dir, join(parent, 'moved'));
        else {
          mkdirSync(`${dir}.new`, { mode: 0o700 });
          rmSync(dir, { recursive: true });
          renameSync(`${dir}.new`, dir);
        }
        await refusalOf({ key: 'moved', dir, wait: 0 }, 'taken while a holder of another network namespace holds it');
      } finally {
        await inside.kill();
      }
      const lock = await acquireLock({ key: 'moved', dir });
      await lock.release();
    });
  }
});

describe('a holder in another UTS namespace (its own hostname, this kernel and network)', () => {
  it('a SIGKILLed key holder: the next acquire on the host succeeds at once', {
    skip: unshareUnavailable(UTS_NS),
    timeout: 60_000,
  }, async () => {
    const dir = tempDir();
    const inside = await holdInside(UTS_NS, { key: 'uts', dir }, 'portlock-uts-inside');
    try {
      await assert.rejects(acquireLock({ key: 'uts', dir }), { name: 'LockHeldError' });
    } finally {
      await inside.kill();
    }
    const lock = await acquireLock({ key: 'uts', dir });
    await lock.release();
  });
});

/** A contender (test/fixtures/netns-racer.ts) on the host, or inside `flags`' namespaces: one JSON message a line. */
function contender(dir: string, flags?: string[]) {
  const node = [process.execPath, '--import', 'tsx', fixture('netns-racer.ts'), JSON.stringify({ dir })];
  const child =
    flags === undefined
      ? spawnTracked(node[0] as string, node.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] })
      : spawnTracked('unshare', [...flags, ...node], { stdio: ['pipe', 'pipe', 'inherit'] });
  const waiting: ((message: Record<string, unknown>) => void)[] = [];
  const queued: Record<string, unknown>[] = [];
  let buffer = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk;
    const lines = buffer.split('\n');
    buffer = lines.pop() ?? '';
    for (const line of lines) {
      const message = JSON.parse(line) as Record<string, unknown>;
      const next = waiting.shift();
      if (next === undefined) queued.push(message);
      else next(message);
    }
  });
  const closed = once(child, 'close');
  const next = () =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const message = queued.shift();
      if (message !== undefined) resolve(message);
      else {
        waiting.push(resolve);
        void closed.then(() => reject(new Error('the contender exited before answering')));
      }
    });
  const ask = (message: object) => {
    child.stdin?.write(`${JSON.stringify(message)}\n`);
    return next();
  };
  const end = async () => {
    child.stdin?.end();
    await closed;
  };
  return { child, ask, send: (message: object) => child.stdin?.write(`${JSON.stringify(message)}\n`), next, end };
}

const bytesOf = (path: string) => readFileSync(path);
const CONTAINER = [...PID_NET_NS];

describe('a container with a network namespace of its own, sharing the lock directory and the port number', () => {
  const skip = unshareUnavailable(CONTAINER);
  // Only the abstract socket is a network namespace's own; a socket file and a record alone are shared.
  const both = interlockMode === 'auto';

  it(`never touches the host holder's record; ${both ? 'both hold their own port' : 'the container is refused'}`, {
    skip,
    timeout: 60_000,
  }, async () => {
    const dir = tempDir();
    const port = await freePort();
    const plain = join(dir, `agent-${port}.lock`);
    const host = spawnTs(fixture('holder.ts'), [JSON.stringify({ port, dir, stoppable: true })], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    await lineMatching(host, /"ready":true/);
    const before = bytesOf(plain);
    const inside = contender(dir, CONTAINER);
    try {
      // The container's clean: the host's record is another namespace's, whose holder may be alive.
      const cleaned = await inside.ask({ type: 'clean' });
      assert.deepEqual(cleaned.removed, []);
      assert.deepEqual(bytesOf(plain), before, "the host holder's record is untouched by the container's clean");
      const taken = await inside.ask({ type: 'go', port, deadline: 0 });
      assert.deepEqual(bytesOf(plain), before, "the host holder's record is untouched by the container's acquire");
      if (!both) {
        assert.equal(taken.won, false, 'a shared interlock (or none) refuses the container');
        if (interlockMode === 'socket-file') {
          // The host's socket answers, which the container's /proc/net/unix does not list: held by
          // the kernel's word (the container sees no host process), said so at once.
          assert.match(String(taken.message), /socket file .* is held by .*another network namespace/);
          assert.match(String(taken.message), /^Socket file: .* \(owned by root, uid 0\)$/m);
          assert.doesNotMatch(String(taken.message), /rm /, 'no removal is offered for a holder it cannot see');
        }
      } else {
        assert.equal(taken.won, true, String(taken.message));
        const netns = readlinkSync(`/proc/${inside.child.pid}/ns/net`);
        assert.notEqual(netns, readlinkSync('/proc/self/ns/net'));
        assert.equal(taken.path, join(dir, `agent-${port}.net-${/\d+/.exec(netns)?.[0]}.lock`));
        // Each namespace's status finds its own holder, at its own file.
        const there = await inside.ask({ type: 'inspect', port });
        assert.equal(there.state, 'held', String(there.reason));
        assert.equal(there.path, taken.path);
        assert.equal((there.record as { pid: number }).pid, taken.pid);
        // The host lists the container's file as its port, of its namespace, never as running here; clean keeps it.
        const listed = await listLocks({ dir });
        assert.deepEqual(
          listed.map((lock) => [lockLabel(lock.path), lock.state]),
          [
            [String(port), 'held'],
            [`${port} (${netns})`, 'unknown'],
          ],
        );
        assert.match(listed[1]?.reason ?? '', /a lock of another network namespace .*alive there/);
        assert.deepEqual((await cleanLocks({ dir })).removed, []);
        assert.equal(existsSync(taken.path as string), true, "the host's clean keeps the container's live record");
        const released = await inside.ask({ type: 'release' });
        assert.equal(released.type, 'released');
        assert.deepEqual(bytesOf(plain), before, "the host holder's record is untouched by the container's release");
        assert.equal(existsSync(taken.path as string), false, "the container's release removes its own record");
      }
      await inside.end();
      assert.deepEqual(bytesOf(plain), before, "the host holder's record is untouched once the container has exited");
      const here = await inspectLock({ port, dir });
      assert.equal(here.state, 'held', here.reason);
      assert.equal(here.path, plain);
      assert.equal(here.record?.pid, host.pid);
      // Without an interlock there is nobody to ask: a verified holder is sent SIGTERM.
      const stopped = await stopLock({ port, dir, timeout: 10_000, force: true });
      assert.equal(stopped.outcome, 'stopped', stopped.reason);
      assert.equal(existsSync(plain), false);
    } finally {
      await inside.end();
      host.kill('SIGKILL');
    }
  });

  it(`two contenders of two network namespaces at one barrier onto an absent file: never a reclaim of a live record (${RACE_ROUNDS} rounds)`, {
    skip,
    timeout: 120_000,
  }, async () => {
    const dir = tempDir();
    const host = contender(dir);
    const inside = contender(dir, CONTAINER);
    try {
      for (let round = 0; round < RACE_ROUNDS; round++) {
        const port = await freePort();
        const go = { type: 'go', port, deadline: Date.now() + 60 };
        host.send(go);
        inside.send(go);
        const results = [await host.next(), await inside.next()];
        const won = results.filter((result) => result.won === true);
        assert.equal(won.length, both ? 2 : 1, `round ${round}: ${JSON.stringify(results)}`);
        if (both) assert.notEqual(won[0]?.path, won[1]?.path, `round ${round}: two holders of one file`);
        for (const winner of won) {
          // Each winner's file still carries its own token: nobody replaced a live record.
          const record = JSON.parse(readFileSync(winner.path as string, 'utf8')) as { token: string };
          assert.equal(record.token, winner.token, `round ${round}: a live record was replaced`);
        }
        for (const side of [host, inside]) assert.equal((await side.ask({ type: 'release' })).type, 'released');
        assert.deepEqual(readdirSync(dir), [], `round ${round}: every record is removed by its own holder`);
      }
    } finally {
      await Promise.all([host.end(), inside.end()]);
    }
  });

  it(`the other way round: the container holds the plain file; ${both ? 'the host keeps its record beside it, and finds it there' : 'the host is refused'}`, {
    skip,
    timeout: 60_000,
  }, async () => {
    const dir = tempDir();
    const port = await freePort();
    const plain = join(dir, `agent-${port}.lock`);
    const inside = await holdInside(CONTAINER, { port, dir });
    try {
      const before = bytesOf(plain);
      if (!both) {
        await assert.rejects(acquireLock({ port, dir }), { name: 'LockHeldError' });
      } else {
        const lock = await acquireLock({ port, dir });
        try {
          const netns = readlinkSync('/proc/self/ns/net');
          assert.equal(lock.path, join(dir, `agent-${port}.net-${/\d+/.exec(netns)?.[0]}.lock`));
          const here = await inspectLock({ port, dir });
          assert.equal(here.state, 'held', here.reason);
          assert.equal(here.path, lock.path);
          assert.equal(here.record?.pid, process.pid);
        } finally {
          await lock.release();
        }
        assert.equal(existsSync(lock.path), false);
      }
      assert.deepEqual(bytesOf(plain), before, "the container holder's record is untouched");
    } finally {
      await inside.kill();
    }
  });

  for (const [what, flags, hostname] of [
    ['', CONTAINER, undefined],
    [' (with a hostname of its own)', [...CONTAINER, '--uts'], 'portlock-netns-inside'],
  ] as const) {
    it(`a SIGKILLed container holder's record is still reclaimed by the host${what}`, {
      skip: skip || unshareUnavailable([...flags]),
      timeout: 60_000,
    }, async () => {
      const dir = tempDir();
      const port = await freePort();
      const inside = await holdInside([...flags], { port, dir }, hostname);
      await inside.kill();
      const lock = await acquireLock({ port, dir });
      try {
        assert.equal(lock.path, join(dir, `agent-${port}.lock`));
      } finally {
        await lock.release();
      }
    });
  }
});

describe('a container in the same network namespace (a pid namespace of its own) refused a port the host holds', () => {
  it('says the holder runs in another pid namespace (not as another user), names the lock file as the holder reports it, and where to stop it', {
    skip: unshareUnavailable(PID_NS) || interlockOnly,
    timeout: 60_000,
  }, async () => {
    const dir = tempDir();
    const port = await freePort();
    const host = spawnTs(fixture('holder.ts'), [JSON.stringify({ port, dir })], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      await lineMatching(host, /"ready":true/);
      const args = [...PID_NS, process.execPath, '--import', 'tsx', fixture('try-acquire.ts')];
      const tried = finished(spawnTracked('unshare', [...args, JSON.stringify({ port, dir })]));
      const { stdout } = await tried;
      const outcome = JSON.parse(stdout) as {
        acquired: boolean;
        error?: { message: string };
        inspection: { state: string; reason: string };
      };
      assert.equal(outcome.acquired, false);
      // Its status: held out of reach, as a holder of another pid namespace is (never `stop`ped from here).
      assert.equal(outcome.inspection.state, 'unknown');
      assert.match(outcome.inspection.reason, /runs in another pid namespace/);
      const message = outcome.error?.message ?? '';
      assert.doesNotMatch(message, /another user/, 'root holds it: it runs in another pid namespace, as no other user');
      assert.match(message, /runs in another pid namespace \(a container, or the host\)/);
      assert.match(
        message,
        new RegExp(`^Lock file: ${join(dir, `agent-${port}.lock`)} \\(.*as its holder reports`, 'm'),
      );
      assert.match(
        message,
        new RegExp(`^Next step: stop it where it runs \\(pid ${host.pid} there, by its own account\\)`, 'm'),
      );
      assert.doesNotMatch(message, /\bkill\b/, 'a pid of another pid namespace is never to be signalled from here');
    } finally {
      host.kill('SIGKILL');
    }
  });
});
