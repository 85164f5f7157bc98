import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { freePort } from '../helpers/free-port.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { http, lockFile, startAgentFixture, tell } from './_support.ts';

const holderOf = (dir: string, port: number) => JSON.parse(readFileSync(lockFile(dir, port), 'utf8')).pid as number;

describe('agent lifecycle across processes', () => {
  it('starts again at once after the holder was killed with SIGKILL', async (t) => {
    const dir = tempDir();
    const port = await freePort();
    const first = startAgentFixture({ port, dir });
    const ready = await first.event('ready');
    assert.equal(holderOf(dir, port), ready.pid);

    first.child.kill('SIGKILL');
    await first.exited;
    assert.ok(existsSync(lockFile(dir, port)), 'SIGKILL leaves the record behind');

    const second = startAgentFixture({ port, dir });
    // At once: with nothing cleaned up by hand and no wait (the agent never waits for a lock). How
    // fast is for the benchmarks (bench/crash-reacquire.ts); a loaded machine must not fail this.
    const again = await second.event('ready');
    t.diagnostic(`the second start took ${Math.round(again.ms as number)} ms`);
    assert.equal(holderOf(dir, port), again.pid);
    assert.equal((await http({ port })).body, `hello from ${again.pid}\n`);
    second.child.kill('SIGTERM');
    assert.equal((await second.exited).code, 143);
    assert.ok(!existsSync(lockFile(dir, port)));
  });

  it('refuses a second start on the same port, naming the pid and the lock file', async (t) => {
    const dir = tempDir();
    const port = await freePort();
    const first = startAgentFixture({ port, dir, name: 'percy' });
    const ready = await first.event('ready');

    const second = startAgentFixture({ port, dir, name: 'percy' });
    const failed = await second.event('start-failed');
    const result = await second.exited;
    assert.equal(result.code, 75);
    assert.equal(failed.name, 'AlreadyRunningError');
    assert.equal(failed.message, `Percy is already running or the port ${port} is in use`);
    // How fast is for the benchmarks (bench/refusal.ts); a loaded machine must not fail this.
    t.diagnostic(`the refusal took ${Math.round(failed.ms as number)} ms`);
    assert.match(second.stderr, new RegExp(`pid ${ready.pid}\\b`));
    assert.ok(second.stderr.includes(lockFile(dir, port)), second.stderr);

    assert.equal(holderOf(dir, port), ready.pid, 'the refused start leaves the holder alone');
    assert.equal((await http({ port })).status, 200);
    first.child.kill('SIGINT');
    assert.equal((await first.exited).code, 130);
  });

  it('runs two agents on two ports at the same time', async () => {
    const dir = tempDir();
    const [portA, portB] = [await freePort(), await freePort()];
    const a = startAgentFixture({ port: portA, dir });
    const b = startAgentFixture({ port: portB, dir });
    const [readyA, readyB] = await Promise.all([a.event('ready'), b.event('ready')]);
    assert.equal((await http({ port: portA })).body, `hello from ${readyA.pid}\n`);
    assert.equal((await http({ port: portB })).body, `hello from ${readyB.pid}\n`);
    assert.equal(holderOf(dir, portA), readyA.pid);
    assert.equal(holderOf(dir, portB), readyB.pid);
    a.child.kill('SIGTERM');
    b.child.kill('SIGTERM');
    assert.deepEqual(await Promise.all([a.exited, b.exited]), [
      { code: 143, signal: null },
      { code: 143, signal: null },
    ]);
  });

  it('stops and exits when POST /stop carries the token from the record', async () => {
    const dir = tempDir();
    const port = await freePort();
    const agent = startAgentFixture({ port, dir });
    await agent.event('ready');
    const { token } = JSON.parse(readFileSync(lockFile(dir, port), 'utf8'));
    const refused = await http({ port, path: '/stop', method: 'POST', headers: { origin: 'https://evil.example' } });
    assert.equal(refused.status, 403);
    const response = await http({ port, path: '/stop', method: 'POST', headers: { authorization: `Bearer ${token}` } });
    assert.equal(response.status, 202);
    assert.deepEqual(await agent.exited, { code: 0, signal: null });
    assert.ok(!existsSync(lockFile(dir, port)));
  });

  it('releases the lock on an exit that skips stop()', async () => {
    const dir = tempDir();
    const port = await freePort();
    const agent = startAgentFixture({ port, dir, shutdown: false });
    await agent.event('ready');
    assert.ok(existsSync(lockFile(dir, port)));
    tell(agent, 'exit');
    assert.equal((await agent.exited).code, 0);
    assert.ok(!existsSync(lockFile(dir, port)));
  });

  it('leaves no record when a setup hook fails after the lock was taken', async () => {
    const dir = tempDir();
    const port = await freePort();
    const agent = startAgentFixture({ port, dir, failSetup: true });
    const failed = await agent.event('start-failed');
    assert.equal(failed.message, 'setup failed on purpose');
    assert.equal((await agent.exited).code, 75);
    assert.ok(!existsSync(lockFile(dir, port)));
  });
});
