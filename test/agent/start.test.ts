import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import { type AgentOptions, AlreadyRunningError, createAgent, LockHeldError } from '../../src/index.ts';
import { freePort } from '../helpers/free-port.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { accepts, http, lockFile, memoryLogger } from './_support.ts';

async function ipv6Loopback(): Promise<boolean> {
  const server = createServer();
  try {
    server.listen(0, '::1');
    await once(server, 'listening');
    return true;
  } catch {
    return false;
  } finally {
    server.close();
  }
}

async function setup(options: AgentOptions = {}) {
  const dir = tempDir();
  const port = options.port ?? (await freePort());
  const { logger, lines } = memoryLogger();
  const agent = createAgent({ name: 'percy', dir, port, logger, ...options });
  return { agent, dir, port, lines };
}

describe('agent start', () => {
  it('takes the lock before the setup hooks run and before it listens', async () => {
    const order: string[] = [];
    const { agent, dir, port } = await setup({
      setup: [
        async ({ lock, port: given }) => {
          assert.equal(given, port);
          assert.ok(existsSync(lockFile(dir, port)), 'the record exists when setup runs');
          assert.equal(lock.path, lockFile(dir, port));
          assert.equal(await accepts(port), false, 'nothing listens yet');
          order.push('first');
        },
        () => {
          order.push('second');
        },
      ],
    });
    assert.equal(agent.readyState, 'idle');
    await agent.start();
    assert.deepEqual(order, ['first', 'second']);
    assert.equal(agent.readyState, 'ready');
    assert.equal(agent.address?.port, port);
    assert.equal(agent.address?.url, `http://localhost:${port}`);
    await agent.stop();
  });

  it('leaves no record and runs earlier teardowns when a setup hook fails', async () => {
    const exitListeners = process.listenerCount('exit');
    const torn: string[] = [];
    const { agent, dir, port } = await setup({
      setup: [
        () => () => {
          torn.push('first');
        },
        () => {
          throw new Error('no database');
        },
      ],
    });
    await assert.rejects(agent.start(), /no database/);
    assert.equal(agent.readyState, 'stopped');
    assert.deepEqual(torn, ['first']);
    assert.ok(!existsSync(lockFile(dir, port)));
    assert.equal(await accepts(port), false);
    assert.equal(process.listenerCount('exit'), exitListeners);
  });

  it('refuses a held lock with the legacy sentence and logs the holder in full', async () => {
    const first = await setup();
    await first.agent.start();
    const second = await setup({ port: first.port, dir: first.dir });
    // How fast a refusal comes is measured by the benchmarks (bench/refusal.ts), not asserted here.
    const error = await second.agent.start().then(
      () => assert.fail('the second start succeeded'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof AlreadyRunningError);
    assert.equal(error.message, `Percy is already running or the port ${first.port} is in use`);
    assert.equal(error.code, 'EALREADYRUNNING');
    assert.equal(error.lockPath, lockFile(first.dir, first.port));
    assert.equal(error.holder?.pid, process.pid);
    assert.ok(error.cause instanceof LockHeldError);
    const logged = second.lines.join('\n');
    assert.ok(logged.includes(`pid ${process.pid}`), logged);
    assert.ok(logged.includes(lockFile(first.dir, first.port)), logged);
    assert.match(logged, /Next step/);
    assert.equal(second.agent.readyState, 'stopped');
    assert.equal(first.agent.readyState, 'ready');
    await first.agent.stop();
  });

  it('takes a replacement for the legacy sentence', async () => {
    const first = await setup();
    await first.agent.start();
    const asString = await setup({ port: first.port, dir: first.dir, alreadyRunningMessage: 'busy' });
    await assert.rejects(asString.agent.start(), { name: 'AlreadyRunningError', message: 'busy' });
    const asFunction = await setup({
      port: first.port,
      dir: first.dir,
      alreadyRunningMessage: ({ name, port }) => `${name}@${port} taken`,
    });
    await assert.rejects(asFunction.agent.start(), { message: `percy@${first.port} taken` });
    await first.agent.stop();
  });

  it('turns EADDRINUSE from another program into the same sentence and leaves no record', async () => {
    const squatter = createServer();
    squatter.listen(0, '127.0.0.1');
    await once(squatter, 'listening');
    const port = (squatter.address() as { port: number }).port;
    try {
      const { agent, dir, lines } = await setup({ port });
      const error = await agent.start().then(
        () => assert.fail('started on a port in use'),
        (e: unknown) => e,
      );
      assert.ok(error instanceof AlreadyRunningError);
      assert.equal(error.message, `Percy is already running or the port ${port} is in use`);
      assert.equal((error.cause as NodeJS.ErrnoException).code, 'EADDRINUSE');
      assert.equal(error.code, 'EADDRINUSE');
      assert.equal(error.listeners?.[0]?.pid, process.pid);
      assert.match(
        lines.join('\n'),
        new RegExp(
          `port ${port}: in use by .*\\(pid ${process.pid}, user \\S+, on 127\\.0\\.0\\.1\\), not through portlock`,
        ),
      );
      assert.ok(!existsSync(lockFile(dir, port)));
    } finally {
      squatter.close();
    }
  });

  it('with port 0, listens first and locks the port it was given', async () => {
    let hookPort = -1;
    const { agent, dir } = await setup({
      port: 0,
      setup: async ({ port }) => {
        hookPort = port;
        assert.equal(await accepts(port), true, 'already listening while setup runs');
      },
    });
    await agent.start();
    const port = agent.address?.port ?? 0;
    assert.ok(port > 0);
    assert.equal(hookPort, port);
    const record = JSON.parse(readFileSync(lockFile(dir, port), 'utf8'));
    assert.equal(record.port, port);
    assert.equal(record.pid, process.pid);
    await agent.stop();
    assert.ok(!existsSync(lockFile(dir, port)));
  });

  it('answers 503 on application routes while a port-0 start is still setting up', async () => {
    let finishSetup = () => {};
    let setupRunning = (_port: number) => {};
    const running = new Promise<number>((resolve) => {
      setupRunning = resolve;
    });
    const { agent } = await setup({
      port: 0,
      handler: (_req, res) => res.end('app\n'),
      setup: ({ port }) =>
        new Promise<void>((resolve) => {
          finishSetup = resolve;
          setupRunning(port);
        }),
    });
    const started = agent.start();
    const port = await running;
    try {
      assert.equal(agent.readyState, 'starting');
      assert.equal(agent.address, undefined);
      assert.equal((await http({ port })).status, 503);
      assert.equal(JSON.parse((await http({ port, path: '/healthcheck' })).body).readyState, 'starting');
    } finally {
      finishSetup();
      await started;
    }
    assert.equal((await http({ port })).body, 'app\n');
    await agent.stop();
  });

  it('listens on every loopback address localhost may mean', async () => {
    const { agent, port } = await setup({ handler: (_req, res) => res.end('ok\n') });
    await agent.start();
    const hosts = agent.address?.hosts ?? [];
    assert.ok(hosts.includes('127.0.0.1'));
    assert.equal((await http({ port, host: '127.0.0.1' })).body, 'ok\n');
    if (await ipv6Loopback()) {
      assert.ok(hosts.includes('::1'));
      assert.equal((await http({ port, host: '::1' })).body, 'ok\n');
    }
    assert.equal((await http({ port, host: 'localhost' })).body, 'ok\n');
    assert.ok(
      hosts.every((host) => host === '::1' || host.startsWith('127.')),
      `bound ${hosts}`,
    );
    await agent.stop();
    assert.equal(await accepts(port), false);
  });

  it("serves the application's own server, and gives its listeners back on stop", async () => {
    const server = createHttpServer((_req, res) => res.end('mine\n'));
    const { agent, port } = await setup({ server });
    await agent.start();
    assert.equal((await http({ port })).body, 'mine\n');
    assert.equal((await http({ port, path: '/healthcheck' })).status, 200);
    await agent.stop();
    assert.equal(server.listening, false);
    assert.equal(server.listenerCount('request'), 1);
  });

  it('shares one start between concurrent calls, and starts again after a stop', async () => {
    let setups = 0;
    const { agent, dir, port } = await setup({
      setup: () => {
        setups++;
      },
    });
    const [a, b] = [agent.start(), agent.start()];
    assert.equal(a, b);
    await a;
    assert.equal(setups, 1);
    await agent.stop();
    await agent.start();
    assert.equal(setups, 2);
    assert.ok(existsSync(lockFile(dir, port)));
    await agent.stop();
  });

  it('logs a lost lock when the record alone holds it and the application passed no onLost', async () => {
    const dir = tempDir();
    const port = await freePort();
    const { logger, logged } = memoryLogger();
    const agent = createAgent({ name: 'percy', dir, port, logger, interlock: 'off', recheckInterval: 20 });
    await agent.start();
    try {
      unlinkSync(lockFile(dir, port));
      await logged(/^error: The lock for port \d+ was lost: its record at .* was removed/);
      assert.equal(agent.readyState, 'ready', 'it goes on serving: the port is still its own');
    } finally {
      await agent.stop();
    }
  });

  it('rejects bad options when created', () => {
    assert.throws(() => createAgent({ port: -1 }), RangeError);
    assert.throws(() => createAgent({ port: 1.5 }), RangeError);
    assert.throws(() => createAgent({ drainTimeout: -1 }), RangeError);
    // A timer past 2^31-1 ms fires at once in Node: it would cut every drain short.
    assert.throws(() => createAgent({ drainTimeout: Number.POSITIVE_INFINITY }), RangeError);
    assert.throws(() => createAgent({ name: '../x' }), RangeError);
    assert.throws(() => createAgent({ handler: () => {}, server: createHttpServer() }), TypeError);
  });
});
