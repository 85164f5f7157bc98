import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { acquireLock, inspectLock } from '../../src/index.ts';
import { commandText } from '../../src/record/holder-text.ts';
import { finished } from '../helpers/spawn.ts';
import { CHILD, cli, exited, jsonLine, place, spawnCli } from './_support.ts';

const node = process.execPath;

/** A loopback server the command connects to once it runs: an event to await instead of a sleep. */
async function readiness(): Promise<{ port: number; connected: Promise<unknown>; server: Server }> {
  const server = createServer((socket) => socket.on('error', () => {}));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  after(() => server.close());
  return { port: address.port, connected: once(server, 'connection'), server };
}

/** `node -e` that connects to the readiness server, then lives on (or ignores SIGTERM too). */
function waiter(readyPort: number, ignoreTerm = false): string[] {
  const script = `${ignoreTerm ? "process.on('SIGTERM', () => {});" : ''}require('net').connect(${readyPort}, '127.0.0.1').on('error', () => {}); setTimeout(() => {}, 60000);`;
  return [node, '-e', script];
}

type Ready = { ready: true; pid: number; port: string; fd3: boolean };
const isReady = (line: { ready?: boolean }) => line.ready === true;

describe('portlock run, in process', () => {
  it("exits with the command's exit code, or 128 + the signal that ended it, and releases the lock", async () => {
    const { dir, port } = await place();
    const base = ['run', '--port', String(port), '--dir', dir, '--'];
    assert.equal((await cli([...base, node, '-e', 'process.exit(7)'])).code, 7);
    assert.equal((await cli([...base, node, '-e', "process.kill(process.pid, 'SIGKILL')"])).code, 137);
    assert.equal((await cli([...base, node, '-e', "process.kill(process.pid, 'SIGTERM')"])).code, 143);
    assert.equal((await inspectLock({ port, dir })).state, 'free');
  });

  it('gives the command PORT and the lock as descriptor 3, and a command after options without --', async () => {
    const { dir, port } = await place();
    const check = `process.exit(process.env.PORT === '${port}' && require('fs').fstatSync(3).isSocket() ? 0 : 1)`;
    assert.equal((await cli(['run', '-p', String(port), '--dir', dir, '--', node, '-e', check])).code, 0);
    assert.equal((await cli(['run', '-p', String(port), '--dir', dir, node, '-e', check])).code, 0);
  });

  it('refuses a held port at once with the holder named, exit 75 or --conflict-exit-code', async () => {
    const { dir, port } = await place();
    const lock = await acquireLock({ port, dir, name: 'percy' });
    try {
      // How fast a refusal comes is measured by the benchmarks (bench/refusal.ts), not asserted here.
      const refused = await cli(['run', '-p', String(port), '--dir', dir, '--', node, '-e', 'process.exit(9)']);
      assert.equal(refused.code, 75);
      assert.equal(refused.stdout, '');
      const lines = refused.stderr.trimEnd().split('\n');
      assert.match(
        lines[0] ?? '',
        new RegExp(`^portlock: percy is already running on port ${port}: held by pid ${process.pid} `),
      );
      assert.match(lines[1] ?? '', /^Verdict: alive, certain/);
      assert.equal(lines[2], `Lock file: ${join(dir, `agent-${port}.lock`)}`);
      assert.match(lines[3] ?? '', /^Next step: /);
      const zero = await cli([
        'run',
        '-p',
        String(port),
        '--dir',
        dir,
        '--conflict-exit-code',
        '0',
        '--',
        node,
        '-e',
        'process.exit(9)',
      ]);
      assert.equal(zero.code, 0);
      const json = await cli(['run', '-p', String(port), '--dir', dir, '--json', '--', node, '-e', '0']);
      assert.equal(json.code, 75);
      assert.equal(json.stderr, '');
      const { error } = JSON.parse(json.stdout);
      assert.equal(error.code, 'ELOCKED');
      assert.equal(error.holder.pid, process.pid);
      assert.equal(error.holder.name, 'percy');
      assert.equal(error.lockPath, join(dir, `agent-${port}.lock`));
    } finally {
      await lock.release();
    }
  });

  it('waits for a held port with --wait, drawing a live line on a terminal, and runs once it is free', async () => {
    const { dir, port } = await place();
    const lock = await acquireLock({ port, dir, name: 'percy' });
    let drawn: () => void = () => {};
    const lineDrawn = new Promise<void>((resolve) => {
      drawn = resolve;
    });
    const running = cli(
      ['run', '-p', String(port), '--dir', dir, '--wait', '30', '--', node, '-e', 'process.exit(4)'],
      {
        isTTY: true,
        onStderr: (text) => {
          if (text.includes('waiting for port')) drawn();
        },
      },
    );
    await lineDrawn;
    await lock.release();
    const result = await running;
    assert.equal(result.code, 4);
    assert.match(
      result.stderr,
      new RegExp(
        `^\\r\\x1b\\[2K\\x1b\\[2mwaiting for port ${port}, held by percy, pid ${process.pid}, user \\S+, up \\d+ s: 0 s of 30 s \\(Ctrl-C gives up\\)`,
      ),
    );
    assert.ok(result.stderr.endsWith('\r\x1b[2K'), 'the line is cleared once the lock is taken');
  });

  it('gives up after --wait with the refusal, and draws no line when not on a terminal', async () => {
    const { dir, port } = await place();
    const lock = await acquireLock({ port, dir });
    try {
      const result = await cli(['run', '-p', String(port), '--dir', dir, '--wait', '0.2', '--', node, '-e', '0']);
      assert.equal(result.code, 75);
      assert.ok(!result.stderr.includes('waiting for port'));
      assert.match(result.stderr, /is already running/);
    } finally {
      await lock.release();
    }
  });

  it('exits 127 for a command that does not exist, 126 for one that cannot run, and releases the lock', async () => {
    const { dir, port } = await place();
    const missing = await cli(['run', '-p', String(port), '--dir', dir, '--', 'portlock-test-no-such-command']);
    assert.equal(missing.code, 127);
    assert.equal(
      missing.stderr,
      "portlock: cannot run 'portlock-test-no-such-command': command not found.\nNext step: check its name, or give its full path (it was looked for in PATH).\n",
    );
    const directory = await cli(['run', '-p', String(port), '--dir', dir, '--', dir]);
    assert.equal(directory.code, 126);
    assert.equal(
      directory.stderr,
      `portlock: cannot run '${dir}': it is a directory, not a program.\nNext step: name the program to run after --, for example: portlock run -p ${port} -- node server.js\n`,
    );
    const file = join(dir, 'plain.txt');
    writeFileSync(file, 'echo hi\n', { mode: 0o644 });
    const notExecutable = await cli(['run', '-p', String(port), '--dir', dir, '--', file]);
    assert.equal(notExecutable.code, 126);
    assert.match(
      notExecutable.stderr,
      /permission denied \(it is not executable by this user\)\.\nNext step: make it executable \(chmod \+x /,
    );
    assert.equal((await inspectLock({ port, dir })).state, 'free');
  });

  it('passes a stop request on to the command as SIGTERM', async () => {
    const { dir, port } = await place();
    const ready = await readiness();
    const running = cli(['run', '-p', String(port), '--dir', dir, '--', ...waiter(ready.port)]);
    await ready.connected;
    const stopped = await cli(['stop', String(port), '--dir', dir]);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.match(
      stopped.stdout,
      // Under run, the holder is named by the command it runs.
      new RegExp(
        `^port ${port}: stopped \\S+ -e .* \\(pid \\d+, under portlock run pid ${process.pid}, .*on request\\)$`,
        'm',
      ),
    );
    const result = await running;
    assert.equal(result.code, 143);
    assert.match(result.stderr, new RegExp(`stop requested for port ${port}: sending SIGTERM to pid \\d+`));
  });

  it('sends SIGKILL --kill-after seconds after SIGTERM to a command that ignores it', async () => {
    const { dir, port } = await place();
    const ready = await readiness();
    const running = cli([
      'run',
      '-p',
      String(port),
      '--dir',
      dir,
      '--kill-after',
      '0.2',
      '--',
      ...waiter(ready.port, true),
    ]);
    await ready.connected;
    const stopped = await cli(['stop', String(port), '--dir', dir, '--timeout', '10']);
    assert.equal(stopped.code, 0, stopped.stderr);
    const result = await running;
    assert.equal(result.code, 137);
    assert.match(result.stderr, /still runs 0\.2 s after SIGTERM: sending SIGKILL/);
  });
});

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('portlock run, as a real process', () => {
  it('refuses a second start with a message naming the first, and exits with the signal it passes on', async () => {
    const { dir, port } = await place();
    const first = spawnCli(['run', '-p', String(port), '--dir', dir, '--name', 'percy', '--', node, CHILD, 'plain']);
    const ready = await jsonLine<Ready>(first, isReady);
    assert.equal(ready.port, String(port));
    assert.equal(ready.fd3, true);

    const refused = await finished(spawnCli(['run', '-p', String(port), '--dir', dir, '--', node, CHILD, 'plain']));
    assert.equal(refused.code, 75);
    assert.match(
      refused.stderr,
      new RegExp(
        // The command as shown: shortened where the path to node is long.
        `^portlock: port ${port} is held by ${escapeRegExp(commandText([node, CHILD, 'plain']))} \\(pid ${ready.pid}, under portlock run pid ${first.pid}, user \\S+\\) in \\S+ since `,
      ),
    );
    assert.match(refused.stderr, new RegExp(`Next step: stop that process first \\(for example: kill ${first.pid}\\)`));

    first.kill('SIGTERM');
    assert.deepEqual(await exited(first), { code: 143, signal: null });
    assert.equal((await inspectLock({ port, dir })).state, 'free');
  });

  it('forwards SIGINT, SIGTERM and SIGHUP to the command, and exits with its exit code', async () => {
    await Promise.all(
      (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map(async (signal) => {
        const { dir, port } = await place();
        const run = spawnCli(['run', '-p', String(port), '--dir', dir, '--', node, CHILD, 'trap']);
        await jsonLine(run, isReady);
        const got = jsonLine<{ got: string }>(run, (line) => 'got' in line);
        run.kill(signal);
        assert.equal((await got).got, signal);
        assert.deepEqual(await exited(run), { code: 3, signal: null }, signal);
        assert.equal((await inspectLock({ port, dir })).state, 'free');
      }),
    );
  });

  it('is stopped by `portlock stop`, with SIGKILL after --kill-after for a command that ignores SIGTERM', async () => {
    const { dir, port } = await place();
    const run = spawnCli(['run', '-p', String(port), '--dir', dir, '--kill-after', '0.3', '--', node, CHILD, 'ignore']);
    await jsonLine(run, isReady);
    const got = jsonLine<{ got: string }>(run, (line) => 'got' in line);
    const stop = finished(spawnCli(['stop', String(port), '--dir', dir, '--json']));
    assert.equal((await got).got, 'SIGTERM');
    assert.deepEqual(await exited(run), { code: 137, signal: null });
    const { code, signal, stdout } = await stop;
    assert.deepEqual({ code, signal }, { code: 0, signal: null });
    const result = JSON.parse(stdout);
    assert.equal(result.outcome, 'stopped');
    assert.equal(result.via, 'request');
    assert.equal(result.before.record.pid, run.pid);
  });

  it('keeps the port locked while the command lives if portlock itself is killed with SIGKILL', async () => {
    const { dir, port } = await place();
    const run = spawnCli(['run', '-p', String(port), '--dir', dir, '--name', 'percy', '--', node, CHILD, 'plain']);
    const { pid: child } = await jsonLine<Ready>(run, isReady);
    run.kill('SIGKILL');
    await exited(run);

    const status = await cli(['status', String(port), '--dir', dir]);
    assert.equal(status.code, 0, status.stdout);
    assert.match(
      status.stdout,
      new RegExp(
        `^port ${port}: running: held by pid ${child} \\(.*cli-child\\.mjs plain, user \\S+\\) through the kernel interlock \\(it inherited the lock from portlock run --name percy, pid ${run.pid}, which has exited\\)\\n$`,
      ),
    );

    const refused = await cli(['run', '-p', String(port), '--dir', dir, '--', node, '-e', '0']);
    assert.equal(refused.code, 75);
    assert.match(refused.stderr, new RegExp(`: held by pid ${child} .* through the kernel interlock \\(`));
    assert.match(refused.stderr, new RegExp(`Next step: stop it \\(kill ${child};`));

    const polite = await cli(['stop', String(port), '--dir', dir, '--timeout', '1']);
    assert.equal(polite.code, 1);
    assert.match(
      polite.stderr,
      new RegExp(
        `held by pid ${child} .*; it cannot be asked to stop, as it does not wait on the interlock for requests`,
      ),
    );
    assert.match(polite.stderr, /Next step: portlock stop .* --force/);

    const forced = await cli(['stop', String(port), '--dir', dir, '--timeout', '5', '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stdout, new RegExp(`after SIGTERM to pid ${child}\\)`));
    const again = await acquireLock({ port, dir });
    await again.release();
  });
});
