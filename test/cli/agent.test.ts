import assert from 'node:assert/strict';
import { get } from 'node:http';
import { describe, it } from 'node:test';
import { inspectLock } from '../../src/index.ts';
import { cli, exited, jsonLine, place, spawnCli } from './_support.ts';

function health(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    get(`${url}/healthcheck`, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) }));
    }).on('error', reject);
  });
}

type Listening = { name: string; pid: number; port: number; url: string; lockPath: string };

describe('portlock agent', () => {
  it('serves the control endpoints under the lock, refuses a second agent, and stops on request', async () => {
    const { dir } = await place();
    let announced: (value: Listening) => void = () => {};
    const listening = new Promise<Listening>((resolve) => {
      announced = resolve;
    });
    const running = cli(['agent', '--port', '0', '--dir', dir, '--name', 'percy', '--json'], {
      onStdout: (text) => {
        if (text.endsWith('}\n')) announced(JSON.parse(text));
      },
    });
    const { port, url, pid } = await listening;
    assert.equal(pid, process.pid);
    const { status, body } = await health(url);
    assert.equal(status, 200);
    assert.equal(body.name, 'percy');
    assert.equal(body.port, port);

    const second = await cli(['agent', '--port', String(port), '--dir', dir, '--name', 'percy']);
    assert.equal(second.code, 75);
    assert.match(second.stderr, /percy is already running on port/);
    assert.match(second.stderr, /^portlock: Percy is already running or the port \d+ is in use$/m);

    assert.equal((await cli(['status', String(port), '--dir', dir])).code, 0);
    const stopped = await cli(['stop', String(port), '--dir', dir]);
    assert.equal(stopped.code, 0, stopped.stderr);
    const result = await running;
    assert.equal(result.code, 0);
    assert.match(result.stderr, /\[percy\] listening on http:\/\/localhost:\d+/);
    assert.match(result.stderr, /\[percy\] stopped/);
    assert.equal((await inspectLock({ port, dir })).state, 'free');
  });

  it('serves $PORT when --port is not given, as under portlock run', async () => {
    const { dir, port } = await place();
    let announced: (value: Listening) => void = () => {};
    const listening = new Promise<Listening>((resolve) => {
      announced = resolve;
    });
    const running = cli(['agent', '--dir', dir, '--json'], {
      env: { PORT: String(port) },
      onStdout: (text) => {
        if (text.endsWith('}\n')) announced(JSON.parse(text));
      },
    });
    assert.equal((await listening).port, port);
    assert.equal((await cli(['stop', String(port), '--dir', dir])).code, 0);
    const result = await running;
    assert.equal(result.code, 0, result.stderr);
    const bad = await cli(['agent', '--dir', dir], { env: { PORT: 'http' } });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /agent: \$PORT must be a port number/);
  });

  it('drains and exits 130 on SIGINT, as a real process', async () => {
    const { dir, port } = await place();
    const agent = spawnCli(['agent', '--port', String(port), '--dir', dir, '--json']);
    const ready = await jsonLine<Listening>(agent, (line) => 'url' in line);
    assert.equal(ready.port, port);
    agent.kill('SIGINT');
    assert.deepEqual(await exited(agent), { code: 130, signal: null });
    assert.equal((await inspectLock({ port, dir })).state, 'free');
  });
});
