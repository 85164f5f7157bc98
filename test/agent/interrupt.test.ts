import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { freePort } from '../helpers/free-port.ts';
import { fixture, spawnTs } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { lockFile, tell, Watched } from './_support.ts';

/** `test/fixtures/agent-staged.ts`, for signals before and during start(). */
function staged(stage: 'idle' | 'setup', port: number, dir: string): Watched {
  return new Watched(spawnTs(fixture('agent-staged.ts'), [JSON.stringify({ port, dir, stage })]));
}

describe('handleShutdown before and during start()', () => {
  it('refuses a start after a signal that came while the agent was idle, and arms no hard exit', async () => {
    const dir = tempDir();
    const port = await freePort();
    const agent = staged('idle', port, dir);
    await agent.event('idle');
    agent.child.kill('SIGINT');
    await agent.stderrLine(/SIGINT received while staged is not running: it will not start/);
    tell(agent, 'start');
    const failed = await agent.event('start-failed');
    assert.equal(failed.name, 'AbortError');
    assert.equal(failed.message, 'staged was interrupted by SIGINT');
    assert.equal(failed.readyState, 'idle');
    assert.deepEqual(await agent.exited, { code: 130, signal: null });
    assert.doesNotMatch(agent.stderr, /still running .* after stopping/);
    assert.doesNotMatch(agent.stdout, /"ready"/);
    assert.ok(!existsSync(lockFile(dir, port)));
  });

  it("aborts and undoes a start under way, then ends with the signal's exit code", async () => {
    const dir = tempDir();
    const port = await freePort();
    const agent = staged('setup', port, dir);
    await agent.event('setup');
    assert.ok(existsSync(lockFile(dir, port)), 'the setup hooks run once the lock is held');
    agent.child.kill('SIGTERM');
    const failed = await agent.event('start-failed');
    assert.equal(failed.name, 'AbortError');
    assert.equal(failed.message, 'staged was interrupted by SIGTERM');
    assert.equal(failed.readyState, 'stopped');
    assert.deepEqual(await agent.exited, { code: 143, signal: null });
    assert.ok(!existsSync(lockFile(dir, port)), 'the undone start leaves no record');
  });
});
