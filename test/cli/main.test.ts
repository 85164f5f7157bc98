import assert from 'node:assert/strict';
import { readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { acquireLock } from '../../src/index.ts';
import { projectRoot } from '../helpers/spawn.ts';
import { cli, place, staleRecord } from './_support.ts';

const { version } = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { version: string };

describe('portlock: the command line as a whole', () => {
  it('prints its version for -V or --version, anywhere, as text or JSON', async () => {
    for (const argv of [['--version'], ['-V'], ['status', '--version'], ['status', '1', '-V'], ['-V', 'list']]) {
      assert.deepEqual(await cli(argv), { code: 0, stdout: `${version}\n`, stderr: '' }, argv.join(' '));
    }
    const json = await cli(['--version', '--json']);
    assert.deepEqual(JSON.parse(json.stdout), { version });
  });

  it('names an unknown option even before the command', async () => {
    const result = await cli(['--bogus']);
    assert.equal(result.code, 2);
    assert.deepEqual(result.stderr.trimEnd().split('\n'), [
      'portlock: unknown option --bogus',
      "Try 'portlock --help'.",
    ]);
  });

  it('takes a port as -p/--port or as an argument, for every command that takes one, before the command too', async () => {
    const { dir, port } = await place();
    await staleRecord(join(dir, `agent-${port}.lock`));
    for (const argv of [
      ['status', String(port)],
      ['status', '--port', String(port)],
      ['status', '-p', String(port)],
      ['--port', String(port), 'status'],
    ]) {
      const result = await cli([...argv, '--dir', dir]);
      assert.equal(result.code, 1, `${argv.join(' ')}: ${result.stderr}`);
      assert.match(result.stdout, new RegExp(`^port ${port}: stale`));
    }
    const twice = await cli(['status', '-p', String(port), '1', '--dir', dir]);
    assert.equal(twice.code, 2);
    assert.match(twice.stderr, /the port is given twice/);
    const check = `process.exit(process.env.PORT === '${port}' ? 0 : 1)`;
    assert.equal((await cli(['run', String(port), '--dir', dir, '--', process.execPath, '-e', check])).code, 0);
    assert.equal((await cli(['run', String(port), '--dir', dir, process.execPath, '-e', check])).code, 0);
    assert.equal((await cli(['-p', String(port), 'run', '--dir', dir, process.execPath, '-e', check])).code, 0);
    const { port: idle } = await place();
    const stopped = await cli(['stop', '-p', String(idle), '--dir', dir]);
    assert.equal(stopped.code, 0, stopped.stderr);
    const agentTwice = await cli(['agent', '-p', '1', '2']);
    assert.match(agentTwice.stderr, /agent: the port is given twice/);
  });

  it('lists its commands with --help, and on stderr with exit 2 when given nothing', async () => {
    const help = await cli(['--help']);
    assert.equal(help.code, 0);
    for (const command of ['run', 'agent', 'status', 'list', 'stop', 'clean']) {
      assert.match(help.stdout, new RegExp(`^  ${command} `, 'm'));
    }
    const bare = await cli([]);
    assert.equal(bare.code, 2);
    assert.equal(bare.stdout, '');
    assert.match(bare.stderr, /Usage: portlock <command>/);
  });

  it('refuses an unknown command with exit 2 and a one-line hint', async () => {
    const result = await cli(['strat']);
    assert.equal(result.code, 2);
    assert.equal(result.stdout, '');
    assert.deepEqual(result.stderr.trimEnd().split('\n'), [
      "portlock: unknown command 'strat'",
      "Try 'portlock --help'.",
    ]);
  });

  for (const [argv, message] of [
    [['status', '1', '--bogus'], 'status: unknown option --bogus'],
    [['status', '1', '-x'], 'status: unknown option -x'],
    [['status', '1', '--dir'], 'status: --dir needs a value <dir>'],
    [['status', '1', '--json=yes'], 'status: --json takes no value'],
    [['status'], 'status: <port> is required'],
    [['status', 'http'], "status: <port> must be a port number from 1 to 65535, got 'http'"],
    [['status', '65536'], "status: <port> must be a port number from 1 to 65535, got '65536'"],
    [['status', '1', '2'], "status: unexpected argument '2'"],
    [['status', '1', '--name', 'a/b'], 'status: --name must be'],
    [['status', '1', '--dir', ''], 'status: --dir must not be empty'],
    [['--dir', 'x'], 'missing the command'],
    [['--port', '5338'], 'missing the command'],
    [['-p', '5338', '--bogus'], 'missing the command'],
    [['run', '--port', '1'], 'run: missing the command to run, after --'],
    [['run', '--', 'true'], 'run: --port is required'],
    [
      ['run', '-p', '1', '--wait', 'soon', '--', 'true'],
      "run: --wait must be a number of seconds (at most 2147483) or 'forever', got 'soon'",
    ],
    [['run', '-p', '1', '--kill-after', '9999999', '--', 'true'], 'run: --kill-after must be a number of seconds'],
    [['run', '-p', '1', '--', ''], 'run: missing the command to run'],
    [['run', '-p', '1', '--conflict-exit-code', '256', '--', 'true'], 'run: --conflict-exit-code must be an exit code'],
    [['run', '-p', '1', '--kill-after', '-1', '--', 'true'], 'run: --kill-after must be a number of seconds'],
    [['stop', '1', '--timeout', 'x'], 'stop: --timeout must be a number of seconds'],
    [['agent', '--port', '70000'], 'agent: --port must be a port number from 0 to 65535'],
    [['agent', '70000'], 'agent: --port must be a port number from 0 to 65535'],
    [['list', 'extra'], "list: unexpected argument 'extra'"],
    [['clean', 'extra'], "clean: unexpected argument 'extra'"],
  ] as const) {
    it(`exits 2 for: portlock ${argv.join(' ')}`, async () => {
      const result = await cli([...argv]);
      assert.equal(result.code, 2, result.stderr);
      assert.equal(result.stdout, '');
      const [first, hint, ...more] = result.stderr.trimEnd().split('\n');
      assert.ok(first?.startsWith(`portlock: ${message}`), first);
      assert.match(hint ?? '', /^Try 'portlock( \w+)? --help'\.$/);
      assert.deepEqual(more, []);
    });
  }

  it('reports a usage error as one JSON document on stdout with --json', async () => {
    const result = await cli(['status', 'nope', '--json']);
    assert.equal(result.code, 2);
    assert.equal(result.stderr, '');
    const { error } = JSON.parse(result.stdout);
    assert.equal(error.code, 'EUSAGE');
    assert.match(error.message, /<port> must be a port number/);
  });

  it('reports an unusable lock directory as an error with its code, exit 1', async () => {
    const { dir, port } = await place();
    const file = join(dir, 'not-a-dir');
    await cli(['run', '-p', String(port), '--dir', dir, '--', process.execPath, '-e', '0']);
    const { writeFileSync } = await import('node:fs');
    writeFileSync(file, '');
    const text = await cli(['run', '-p', String(port), '--dir', file, '--', process.execPath, '-e', '0']);
    assert.equal(text.code, 1);
    assert.match(text.stderr, /^portlock: Lock directory .* cannot be used/);
    const json = await cli(['run', '-p', String(port), '--dir', file, '--json', '--', process.execPath, '-e', '0']);
    assert.equal(JSON.parse(json.stdout).error.code, 'ELOCKDIR');
  });

  it("tells its own and the system's errors, by what they are, from a fault of its own", async () => {
    const { dir, port } = await place();
    const run = (argv: string[]) => cli(['run', '-p', String(port), '--dir', dir, '--json', '--', ...argv]);
    // Node refuses an argument with a NUL byte with ERR_INVALID_ARG_VALUE: a code, but not one a user is told.
    const node = JSON.parse((await run([process.execPath, 'a\0b'])).stdout).error;
    assert.equal(node.code, 'EINTERNAL');
    assert.match(node.message, /^unexpected error: The argument/);
    symlinkSync('/nonexistent', join(dir, `agent-${port}.lock`));
    const own = JSON.parse((await run([process.execPath, '-e', '0'])).stdout).error;
    assert.equal(own.code, 'ELOCKPATH');
    assert.doesNotMatch(own.message, /unexpected/);
  });

  it('takes global options before the command as well as after it', async () => {
    const { dir, port } = await place();
    const lock = await acquireLock({ port, dir });
    try {
      assert.equal((await cli(['--dir', dir, 'status', String(port)])).code, 0);
      assert.equal((await cli(['status', String(port), '--dir', dir])).code, 0);
      assert.equal((await cli(['--json', '--dir', dir, 'ls'])).code, 0);
    } finally {
      await lock.release();
    }
  });

  it('finds the lock directory in PORTLOCK_DIR, and in ~/.<name> without it', async () => {
    const { dir, port } = await place();
    await staleRecord(join(dir, `agent-${port}.lock`));
    assert.equal((await cli(['status', String(port)], { env: { PORTLOCK_DIR: dir } })).code, 1);
    const home = (await place()).dir;
    const fromHome = await cli(['list', '--json', '--name', 'percy'], { env: { HOME: home } });
    assert.equal(JSON.parse(fromHome.stdout).dir, join(home, '.percy'));
    const explicit = await cli(['list', '--json', '--dir', dir], { env: { PORTLOCK_DIR: home } });
    assert.equal(JSON.parse(explicit.stdout).dir, dir);
  });

  describe('colour', () => {
    it('is used on a terminal only, and never with NO_COLOR, --no-color or --json', async () => {
      const { dir, port } = await place();
      const argv = ['status', String(port), '--dir', dir];
      const ansi = '\x1b[';
      assert.ok((await cli(argv, { isTTY: true })).stdout.includes(ansi));
      assert.ok(!(await cli(argv, { isTTY: false })).stdout.includes(ansi));
      assert.ok(!(await cli(argv)).stdout.includes(ansi), 'a stream without isTTY is not a terminal');
      assert.ok(!(await cli(argv, { isTTY: true, env: { NO_COLOR: '1' } })).stdout.includes(ansi));
      assert.ok((await cli(argv, { isTTY: true, env: { NO_COLOR: '' } })).stdout.includes(ansi));
      assert.ok(!(await cli([...argv, '--no-color'], { isTTY: true })).stdout.includes(ansi));
      assert.ok(!(await cli([...argv, '--json'], { isTTY: true })).stdout.includes(ansi));
      const error = await cli(['status', 'x'], { isTTY: true });
      assert.ok(error.stderr.startsWith(`${ansi}31mportlock:`));
    });
  });
});
