import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { Agent as HttpAgent, type IncomingMessage, request, type ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { type AgentOptions, createAgent, type LockHandle } from '../../src/index.ts';
import { freePort } from '../helpers/free-port.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { accepts, http, lockFile, memoryLogger } from './_support.ts';

/** An agent whose `/slow` requests wait until the test ends them. */
async function slowAgent(options: AgentOptions = {}) {
  const dir = tempDir();
  const port = await freePort();
  const { logger, lines } = memoryLogger();
  const waiting: ServerResponse[] = [];
  let arrived = () => {};
  let lock: LockHandle | undefined;
  const agent = createAgent({
    name: 'percy',
    dir,
    port,
    logger,
    handler: (req: IncomingMessage, res: ServerResponse) => {
      if (req.url !== '/slow') return void res.end('quick\n');
      res.write('started\n');
      waiting.push(res);
      arrived();
    },
    setup: ({ lock: held }) => {
      lock = held;
    },
    ...options,
  });
  await agent.start();
  /** Starts a /slow request; resolves, once the handler has it, with its body to come. */
  const slow = async () => {
    const inHandler = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    const response = http({ port, path: '/slow' }).then(
      (result) => result.body,
      (error: Error) => `cut: ${error.message}`,
    );
    await inHandler;
    return { body: response };
  };
  const finishAll = () => {
    for (const res of waiting.splice(0)) res.end('finished\n');
  };
  return { agent, dir, port, lines, slow, finishAll, lock: () => lock };
}

describe('agent stop', () => {
  it('stops accepting, lets in-flight requests finish, then releases the lock', async () => {
    const { agent, dir, port, slow, finishAll } = await slowAgent({ drainTimeout: 30_000 });
    const { body: response } = await slow();
    let stopped = false;
    const stopping = agent.stop().then(() => {
      stopped = true;
    });
    assert.equal(agent.readyState, 'stopping');
    assert.equal(await accepts(port), false, 'no new connections once stopping');
    assert.equal(stopped, false);
    assert.ok(existsSync(lockFile(dir, port)), 'the record stays while a request is in flight');
    finishAll();
    assert.equal(await response, 'started\nfinished\n');
    await stopping;
    assert.equal(agent.readyState, 'stopped');
    assert.ok(!existsSync(lockFile(dir, port)));
  });

  it('closes idle keep-alive connections at once', async () => {
    // A drain that waited on the idle connection would never end: the test's own timeout would tell.
    const { agent, port } = await slowAgent({ drainTimeout: 2 ** 31 - 1 });
    const keepAlive = new HttpAgent({ keepAlive: true });
    const req = request({ port, host: '127.0.0.1', agent: keepAlive });
    req.end();
    const [res] = (await once(req, 'response')) as [IncomingMessage];
    res.resume();
    await once(res, 'end');
    await agent.stop();
    keepAlive.destroy();
  });

  it('cuts requests still running after drainTimeout', async () => {
    const { agent, dir, port, slow, lines } = await slowAgent({ drainTimeout: 100 });
    const { body: response } = await slow();
    await agent.stop();
    assert.match(await response, /^cut: /);
    assert.match(lines.join('\n'), /drain timeout \(100 ms\): closed 1 connection\(s\) with 1 request\(s\) in flight/);
    assert.ok(!existsSync(lockFile(dir, port)));
  });

  it('skips the drain with force, and a forced stop cuts a graceful one short', async () => {
    const forced = await slowAgent({ drainTimeout: 30_000 });
    const { body: cut } = await forced.slow();
    await forced.agent.stop({ force: true });
    assert.match(await cut, /^cut: /);

    const escalated = await slowAgent({ drainTimeout: 30_000 });
    const { body: response } = await escalated.slow();
    const graceful = escalated.agent.stop();
    const force = escalated.agent.stop({ force: true });
    assert.equal(force, graceful);
    await graceful;
    assert.match(await response, /^cut: /);
    assert.ok(!existsSync(lockFile(escalated.dir, escalated.port)));
  });

  it('shares one stop between concurrent calls, and is idempotent', async () => {
    let teardowns = 0;
    const { agent } = await slowAgent({
      setup: () => () => {
        teardowns++;
      },
    });
    const [a, b] = [agent.stop(), agent.stop()];
    assert.equal(a, b);
    await Promise.all([a, b]);
    await agent.stop();
    assert.equal(teardowns, 1);
    assert.equal(agent.readyState, 'stopped');
    await createAgent({ port: 0, dir: tempDir() }).stop();
  });

  it('releases the lock only after the server has closed, and teardowns run in between', async () => {
    const seen: string[] = [];
    const { agent, dir, port } = await slowAgent({
      setup: [
        () => async () => {
          seen.push(`first: record ${existsSync(lockFile(dir, port))}, listening ${await accepts(port)}`);
        },
        () => () => {
          seen.push('second');
        },
      ],
    });
    await agent.stop();
    assert.deepEqual(seen, ['second', 'first: record true, listening false']);
    assert.ok(!existsSync(lockFile(dir, port)));
  });

  it('registers a synchronous release for exit while running, and removes it on stop', async () => {
    const before = process.listenerCount('exit');
    const { agent } = await slowAgent();
    assert.equal(process.listenerCount('exit'), before + 1);
    await agent.stop();
    assert.equal(process.listenerCount('exit'), before);
  });

  it("stops when the lock's stop request arrives", async () => {
    const { agent, dir, port, lock } = await slowAgent();
    const handle = lock();
    assert.equal(typeof handle?.onStopRequest, 'function');
    await handle?.onStopRequest?.();
    assert.equal(agent.readyState, 'stopped');
    assert.ok(!existsSync(lockFile(dir, port)));
    assert.equal(handle?.onStopRequest, undefined);
  });

  it('aborts a start that is still running its setup hooks', async () => {
    const dir = tempDir();
    const port = await freePort();
    let inSetup = () => {};
    const setupRunning = new Promise<void>((resolve) => {
      inSetup = resolve;
    });
    const agent = createAgent({
      dir,
      port,
      logger: memoryLogger().logger,
      setup: ({ signal }) => {
        inSetup();
        return new Promise<void>((_resolve, reject) => {
          signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        });
      },
    });
    const started = agent.start();
    await setupRunning;
    assert.ok(existsSync(lockFile(dir, port)));
    await agent.stop();
    await assert.rejects(started, { name: 'AbortError' });
    assert.equal(agent.readyState, 'stopped');
    assert.ok(!existsSync(lockFile(dir, port)));
  });
});
