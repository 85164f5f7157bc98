import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { after, describe, it } from 'node:test';
import { acquireLock, inspectLock } from '../../src/index.ts';
import { cli, place } from './_support.ts';

const skip = process.platform === 'linux' ? undefined : 'names the program from Linux /proc tables';

/** A program that takes no lock, listening on every IPv4 address (this test process, as it happens). */
async function plainListener(): Promise<number> {
  const server = createServer();
  server.listen(0, '0.0.0.0');
  await once(server, 'listening');
  after(() => server.close());
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return address.port;
}

describe('a port used by a program that does not use portlock', { skip }, () => {
  it('run refuses before starting the command, exit 75, naming the program; the lock is released', async () => {
    const port = await plainListener();
    const { dir } = await place();
    const result = await cli([
      'run',
      '-p',
      String(port),
      '--dir',
      dir,
      '--',
      process.execPath,
      '-e',
      'process.exit(9)',
    ]);
    assert.equal(result.code, 75);
    const [first, next] = result.stderr.trimEnd().split('\n');
    assert.match(
      first ?? '',
      new RegExp(
        `^portlock: port ${port} is in use by .*node.* \\(pid ${process.pid}, user root, on 0\\.0\\.0\\.0\\), not through portlock: .* was not started\\.$`,
      ),
    );
    assert.equal(next, `Next step: stop that program first (for example: kill ${process.pid}), or use another port.`);
    assert.equal((await inspectLock({ port, dir })).state, 'free');

    const json = await cli(['run', '-p', String(port), '--dir', dir, '--json', '--', 'true']);
    const { error } = JSON.parse(json.stdout);
    assert.equal(error.code, 'EADDRINUSE');
    assert.deepEqual(error.listeners[0].pid, process.pid);
  });

  it('status says so in one line, exit 5', async () => {
    const port = await plainListener();
    const { dir } = await place();
    const result = await cli(['status', String(port), '--dir', dir]);
    assert.equal(result.code, 5);
    assert.match(
      result.stdout,
      new RegExp(
        `^port ${port}: in use by .*node.* \\(pid ${process.pid}, user root, on 0\\.0\\.0\\.0\\), not through portlock\\n$`,
      ),
    );
    const json = await cli(['status', String(port), '--dir', dir, '--json']);
    assert.equal(json.code, 5);
    const document = JSON.parse(json.stdout);
    assert.equal(document.state, 'free');
    assert.equal(document.listeners[0].pid, process.pid);
  });

  it('agent logs the same and reports EADDRINUSE with the listener; a held lock is ELOCKED, as under run', async () => {
    const port = await plainListener();
    const { dir } = await place();
    const result = await cli(['agent', '-p', String(port), '--dir', dir, '--json']);
    assert.equal(result.code, 75);
    assert.match(
      result.stderr,
      new RegExp(`in use by .*\\(pid ${process.pid}, user root, on 0\\.0\\.0\\.0\\), not through portlock`),
    );
    const { error } = JSON.parse(result.stdout);
    assert.equal(error.code, 'EADDRINUSE');
    assert.match(error.message, /Next step: stop that program first/);
    assert.equal(error.listeners[0].pid, process.pid);

    const { port: held } = await place();
    const lock = await acquireLock({ port: held, dir });
    try {
      const viaAgent = JSON.parse((await cli(['agent', '-p', String(held), '--dir', dir, '--json'])).stdout);
      const viaRun = JSON.parse((await cli(['run', '-p', String(held), '--dir', dir, '--json', '--', 'true'])).stdout);
      assert.equal(viaAgent.error.code, 'ELOCKED');
      assert.equal(viaRun.error.code, 'ELOCKED');
    } finally {
      await lock.release();
    }
  });
});
