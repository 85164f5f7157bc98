import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { type Agent, type AgentOptions, createAgent } from '../../src/index.ts';
import { freePort } from '../helpers/free-port.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { http, lockFile, memoryLogger } from './_support.ts';

async function running(options: AgentOptions = {}) {
  const dir = tempDir();
  const port = await freePort();
  const { logger, lines, logged } = memoryLogger();
  const agent = createAgent({
    name: 'percy',
    version: '1.2.3',
    dir,
    port,
    logger,
    handler: (req, res) => res.end(`app ${req.method} ${req.url}\n`),
    ...options,
  });
  await agent.start();
  const token = JSON.parse(readFileSync(lockFile(dir, port), 'utf8')).token as string;
  return { agent, dir, port, token, lines, logged };
}

describe('control routes', () => {
  let agent: Agent;
  let port: number;
  let token: string;
  let lines: string[];
  before(async () => {
    ({ agent, port, token, lines } = await running());
  });
  after(() => agent.stop());

  it('takes a request target no URL can be made of in its stride', async () => {
    const odd = await http({ port, path: '//[' });
    assert.equal(odd.status, 200);
    assert.equal((await http({ port, path: '/healthcheck' })).status, 200);
  });

  it('GET /healthcheck reports name, version, pid, port, start time and instance, never the token', async () => {
    const response = await http({ port, path: '/healthcheck' });
    assert.equal(response.status, 200);
    assert.equal(response.headers['cache-control'], 'no-store');
    assert.ok(!response.body.includes(token));
    const report = JSON.parse(response.body);
    assert.deepEqual(Object.keys(report).sort(), [
      'instanceId',
      'name',
      'pid',
      'port',
      'readyState',
      'startedAt',
      'version',
    ]);
    assert.equal(report.name, 'percy');
    assert.equal(report.version, '1.2.3');
    assert.equal(report.pid, process.pid);
    assert.equal(report.port, port);
    assert.equal(report.readyState, 'ready');
    assert.ok(Date.parse(report.startedAt) <= Date.now());
    assert.match(report.instanceId, /^[0-9a-f-]{36}$/);
  });

  it('answers same-origin requests and requests through any loopback name', async () => {
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, `LOCALHOST:${port}`]) {
      assert.equal((await http({ port, path: '/healthcheck', headers: { host } })).status, 200, host);
    }
    const origin = `http://localhost:${port}`;
    assert.equal((await http({ port, path: '/healthcheck', headers: { origin } })).status, 200);
  });

  it('refuses cross-origin and DNS-rebinding requests, even to /healthcheck', async () => {
    const refused: Record<string, string>[] = [
      { origin: 'https://evil.example' },
      { origin: `http://localhost:${port + 1}` },
      { origin: 'null' },
      { host: `evil.example:${port}` },
      { host: `localhost.evil.example:${port}` },
      { host: `localhost:${port + 1}` },
      { 'sec-fetch-site': 'cross-site' },
    ];
    for (const headers of refused) {
      const response = await http({ port, path: '/healthcheck', headers });
      assert.equal(response.status, 403, JSON.stringify(headers));
      assert.ok(!('access-control-allow-origin' in response.headers));
    }
  });

  it('refuses POST /stop that is cross-origin, has a wrong Host, or lacks the right token', async () => {
    const authorization = `Bearer ${token}`;
    const attempts: [Record<string, string>, number][] = [
      [{ authorization, origin: 'https://evil.example' }, 403],
      [{ authorization, host: `attacker.example:${port}` }, 403],
      [{}, 401],
      [{ authorization: 'Bearer not-the-token' }, 403],
      [{ authorization: `Basic ${token}` }, 401],
    ];
    for (const [headers, status] of attempts) {
      const response = await http({ port, path: '/stop', method: 'POST', headers });
      assert.equal(response.status, status, JSON.stringify(headers));
    }
    assert.equal((await http({ port, path: '/stop', headers: { authorization } })).status, 405);
    assert.equal(agent.readyState, 'ready');
    assert.match(lines.join('\n'), /refused POST \/stop: cross-origin requests are refused/);
  });

  it('serves the application beside the control routes, cross-origin included', async () => {
    const response = await http({
      port,
      path: '/snapshot?x=1',
      method: 'POST',
      headers: { origin: 'https://site.example' },
    });
    assert.equal(response.body, 'app POST /snapshot?x=1\n');
  });
});

describe('POST /stop with the token', () => {
  it('stops the agent and releases the lock', async () => {
    const { agent, dir, port, token, logged } = await running();
    const response = await http({
      port,
      path: '/stop',
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, host: `localhost:${port}` },
    });
    assert.equal(response.status, 202);
    assert.deepEqual(JSON.parse(response.body), { stopping: true });
    await logged(/^info: stopped$/);
    assert.equal(agent.readyState, 'stopped');
    assert.ok(!existsSync(lockFile(dir, port)));
  });
});

describe('control route mount point', () => {
  it('mounts the control routes under a prefix, leaving the root to the application', async () => {
    const { agent, port } = await running({ controlPrefix: '/percy/' });
    assert.equal(JSON.parse((await http({ port, path: '/percy/healthcheck' })).body).name, 'percy');
    assert.equal((await http({ port, path: '/healthcheck' })).body, 'app GET /healthcheck\n');
    assert.equal((await http({ port, path: '/stop', method: 'POST' })).body, 'app POST /stop\n');
    await agent.stop();
  });

  it('serves no control routes with controlPrefix false', async () => {
    const { agent, port } = await running({ controlPrefix: false });
    assert.equal((await http({ port, path: '/healthcheck' })).body, 'app GET /healthcheck\n');
    await agent.stop();
  });
});

const fail = (message: string): never => {
  throw new Error(message);
};

describe('application errors', () => {
  it('answers 500 for a handler that throws or rejects, logs it redacted, and keeps serving', async () => {
    const { agent, port, lines } = await running({
      handler: (req) =>
        req.url === '/throw' ? fail('broken with Authorization: Bearer abc123') : Promise.reject(new Error('rejected')),
    });
    assert.equal((await http({ port, path: '/throw' })).status, 500);
    assert.equal((await http({ port, path: '/reject' })).status, 500);
    const logged = lines.join('\n');
    assert.match(logged, /GET \/throw failed: Error: broken with Authorization: \[REDACTED\]/);
    assert.match(logged, /GET \/reject failed: Error: rejected/);
    assert.ok(!logged.includes('abc123'));
    assert.equal(agent.readyState, 'ready');
    await agent.stop();
  });
});

describe('a failing application route', () => {
  it('is logged without the secrets its URL may carry', async () => {
    const { agent, port, token, lines } = await running({
      handler: () => {
        throw new Error('boom');
      },
    });
    try {
      const response = await http({ port, path: `/upload?access=${token}` });
      assert.equal(response.status, 500);
      const logged = lines.join('\n');
      assert.match(logged, /GET \/upload\?access=.* failed: .*boom/);
      assert.ok(!logged.includes(token), 'the lock token never reaches the log');
    } finally {
      await agent.stop();
    }
  });
});
