import assert from 'node:assert/strict';
import type { SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { listLocks, stopLock } from '../../src/index.ts';
import { freePort } from '../helpers/free-port.ts';
import { finished, fixture, lineMatching, spawnTracked } from '../helpers/spawn.ts';
import { BIN, cli } from './_support.ts';

/** `status`, `down <port>` and `logs` run in this process: only `up` needs a process of its own. */
const here = (args: string[], where: Place) => cli([...args, '--dir', where.dir]);

// `portlock up` runs from the server's directory, so tsx is given by its path, not its name.
const TSX = import.meta.resolve('tsx');
const SERVER = fixture('up-server.mjs');

interface Place {
  root: string;
  dir: string;
  port: number;
  work: string;
  starts: string;
}

const places: Place[] = [];
// A test that fails half way must not leave its background servers behind: they have sessions of
// their own, beyond the reach of the cleanup of spawned children.
after(async () => {
  for (const where of places) {
    for (const lock of await listLocks({ dir: where.dir }).catch(() => [])) {
      if (lock.record?.port !== undefined) await stopLock({ port: lock.record.port, dir: where.dir, force: true });
    }
    rmSync(where.root, { recursive: true, force: true });
  }
});

async function place(): Promise<Place> {
  // Removed by the hook above, once its servers are stopped.
  const root = mkdtempSync(join(tmpdir(), 'portlock-up-'));
  const work = join(root, 'project');
  mkdirSync(work);
  const where = { root, dir: join(root, 'locks'), port: await freePort(), work, starts: join(root, 'starts') };
  places.push(where);
  return where;
}

function portlock(args: string[], where: Place, options: SpawnOptions & { extraEnv?: Record<string, string> } = {}) {
  const { extraEnv, ...spawnOptions } = options;
  const [command = '', ...rest] = args;
  return spawnTracked(process.execPath, ['--import', TSX, BIN, command, '--dir', where.dir, ...rest], {
    cwd: where.work,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, UP_STARTS: where.starts, ...extraEnv },
    timeoutMs: 30_000,
    ...spawnOptions,
  });
}

const run = (args: string[], where: Place, options: Parameters<typeof portlock>[2] = {}) =>
  finished(portlock(args, where, options));

function startsOf(where: Place): string[] {
  try {
    return readFileSync(where.starts, 'utf8').trim().split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

function record(where: Place, port = where.port): Record<string, unknown> {
  return JSON.parse(readFileSync(join(where.dir, `agent-${port}.lock`), 'utf8'));
}

// Each test has its own port and directories: they run side by side.
describe('portlock up', { concurrency: true }, () => {
  test('ten `up` at once from one directory: one server; all ten print its URL and pid; down stops it', async () => {
    const where = await place();
    const ups = Array.from({ length: 10 }, () =>
      run(['up', '-p', String(where.port), '--json', '--', 'node', SERVER], where),
    );
    const results = await Promise.all(ups);
    for (const result of results) assert.equal(result.code, 0, result.stderr);
    const answers = results.map((result) => JSON.parse(result.stdout));
    assert.equal(new Set(answers.map((answer) => `${answer.url} ${answer.pid}`)).size, 1);
    assert.equal(answers.filter((answer) => answer.already === false).length, 1);
    assert.equal(answers[0].url, `http://localhost:${where.port}`);
    assert.deepEqual(startsOf(where), [String(answers[0].pid)]);
    const response = await fetch(answers[0].url);
    assert.equal(await response.text(), 'ok\n');

    // The same port, asked for by another command or from another directory: refused, naming the server.
    const other = await run(['up', '-p', String(where.port), '--', 'node', SERVER, '--other'], where);
    assert.equal(other.code, 75);
    assert.match(other.stderr, new RegExp(`node \\S+up-server\\.mjs \\(pid ${answers[0].pid}, under portlock run pid`));
    assert.match(other.stderr, new RegExp(`in ${where.work.replaceAll('/', '\\/')}`));
    const elsewhere = { ...where, work: join(where.work, '..') };
    const fromThere = await run(['up', '-p', String(where.port), '--', 'node', SERVER], elsewhere);
    assert.equal(fromThere.code, 75);
    assert.match(fromThere.stderr, /is held by node/);

    const down = await here(['down', String(where.port)], where);
    assert.equal(down.code, 0, down.stderr);
    assert.equal((await here(['status', String(where.port)], where)).code, 3);
    assert.deepEqual(startsOf(where), [String(answers[0].pid)]);
  });

  test('the server outlives the script that started it and a SIGHUP to its group; after kill -9, up starts a new one', async () => {
    const where = await place();
    // A script in a process group of its own: it runs `up`, then stays, as a terminal's shell would.
    const args = ['--import', TSX, BIN, 'up', '-p', String(where.port), '--dir', where.dir, '--', 'node', SERVER];
    const script = spawnTracked('sh', ['-c', '"$@" && exec sleep 30', 'sh', process.execPath, ...args], {
      cwd: where.work,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, UP_STARTS: where.starts },
    });
    const line = await lineMatching(script, /^up: /);
    assert.match(
      line,
      new RegExp(
        `^up: http://localhost:${where.port} \\(pid \\d+, node \\S+, log ${where.dir}/agent-${where.port}\\.log\\)$`,
      ),
    );
    const exit = once(script, 'exit');
    process.kill(-(script.pid ?? 0), 'SIGHUP');
    await exit;
    assert.equal((await here(['status', String(where.port)], where)).code, 0);
    const [first] = startsOf(where);
    assert.equal(await (await fetch(`http://localhost:${where.port}`)).text(), 'ok\n');

    process.kill(Number(first), 'SIGKILL');
    // Ready this time when it answers over HTTP.
    const health = `http://localhost:${where.port}/health`;
    const again = await run(['up', '-p', String(where.port), '--ready', health, '--', 'node', SERVER], where);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, new RegExp(`^up: http://localhost:${where.port} \\(pid \\d+, `));
    const starts = startsOf(where);
    assert.equal(starts.length, 2);
    assert.notEqual(starts[1], first);
    assert.equal((await here(['down', String(where.port)], where)).code, 0);
  });

  test('a command that never becomes ready: its log tail is printed, nothing is left running or locked', async () => {
    const where = await place();
    const never = await run(['up', '-p', String(where.port), '--ready-timeout', '2', '--', 'node', SERVER], where, {
      extraEnv: { UP_NEVER_READY: '1' },
    });
    assert.equal(never.code, 1);
    assert.match(never.stderr, /was not ready on port \d+ within --ready-timeout; it was stopped/);
    // On a loaded host the command may not even have started within the timeout; if it did, it is gone.
    const [pid] = startsOf(where);
    if (pid !== undefined) {
      assert.match(never.stderr, /^ {2}booting$/m);
      assert.throws(() => process.kill(Number(pid), 0), { code: 'ESRCH' });
    }
    assert.equal((await here(['status', String(where.port)], where)).code, 3);

    const exits = await run(['up', '-p', String(where.port), '--', 'node', SERVER], where, {
      extraEnv: { UP_EXIT: '3' },
    });
    assert.equal(exits.code, 3);
    assert.match(exits.stderr, /exited \(code 3\) before it was ready/);
    // The tail is this start's output, not that of the start before it in the same log.
    assert.match(exits.stderr, /\nThe last line it wrote to \S+agent-\d+\.log:\n {2}booting\n$/);
    assert.equal((await here(['status', String(where.port)], where)).code, 3);
  });

  test('the log stays within its bound, mode 0600; logs prints it and -f ends when the server stops', async () => {
    const where = await place();
    const bound = 4000;
    const up = await run(
      [
        'up',
        '-p',
        String(where.port),
        '--log-size',
        String(bound),
        // Ready once the log has it all: the output reaches the log a moment after the port opens.
        '--ready',
        'log:listening on',
        '--',
        'node',
        SERVER,
      ],
      where,
      {
        extraEnv: { UP_LINES: '200' },
      },
    );
    assert.equal(up.code, 0, up.stderr);
    const log = join(where.dir, `agent-${where.port}.log`);
    // The output comes in chunks of any size: rotated or cut, the log keeps its end, within the bound.
    assert.doesNotMatch(readFileSync(log, 'utf8'), /^line 0 /m);
    for (const file of [log, `${log}.1`].filter((path) => existsSync(path))) {
      const stat = statSync(file);
      assert.ok(stat.size <= bound, `${file} has ${stat.size} bytes`);
      assert.equal(stat.mode & 0o777, 0o600);
    }
    const logs = await here(['logs', String(where.port), '-n', '2'], where);
    assert.equal(logs.stdout, `booting\nlistening on ${where.port}\n`);

    const followed = here(['logs', String(where.port), '-f', '-n', '0'], where);
    assert.equal((await here(['down', String(where.port)], where)).code, 0);
    assert.equal((await followed).code, 0);
  });

  test('--port auto: a second up from the same directory finds the server the first started', async () => {
    const where = await place();
    const first = await run(['up', '--json', '--', 'node', SERVER], where);
    assert.equal(first.code, 0, first.stderr);
    const second = await run(['up', '--json', '--', 'node', SERVER], where);
    const [a, b] = [JSON.parse(first.stdout), JSON.parse(second.stdout)];
    assert.equal(b.already, true);
    assert.equal(b.port, a.port);
    assert.equal(b.pid, a.pid);
    const down = await run(['down'], where);
    assert.match(down.stdout, new RegExp(`port ${a.port}: node \\S+ \\(pid ${a.pid}\\)`));
    assert.equal(down.code, 0);
    assert.equal((await here(['status', String(a.port)], where)).code, 3);
  });

  test('up -- portlock agent is ready when the agent says so: it adopts the lock', async () => {
    const where = await place();
    const up = await run(
      ['up', '-p', String(where.port), '--', process.execPath, '--import', TSX, BIN, 'agent'],
      where,
    );
    assert.equal(up.code, 0, up.stderr);
    const held = record(where);
    assert.equal(held.state, 'ready');
    assert.equal(typeof held.supervisorPid, 'number');
    assert.match(up.stdout, new RegExp(`^up: http://localhost:${where.port} \\(pid ${held.pid}, `));
    assert.equal((await here(['down', String(where.port)], where)).code, 0);
  });
});
