import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { freePort } from '../helpers/free-port.ts';
import { finished, lineMatching, projectRoot, spawnTs } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const example = join(projectRoot, 'examples', 'hold-port.ts');

describe('examples/hold-port.ts (the quick start)', () => {
  it('holds the lock until Ctrl-C, refuses a second start, and leaves nothing behind', async () => {
    const port = await freePort();
    const env = { ...process.env, PORTLOCK_DIR: tempDir() };
    const first = spawnTs(example, [String(port)], { env, timeoutMs: 60_000 });
    const firstDone = finished(first);
    const holding = await lineMatching(first, /^Holding the lock/);
    const path = join(env.PORTLOCK_DIR, `agent-${port}.lock`);
    assert.ok(holding.includes(path));

    const second = await finished(spawnTs(example, [String(port)], { env, timeoutMs: 60_000 }));
    assert.equal(second.code, 75);
    assert.match(second.stderr, new RegExp(`portlock is already running on port ${port}: held by pid ${first.pid}`));
    assert.ok(second.stderr.includes(path));

    first.kill('SIGINT');
    const { code, stdout } = await firstDone;
    assert.equal(code, 0);
    assert.match(stdout, /SIGINT: released/);
    assert.equal(existsSync(path), false);
  });

  it('after kill -9, the next start takes the lock at once', async () => {
    const port = await freePort();
    const env = { ...process.env, PORTLOCK_DIR: tempDir() };
    const first = spawnTs(example, [String(port)], { env, timeoutMs: 60_000 });
    const firstDone = finished(first);
    await lineMatching(first, /^Holding the lock/);
    first.kill('SIGKILL');
    await firstDone;
    const again = spawnTs(example, [String(port)], { env, timeoutMs: 60_000 });
    const againDone = finished(again);
    await lineMatching(again, /^Holding the lock/);
    again.kill('SIGTERM');
    assert.equal((await againDone).code, 0);
  });
});
