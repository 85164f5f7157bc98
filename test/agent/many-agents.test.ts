import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fixture, spawnTs } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { lockFile, Watched } from './_support.ts';

const COUNT = 12;

/** `test/fixtures/many-agents.ts`: COUNT agents in one process. */
function manyAgents(dir: string, then: 'stop' | 'exit'): Watched {
  return new Watched(spawnTs(fixture('many-agents.ts'), [JSON.stringify({ dir, count: COUNT, then })]));
}

describe('many agents in one process', () => {
  it(`share one exit listener: ${COUNT} agents raise no MaxListenersExceededWarning`, async () => {
    const dir = tempDir();
    const many = manyAgents(dir, 'stop');
    const running = await many.event('running');
    assert.equal((running.ports as number[]).length, COUNT);
    const listeners = running.exitListeners as { before: number; running: number };
    assert.equal(listeners.running, listeners.before + 1, 'one shared exit listener while they run');
    const stopped = await many.event('stopped');
    assert.equal((stopped.exitListeners as { after: number }).after, listeners.before, 'none once all have stopped');
    assert.deepEqual(stopped.warnings, []);
    assert.deepEqual(await many.exited, { code: 0, signal: null });
    assert.doesNotMatch(many.stderr, /MaxListenersExceededWarning/);
    for (const port of running.ports as number[]) assert.ok(!existsSync(lockFile(dir, port)));
  });

  it('release every lock through that one listener on an exit that skips stop()', async () => {
    const dir = tempDir();
    const many = manyAgents(dir, 'exit');
    const running = await many.event('running');
    assert.deepEqual(running.warnings, []);
    assert.deepEqual(await many.exited, { code: 0, signal: null });
    assert.doesNotMatch(many.stderr, /MaxListenersExceededWarning/);
    for (const port of running.ports as number[]) assert.ok(!existsSync(lockFile(dir, port)), `port ${port}`);
  });
});
