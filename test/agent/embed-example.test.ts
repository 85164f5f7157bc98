import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { freePort } from '../helpers/free-port.ts';
import { projectRoot, spawnTs } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { http, lockFile, Watched } from './_support.ts';

const example = join(projectRoot, 'examples', 'embed-agent.ts');

function runExample(port: number, dir: string): Watched {
  return new Watched(
    spawnTs(example, [], { env: { ...process.env, PORT: String(port), PORTLOCK_DIR: dir }, timeoutMs: 60_000 }),
  );
}

describe('examples/embed-agent.ts', () => {
  it('serves its routes and the control routes, refuses a second instance, and drains on Ctrl-C', async () => {
    const dir = tempDir();
    const port = await freePort();
    const service = runExample(port, dir);
    await service.stdoutLine(new RegExp(`^Ready on http://localhost:${port} \\(pid \\d+\\)$`));
    assert.ok(existsSync(lockFile(dir, port)));

    const posted = await http({ port, path: '/snapshots', method: 'POST', body: '{"name":"home"}' });
    assert.deepEqual([posted.status, JSON.parse(posted.body)], [201, { queued: 1 }]);
    assert.equal((await http({ port, path: '/snapshots', method: 'POST', body: 'nope' })).status, 400);
    assert.deepEqual(JSON.parse((await http({ port, path: '/snapshots' })).body), [{ name: 'home' }]);
    const health = JSON.parse((await http({ port, path: '/healthcheck' })).body);
    assert.deepEqual([health.name, health.version, health.port], ['percy', '1.0.0', port]);

    const second = runExample(port, dir);
    assert.equal((await second.exited).code, 75);
    assert.match(second.stderr, new RegExp(`^Percy is already running or the port ${port} is in use$`, 'm'));
    assert.match(second.stderr, /Lock file: /);

    service.child.kill('SIGINT');
    assert.deepEqual(await service.exited, { code: 130, signal: null });
    assert.match(service.stderr, /SIGINT received, draining \(press Ctrl-C again to force\)/);
    assert.match(service.stderr, /uploaded 1 snapshot\(s\) before exiting/);
    assert.ok(!existsSync(lockFile(dir, port)));
  });
});
