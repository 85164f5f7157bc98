import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdirSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { main } from '../../src/cli/main.ts';
import { systemProbe } from '../../src/identity/probe.ts';
import { acquireLock, LockHeldError } from '../../src/index.ts';
import { commandText } from '../../src/record/holder-text.ts';
import { BIN, CHILD, cli, exited, spawnCli } from '../cli/_support.ts';
import { giveToNobody, nobodyUnavailable, setprivArgs } from '../helpers/as-nobody.ts';
import { freePort } from '../helpers/free-port.ts';
import { type Holder, startHolder } from '../helpers/holder.ts';
import { privateNetworkUnavailable } from '../helpers/namespaces.ts';
import { deadPid, writeRecord } from '../helpers/records.ts';
import { finished, fixture, lineMatching, projectRoot, spawnTracked } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

// Every transcript in the README is what the command prints today on Linux. Each test stages what
// the README shows (a holder, a stale record, a record from another host), runs the command, and
// compares its output with the README's once the example's pids, ports, paths, users, times and
// commands are put in place of the ones this run happened to get.

const README = readFileSync(join(projectRoot, 'README.md'), 'utf8');

/**
 * What the README shows after `$ <command>` in a console block, up to the next `$ ` line or the
 * block's end: the first such command after the heading `section`, where one is given.
 */
function transcript(command: string, section?: string): string {
  const from = section === undefined ? 0 : README.indexOf(`\n${section}\n`);
  assert.ok(from >= 0, `README has a section ${section}`);
  const at = README.indexOf(`$ ${command}\n`, from);
  assert.ok(at >= 0, `README shows $ ${command}`);
  const start = at + command.length + 3;
  const lines: string[] = [];
  for (const line of README.slice(start, README.indexOf('```', start)).split('\n')) {
    if (line.trimStart().startsWith('$ ')) break;
    lines.push(line);
  }
  return lines.join('\n').replace(/\s*$/, '\n');
}

/** The example in backticks of the README's `portlock status` table row for `state`. */
function statusExample(exit: number, state: string): string {
  const start = `| ${exit} | ${state} | \``;
  const row = README.split('\n').find((line) => line.startsWith(start));
  assert.ok(row !== undefined, `README's status table has a row for ${exit} ${state}`);
  return row.slice(start.length, row.indexOf('`', start.length));
}

type Swap = [string | RegExp, string];

/** The text with each of this run's values replaced by the README's. */
function asInReadme(text: string, swaps: Swap[]): string {
  let result = text;
  for (const [from, to] of swaps) {
    // A number (a pid, a port) only as a whole word: a port's digits may be part of a pid.
    const pattern = typeof from === 'string' && /^\d+$/.test(from) ? new RegExp(`\\b${from}\\b`, 'g') : from;
    result = typeof pattern === 'string' ? result.replaceAll(pattern, to) : result.replace(pattern, to);
  }
  return result;
}

/** A table's rows as cells (columns are two or more spaces apart), to compare whatever the widths. */
const cells = (table: string) =>
  table
    .trimEnd()
    .split('\n')
    .map((line) => line.trimEnd().split(/ {2,}/));

/** Runs the command line in this process, stdout and stderr in one text, in the order written (as a terminal shows them). */
async function both(argv: string[]): Promise<{ code: number; text: string }> {
  let text = '';
  const stream = { write: (chunk: string) => (text += chunk) };
  const code = await main(argv, { stdout: stream, stderr: stream, env: {} });
  return { code, text };
}

const sharedTmp = (() => {
  try {
    return (statSync('/tmp').mode & 0o7777) === 0o1777 ? undefined : '/tmp is not mode 1777 here';
  } catch {
    return 'no /tmp';
  }
})();

const linux = process.platform === 'linux' ? undefined : 'the README shows what Linux prints';

/** A record as portlock writes it on this host, for a process that is gone (or of another host). */
function stagedRecord(fields: Record<string, unknown>): Record<string, unknown> {
  return {
    portlock: 1,
    hostname: hostname(),
    bootId: systemProbe.bootId(),
    netns: systemProbe.netns?.(),
    interlock: true,
    token: 'cd'.repeat(16),
    ...fields,
  };
}

const hoursAgo = (hours: number) => new Date(Date.now() - hours * 3_600_000).toISOString();

describe('README transcripts are what the command prints', { skip: linux }, () => {
  it('portlock run -p 8205 -- /tmp', async () => {
    const port = await freePort();
    const dir = tempDir();
    const result = await cli(['run', '-p', String(port), '--dir', dir, '--', '/tmp']);
    assert.equal(result.stderr, transcript('portlock run -p 8205 -- /tmp').replaceAll('8205', String(port)));
  });

  it('portlock run -p 8230 --dir /tmp -- true', { skip: sharedTmp }, async () => {
    const port = await freePort();
    const result = await cli(['run', '-p', String(port), '--dir', '/tmp', '--', 'true']);
    assert.equal(result.stderr, transcript('portlock run -p 8230 --dir /tmp -- true'));
  });

  it('portlock status http', async () => {
    const result = await both(['status', 'http']);
    assert.equal(result.code, 2);
    assert.equal(result.text, transcript('portlock status http'));
  });

  it('portlock run --port auto --prefer "$PWD" -- node server.js', async () => {
    const dir = tempDir();
    const result = await cli(['run', '--port', 'auto', '--prefer', projectRoot, '--dir', dir, '--', 'true']);
    assert.equal(result.code, 0, result.stderr);
    const shown = asInReadme(result.stderr, [
      [/port \d+/, 'port 29505'],
      [/ for true$/m, ' for node server.js'],
    ]);
    assert.equal(shown, transcript('portlock run --port auto --prefer "$PWD" -- node server.js'));
  });

  it('a port used by a program that does not use portlock: status, exit 5', async () => {
    const server = createServer().listen(0, '0.0.0.0');
    await once(server, 'listening');
    after(() => server.close());
    const port = (server.address() as { port: number }).port;
    const result = await cli(['status', String(port), '--dir', tempDir()]);
    assert.equal(result.code, 5);
    const shown = asInReadme(result.stdout.trimEnd(), [
      [String(port), '8123'],
      [/in use by .* \(pid \d+, user root,/, 'in use by python3 -m http.server 8123 (pid 311, user alice,'],
    ]);
    assert.equal(shown, statusExample(5, 'in use'));
  });

  it('a port held under portlock run: status', async () => {
    const dir = tempDir();
    const port = await freePort();
    const run = spawnCli(['run', '-p', String(port), '--dir', dir, '--', 'node', CHILD, 'plain'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const { pid } = JSON.parse(await lineMatching(run, /"ready":true/)) as { pid: number };
      const result = await cli(['status', String(port), '--dir', dir]);
      assert.equal(result.code, 0, result.stderr);
      const shown = asInReadme(result.stdout.trimEnd(), [
        [String(port), '3000'],
        [`${commandText(['node', CHILD, 'plain'])} (pid ${pid}`, 'node server.js (pid 29986'],
        [String(run.pid), '29969'],
        ['user root', 'user alice'],
        [/up \d+ s/, 'up 1 s'],
        [`in ${projectRoot.replace(/\/$/, '')} (`, 'in /home/alice/app ('],
      ]);
      assert.equal(shown, statusExample(0, 'running, under `portlock run` or `up`'));
    } finally {
      run.kill('SIGTERM');
      await exited(run);
    }
  });

  it('portlock status 8080, after portlock run was killed with SIGKILL', async () => {
    const dir = tempDir();
    const port = await freePort();
    const run = spawnCli(['run', '-p', String(port), '--dir', dir, '--', 'node', CHILD, 'plain'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const { pid } = JSON.parse(await lineMatching(run, /"ready":true/)) as { pid: number };
    try {
      run.kill('SIGKILL');
      await exited(run);
      const result = await cli(['status', String(port), '--dir', dir]);
      assert.equal(result.code, 0, result.stderr);
      const shown = asInReadme(result.stdout, [
        [commandText(['node', CHILD, 'plain']), 'node server.js'],
        [String(port), '8080'],
        [String(pid), '5120'],
        [String(run.pid), '5117'],
        [/user root\b/g, 'user alice'],
        [/taken \d+ s ago/, 'taken 1 min ago'],
        [projectRoot.replace(/\/$/, ''), '/home/alice/app'],
      ]);
      assert.equal(
        shown,
        transcript(
          'portlock status 8080',
          '- **If `portlock run` itself is killed with SIGKILL**, the command does not go on using the port',
        ).replace(/^ {2}/gm, ''),
      );
    } finally {
      process.kill(pid, 'SIGKILL');
    }
  });

  it('the quick start: a second agent, status, and status after kill -9', async () => {
    const dir = tempDir();
    const port = await freePort();
    const args = ['agent', '-p', String(port), '--dir', dir];
    const agent = spawnCli(args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const listening = await new Promise<string>((resolve) => {
      let text = '';
      agent.stderr?.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        if (text.includes('\n')) resolve(text);
      });
    });
    const swaps: Swap[] = [
      [commandText([process.execPath, BIN, ...args]), '/usr/bin/node /home/alice/portlock/src/cli/bin.ts agent'],
      [String(port), '5338'],
      [String(agent.pid), '4242'],
      [/user root\b/, 'user alice'],
      [` on ${hostname()} since `, ' on devbox since '],
      [/since \S+ \(\d+ s ago\)/, 'since 2026-11-24T09:12:03.000Z (2 s ago)'],
      [/\bup \d+ s\b/, 'up 9 s'],
      [/taken \d+ s ago/, 'taken 15 s ago'],
      [`${dir}/`, '/home/alice/.portlock/'],
      [projectRoot.replace(/\/$/, ''), '/home/alice/portlock'],
    ];
    // The console blocks of the quick start's numbered steps, indented under each.
    const step = (command: string, heading: string) => transcript(command, heading).replace(/^ {3}/gm, '');
    try {
      assert.equal(
        asInReadme(listening, swaps),
        step('portlock agent', '1. **Terminal 1** starts the agent. It takes the lock for port 5338 and serves on it:'),
      );
      const second = await cli(args);
      assert.equal(second.code, 75);
      assert.equal(
        asInReadme(second.stderr, swaps),
        step(
          'portlock agent',
          '2. **Terminal 2** tries a second start. It is refused in milliseconds, with the holder named and',
        ),
      );
      const running = await cli(['status', String(port), '--dir', dir]);
      assert.equal(
        asInReadme(running.stdout, swaps),
        step('portlock status 5338', '3. Ask who holds the port, in one line (exit 0: running):'),
      );
      agent.kill('SIGKILL');
      await exited(agent);
      const stale = await cli(['status', String(port), '--dir', dir]);
      assert.equal(stale.code, 1);
      assert.equal(
        asInReadme(stale.stdout, swaps),
        step('portlock status 5338', '4. Kill the agent the hard way, so that it cannot clean up after itself:'),
      );
    } finally {
      agent.kill('SIGKILL');
      await exited(agent);
    }
  });

  describe('a lock directory with a running, a stale and an unknown lock', () => {
    let dir: string;
    let holder: Holder;
    let port: number;
    let stalePort: number;
    let ghost: number;
    let swaps: Swap[];

    before(async () => {
      dir = tempDir();
      // In the README's order: the running lock's port first.
      [port, stalePort] = [await freePort(), await freePort()].sort((a, b) => a - b) as [number, number];
      holder = await startHolder({ port, dir, name: 'percy' });
      // Its command line, as its answer tells it: node, the script, and the options it was given.
      const shown = commandText([process.execPath, fixture('holder.ts'), JSON.stringify({ port, dir, name: 'percy' })]);
      ghost = await deadPid();
      writeRecord(
        join(dir, `agent-${stalePort}.lock`),
        stagedRecord({ name: 'percy', pid: ghost, port: stalePort, user: 'alice', startedAt: hoursAgo(2) }),
      );
      writeRecord(
        join(dir, 'build-cache.lock'),
        stagedRecord({
          name: 'ci',
          pid: 18210,
          key: 'build-cache',
          user: 'ci',
          hostname: 'runner-7',
          startedAt: hoursAgo(3),
          interlock: undefined,
          bootId: undefined,
          netns: undefined,
        }),
      );
      swaps = [
        // The holder's command line first: it names the directory and port.
        [shown, 'node /srv/percy/agent.js'],
        [String(stalePort), '5339'],
        [String(port), '5338'],
        [String(ghost), '3977'],
        [String(holder.pid), '4242'],
        [projectRoot.replace(/\/$/, ''), '/home/alice/app'],
        [dir, '/home/alice/.portlock'],
        [`checked from ${hostname()}`, 'checked from devbox'],
        [/user root\b/, 'user alice'],
        [/\bup \d+ s\b/, 'up 5 min'],
      ];
    });

    after(async () => {
      holder.child.stdin?.end();
      await exited(holder.child);
    });

    it('status: running, stale, not running and unknown, as the table shows', async () => {
      const running = await cli(['status', String(port), '--dir', dir]);
      assert.equal(running.code, 0, running.stderr);
      assert.equal(asInReadme(running.stdout.trimEnd(), swaps), statusExample(0, 'running'));
      const stale = await cli(['status', String(stalePort), '--dir', dir]);
      assert.equal(stale.code, 1, stale.stderr);
      assert.equal(
        asInReadme(stale.stdout.trimEnd(), swaps).replaceAll('3977', '4242').replace('5339', '5338'),
        statusExample(1, 'stale'),
      );
      const free = await freePort();
      const none = await cli(['status', String(free), '--dir', dir]);
      assert.equal(none.code, 3);
      assert.equal(none.stdout.trimEnd().replace(String(free), '5338'), statusExample(3, 'not running'));
      const odd = tempDir();
      symlinkSync('/nonexistent', join(odd, `agent-${free}.lock`));
      const unknown = await cli(['status', String(free), '--dir', odd]);
      assert.equal(unknown.code, 4);
      assert.equal(unknown.stdout.trimEnd().replace(String(free), '5338'), statusExample(4, 'unknown'));
    });

    it('portlock list', async () => {
      const result = await cli(['list', '--dir', dir]);
      assert.equal(result.code, 0, result.stderr);
      const shown = cells(result.stdout).map((row) =>
        row.map((cell) => {
          const swapped = asInReadme(cell, swaps);
          // The AGE and USER columns, as of the example.
          if (/^\d+ s$/.test(swapped)) return '5 min';
          return swapped === 'root' ? 'alice' : swapped;
        }),
      );
      assert.deepEqual(shown, cells(transcript('portlock list', '### `portlock list` (`ls`)')));
    });

    it('portlock clean', async () => {
      const result = await both(['clean', '--dir', dir]);
      assert.equal(result.code, 0, result.text);
      assert.equal(asInReadme(result.text, swaps), transcript('portlock clean'));
    });

    it('a refusal (LockHeldError)', async () => {
      const error = await acquireLock({ port, dir, name: 'percy' }).then(
        () => assert.fail('acquired a held lock'),
        (caught: unknown) => caught,
      );
      assert.ok(error instanceof LockHeldError);
      const block = /A refusal reads like this:\n\n```\n([^`]*)```/.exec(README)?.[1] ?? '';
      const shown = asInReadme(error.message, [
        [`on ${hostname()} since`, 'on devbox since'],
        [/since \S+ \(\d+ s ago\)/, 'since 2026-11-24T09:12:03.000Z (5 min ago)'],
        [`${dir}/`, '/home/alice/.percy/'],
        ...swaps,
      ]);
      assert.equal(`${shown}\n`, block);
    });
  });

  describe('as a user other than root', () => {
    const why = nobodyUnavailable() ?? privateNetworkUnavailable();
    const portlock = (args: string[]) => [...setprivArgs(), process.execPath, '--import', 'tsx', BIN, ...args];

    it('portlock agent --port 80', { skip: why }, async () => {
      const dir = tempDir();
      giveToNobody(dir);
      // In a network namespace of its own (loopback up): port 80 and its lock's name are no one else's there.
      const args = ['--net', '--', 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh', 'setpriv'];
      const result = await finished(
        spawnTracked('unshare', [...args, ...portlock(['agent', '--port', '80', '--dir', dir])], { timeoutMs: 30_000 }),
      );
      assert.equal(result.code, 1, result.stderr);
      assert.equal(result.stderr, transcript('portlock agent --port 80        # as a user other than root'));
    });

    it('portlock list --dir /root/.portlock', { skip: why }, async () => {
      // A lock directory inside a private directory of root's, as /root/.portlock is.
      const dir = join(tempDir(), '.portlock');
      mkdirSync(dir, { mode: 0o700 });
      const result = await finished(spawnTracked('setpriv', portlock(['list', '--dir', dir]), { timeoutMs: 30_000 }));
      assert.equal(result.code, 1, result.stderr);
      assert.equal(
        result.stderr.replaceAll(dir, '/root/.portlock'),
        transcript('portlock list --dir /root/.portlock     # as a user other than root'),
      );
    });
  });
});
