import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { acquireLock } from '../../src/index.ts';
import { ask } from '../../src/interlock/client.ts';
import { interlockName } from '../../src/interlock/name.ts';
import { freePort } from '../helpers/free-port.ts';
import { finished, fixture, spawnTracked } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

/** A holder that hangs: a plain Unix socket server on `name` that takes every connection and never answers. */
async function hungHolder(name: string) {
  const server = createServer();
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen({ path: name, exclusive: true });
  await once(server, 'listening');
  return {
    /** Resolves when the next question reaches the holder. */
    reached: () => once(server, 'connection'),
    close() {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

// Longer than any timer can wait: held to the longest one, not run at once as Node runs such a timer.
const NO_DEADLINE = 2 ** 31;

describe('a question to a holder that never answers', () => {
  it('ends at once when the caller aborts, not at its deadline', async () => {
    const name = join(tempDir(), 'hung.sock');
    const hung = await hungHolder(name);
    try {
      const controller = new AbortController();
      const reached = hung.reached();
      const answer = ask(name, { op: 'who' }, NO_DEADLINE, controller.signal);
      await reached;
      controller.abort(new Error('given up'));
      assert.deepEqual(await answer, { kind: 'silent', reason: 'the question was abandoned' });
      // A signal aborted before asking: not asked at all.
      assert.deepEqual(await ask(name, { op: 'who' }, NO_DEADLINE, controller.signal), {
        kind: 'silent',
        reason: 'the question was abandoned',
      });
    } finally {
      hung.close();
    }
  });

  it('ends at its deadline without a signal', async () => {
    const name = join(tempDir(), 'hung.sock');
    const hung = await hungHolder(name);
    try {
      assert.deepEqual(await ask(name, { op: 'who' }, 30), {
        kind: 'silent',
        reason: 'it did not answer within 30 ms',
      });
    } finally {
      hung.close();
    }
  });

  it("ends an acquire asking it at once, with the signal's reason", {
    skip: process.platform !== 'linux' && "a port's abstract name is Linux's",
  }, async () => {
    const dir = tempDir();
    const port = await freePort();
    const hung = await hungHolder(interlockName({ kind: 'port', port }, dir) ?? '');
    try {
      const controller = new AbortController();
      const reached = hung.reached();
      const acquiring = acquireLock({ port, dir, signal: controller.signal });
      await reached;
      const reason = new Error('given up');
      controller.abort(reason);
      await assert.rejects(acquiring, (error) => error === reason);
    } finally {
      hung.close();
    }
  });
});

describe('a wait with a deadline and a caller signal', () => {
  it('ends at its deadline while the garbage collector runs (the timer is not collected before it fires)', {
    skip: process.platform !== 'linux' && 'needs the abstract socket',
    timeout: 30_000,
  }, async () => {
    const port = await freePort();
    const child = spawnTracked(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', fixture('wait-under-gc.ts'), String(port), tempDir()],
      { stdio: ['ignore', 'pipe', 'inherit'], timeoutMs: 20_000 },
    );
    const done = await finished(child);
    const line = done.stdout.trim();
    assert.deepEqual(JSON.parse(line), { outcome: 'timeout' });
  });
});
