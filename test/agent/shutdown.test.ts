import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { handleShutdown } from '../../src/agent/shutdown.ts';
import { createAgent } from '../../src/index.ts';
import { signalExitCode } from '../../src/signals.ts';
import type { AgentFixtureConfig } from '../fixtures/agent-server.ts';
import { freePort } from '../helpers/free-port.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { http, lockFile, startAgentFixture, tell } from './_support.ts';

async function readyFixture(config: Omit<AgentFixtureConfig, 'port' | 'dir'> = {}, env = {}) {
  const dir = tempDir();
  const port = await freePort();
  const agent = startAgentFixture({ port, dir, ...config }, env);
  await agent.event('ready');
  return { agent, dir, port };
}

describe('handleShutdown', () => {
  it('maps signals to the exit codes shells use', () => {
    assert.equal(signalExitCode('SIGINT'), 130);
    assert.equal(signalExitCode('SIGTERM'), 143);
    assert.equal(signalExitCode('SIGHUP'), 129);
  });

  it('rejects a timeout or exitDelay that no timer can hold, and installs no handler then', () => {
    const agent = createAgent({ handler: () => {} });
    const before = process.listenerCount('SIGINT');
    // Node runs a timer set beyond 2^31-1 ms at once: a timeout of Infinity would force every stop after 1 ms.
    for (const bad of [Number.POSITIVE_INFINITY, 2 ** 31, -1, Number.NaN]) {
      assert.throws(() => handleShutdown(agent, { timeout: bad }), RangeError, `timeout ${bad}`);
      assert.throws(() => handleShutdown(agent, { exitDelay: bad }), RangeError, `exitDelay ${bad}`);
    }
    assert.throws(() => handleShutdown(agent, { timeout: '100' as never }), TypeError);
    assert.throws(
      () => handleShutdown(agent, { timeout: Number.POSITIVE_INFINITY }),
      /timeout must be from 0 to 2147483647/,
    );
    assert.equal(process.listenerCount('SIGINT'), before);
    handleShutdown(agent, { timeout: 2 ** 31 - 1, exitDelay: 0 })();
    assert.equal(process.listenerCount('SIGINT'), before);
  });

  it('lets a slow request finish on SIGINT, then exits 130 and leaves no record', async () => {
    const { agent, dir, port } = await readyFixture({ drainTimeout: 20_000 });
    const slow = http({ port, path: '/slow' });
    await agent.event('request');
    agent.child.kill('SIGINT');
    await agent.stderrLine(/SIGINT received, draining \(press Ctrl-C again to force\)/);
    assert.ok(existsSync(lockFile(dir, port)), 'the record stays while the server drains');
    tell(agent, 'finish');
    const response = await slow;
    assert.equal(response.status, 200);
    assert.equal(response.body, 'started\nfinished\n');
    assert.deepEqual(await agent.exited, { code: 130, signal: null });
    assert.ok(!existsSync(lockFile(dir, port)));
  });

  it('forces the stop on a second SIGINT, and logs it as a forced stop, not as a drain timeout', async () => {
    const { agent, dir, port } = await readyFixture({ drainTimeout: 60_000 });
    const slow = http({ port, path: '/slow' }).then(
      () => 'completed',
      () => 'cut',
    );
    await agent.event('request');
    agent.child.kill('SIGINT');
    await agent.stderrLine(/SIGINT received, draining/);
    agent.child.kill('SIGINT');
    assert.deepEqual(await agent.exited, { code: 130, signal: null });
    assert.equal(await slow, 'cut');
    assert.match(agent.stderr, /SIGINT received again, forcing the stop/);
    assert.match(agent.stderr, /forced stop: closed 1 connection\(s\) with 1 request\(s\) in flight/);
    assert.doesNotMatch(agent.stderr, /drain timeout/);
    assert.ok(!existsSync(lockFile(dir, port)));
  });

  it('exits 129 on SIGHUP', async () => {
    const { agent, dir, port } = await readyFixture();
    agent.child.kill('SIGHUP');
    assert.deepEqual(await agent.exited, { code: 129, signal: null });
    assert.ok(!existsSync(lockFile(dir, port)));
  });

  it('forces a stop that outlasts its budget', async () => {
    const { agent, dir, port } = await readyFixture({ drainTimeout: 60_000, shutdown: { timeout: 200 } });
    const slow = http({ port, path: '/slow' }).catch(() => 'cut');
    await agent.event('request');
    agent.child.kill('SIGTERM');
    assert.deepEqual(await agent.exited, { code: 143, signal: null });
    assert.equal(await slow, 'cut');
    assert.match(agent.stderr, /taking longer than 200 ms; forcing it/);
    assert.ok(!existsSync(lockFile(dir, port)));
  });

  it('exits anyway, exitDelay ms after the stop, when something else keeps the process alive', async () => {
    const { agent, dir, port } = await readyFixture({ hang: true, shutdown: { exitDelay: 300 } });
    agent.child.kill('SIGTERM');
    assert.deepEqual(await agent.exited, { code: 143, signal: null });
    assert.match(agent.stderr, /stopped\n.*still running 300 ms after stopping; exiting now/s);
    // A SIGTERM comes from kill or a supervisor, not a keyboard: no Ctrl-C advice.
    assert.match(agent.stderr, /SIGTERM received, draining \(send SIGTERM again to force\)/);
    assert.ok(!existsSync(lockFile(dir, port)));
  });

  for (const [command, what] of [
    ['reject', 'unhandled rejection'],
    ['throw', 'uncaught exception'],
  ] as const) {
    it(`stops cleanly and exits non-zero on an ${what}, with secrets redacted`, async () => {
      const secret = 'fixture-secret-value-42';
      const { agent, dir, port } = await readyFixture({}, { FIXTURE_API_TOKEN: secret });
      tell(agent, command);
      const { code } = await agent.exited;
      assert.equal(code, 1);
      assert.ok(!existsSync(lockFile(dir, port)));
      assert.match(agent.stderr, new RegExp(`${what}: Error: upstream refused the token \\[REDACTED\\]`));
      assert.match(agent.stderr, /authorization: '\[REDACTED\]'/);
      assert.ok(!agent.stderr.includes(secret), agent.stderr);
      assert.ok(!agent.stderr.includes('sk-fixture-0123456789'), agent.stderr);
      assert.match(agent.stderr, /stopped/);
    });
  }
});
