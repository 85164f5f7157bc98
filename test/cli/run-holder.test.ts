import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { acquireLock } from '../../src/index.ts';
import { projectRoot } from '../helpers/spawn.ts';
import { BIN, CHILD, cli, exited, place, spawnCli } from './_support.ts';

/** Resolves with the first line of a stream that matches. */
function lineOf(stream: NodeJS.ReadableStream | null, pattern: RegExp): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    stream?.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const line = text.split('\n').find((candidate) => pattern.test(candidate));
      if (line !== undefined) resolve(line);
    });
  });
}

test('a refusal names the command run holds the port for, its pid, the run pid and the directory', async () => {
  const { dir, port } = await place();
  const holder = spawnCli(['run', '-p', String(port), '--dir', dir, '--', 'node', CHILD, 'plain'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await lineOf(holder.stdout, /"ready":true/);
  const record = JSON.parse(readFileSync(join(dir, `agent-${port}.lock`), 'utf8'));
  assert.equal(record.pid, holder.pid);
  const refused = await cli(['run', '-p', String(port), '--dir', dir, '--', 'true']);
  assert.equal(refused.code, 75);
  assert.match(
    refused.stderr,
    new RegExp(
      `^portlock: port ${port} is held by node \\S+cli-child\\.mjs plain \\(pid ${record.commandPid}, under portlock run pid ${holder.pid}, user \\S+\\) in ${projectRoot.replace(/\/$/, '')} since `,
    ),
  );
  holder.kill('SIGTERM');
  await exited(holder);
});

test('portlock run -p P -- portlock agent: the agent adopts the lock and serves P, instead of refusing its parent', async () => {
  const { dir, port } = await place();
  const run = spawnCli(
    ['run', '-p', String(port), '--dir', dir, '--', process.execPath, '--import', 'tsx', BIN, 'agent'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let agentPid: number | undefined;
  try {
    const line = await lineOf(run.stderr, /listening on|error/);
    assert.match(line, new RegExp(`listening on http://localhost:${port} \\(pid (\\d+)\\)`));
    const record = JSON.parse(readFileSync(join(dir, `agent-${port}.lock`), 'utf8'));
    agentPid = record.pid;
    assert.equal(record.supervisorPid, run.pid);
    assert.equal(record.state, 'ready');
    assert.equal(record.command.at(-1), 'agent');
    const status = await cli(['status', String(port), '--dir', dir]);
    // The command line is shortened for display: a long path to node may leave no room for `agent`.
    assert.match(status.stdout, new RegExp(`running: .* \\(pid ${record.pid}, under portlock run pid ${run.pid}`));
    const stop = await cli(['stop', String(port), '--dir', dir]);
    assert.equal(stop.code, 0, stop.stderr);
    await exited(run);
  } finally {
    // The agent is run's child, not the test's: left running, it would hold the test's pipe open.
    if (run.exitCode === null && run.signalCode === null) run.kill('SIGKILL');
    if (agentPid !== undefined) {
      try {
        process.kill(agentPid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
  }
});

test('status and list show what a holder serves: its state, command, directory and URL (--json too)', async () => {
  const { dir, port } = await place();
  const holder = { command: ['node', 'server.js'], cwd: '/srv/app', state: 'starting' as const };
  const lock = await acquireLock({ port, dir, holder });
  const starting = await cli(['status', String(port), '--dir', dir]);
  assert.match(
    starting.stdout,
    new RegExp(`^port ${port}: running \\(starting\\): portlock, pid ${process.pid}, .*; in /srv/app \\(`),
  );
  lock.update({ state: 'ready', url: `http://localhost:${port}` });
  const ready = await cli(['status', String(port), '--dir', dir]);
  assert.match(
    ready.stdout,
    new RegExp(`running: portlock, pid ${process.pid}, .*; at http://localhost:${port}; in /srv/app \\(`),
  );
  const listed = await cli(['list', '--dir', dir]);
  assert.match(listed.stdout, /^LOCK +STATE +NAME +PID +USER +AGE +COMMAND +CWD +URL +NOTE$/m);
  assert.match(
    listed.stdout,
    new RegExp(
      `^${port} +running +portlock +${process.pid} .* node server\\.js +/srv/app +http://localhost:${port}$`,
      'm',
    ),
  );
  const json = JSON.parse((await cli(['status', String(port), '--dir', dir, '--json'])).stdout);
  assert.deepEqual(
    [json.record.command, json.record.cwd, json.record.state, json.record.url],
    [['node', 'server.js'], '/srv/app', 'ready', `http://localhost:${port}`],
  );
  await lock.release();
});
