import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
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
  const line = await lineOf(run.stderr, /listening on|error/);
  assert.match(line, new RegExp(`listening on http://localhost:${port} \\(pid (\\d+)\\)`));
  const record = JSON.parse(readFileSync(join(dir, `agent-${port}.lock`), 'utf8'));
  assert.equal(record.supervisorPid, run.pid);
  assert.equal(record.state, 'ready');
  const status = await cli(['status', String(port), '--dir', dir]);
  assert.match(status.stdout, new RegExp(`running: .*agent \\(pid ${record.pid}, under portlock run pid ${run.pid}`));
  const stop = await cli(['stop', String(port), '--dir', dir]);
  assert.equal(stop.code, 0, stop.stderr);
  await exited(run);
});
