import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { after, describe, it } from 'node:test';
import { portHolders } from '../../src/index.ts';
import { type ListenerSystem, linuxListenerSystem, mayBeInUse } from '../../src/listeners/port-holders.ts';
import { nobodyUnavailable, runTsAsNobody, spawnAsNobody } from '../helpers/as-nobody.ts';
import { freePort } from '../helpers/free-port.ts';
import { fixture, lineMatching } from '../helpers/spawn.ts';

const linux = process.platform === 'linux' ? undefined : 'reads Linux /proc tables';

/** A listener in this process on a port the OS picks; closed when the file ends. */
async function listening(host: string): Promise<{ port: number }> {
  const server = createServer();
  server.listen({ port: 0, host, ipv6Only: host === '::' });
  await once(server, 'listening');
  after(() => server.close());
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return { port: address.port };
}

function ipv6Unavailable(): string | undefined {
  const probe = createServer();
  try {
    probe.listen(0, '::1');
    probe.close();
    return undefined;
  } catch {
    return 'this host has no ::1';
  }
}

describe('portHolders', { skip: linux }, () => {
  for (const host of ['127.0.0.1', '0.0.0.0', '::1', '::']) {
    it(`names this process listening on ${host}`, {
      skip: host.includes(':') ? ipv6Unavailable() : undefined,
    }, async () => {
      const { port } = await listening(host);
      const found = await portHolders(port);
      assert.equal(found.length, 1, JSON.stringify(found));
      const [listener] = found;
      assert.equal(listener?.address, host);
      assert.equal(listener?.family, host.includes(':') ? 6 : 4);
      assert.equal(listener?.pid, process.pid);
      assert.equal(listener?.user, 'root');
      assert.match(listener?.command ?? '', /node/);
      // The quick check before reading the tables sees it too, whatever address it is on.
      assert.equal(await mayBeInUse(port), true);
    });
  }

  it('finds nothing on a port nobody listens on, and rejects a port out of range', async () => {
    const port = await freePort();
    assert.deepEqual(await portHolders(port), []);
    assert.equal(await mayBeInUse(port), false);
    await assert.rejects(portHolders(0), RangeError);
    await assert.rejects(portHolders(70000), RangeError);
  });

  it("names another user's listener, and says what that user cannot see", { skip: nobodyUnavailable() }, async () => {
    const child = spawnAsNobody(
      process.execPath,
      [
        '-e',
        "const s = require('net').createServer().listen(0, '127.0.0.1', () => console.log(s.address().port)); setTimeout(() => {}, 60000)",
      ],
      { stdio: ['ignore', 'pipe', 'inherit'], timeoutMs: 30_000 },
    );
    const port = Number(await lineMatching(child, /^\d+$/));
    const seen = await portHolders(port);
    assert.deepEqual(
      seen.map(({ pid, user, address }) => ({ pid, user, address })),
      [{ pid: child.pid, user: 'nobody', address: '127.0.0.1' }],
    );
    assert.match(seen[0]?.command ?? '', /node -e/);
    child.kill();

    // The other way round: nobody cannot read root's descriptors, so the program is hidden but its user is not.
    const { port: rootPort } = await listening('127.0.0.1');
    const asNobody = await runTsAsNobody(fixture('port-holders.ts'), [String(rootPort)]);
    assert.equal(asNobody.code, 0, asNobody.stderr);
    assert.deepEqual(JSON.parse(asNobody.stdout), [{ address: '127.0.0.1', port: rootPort, family: 4, user: 'root' }]);
  });

  it('where there are no socket tables, says the port is in use without naming the program', async () => {
    const { port } = await listening('0.0.0.0');
    const noTables: ListenerSystem = { ...linuxListenerSystem, read: () => undefined };
    assert.deepEqual(await portHolders(port, noTables), [
      { address: '0.0.0.0', port, family: 4, pid: undefined, command: undefined, user: undefined },
    ]);
  });
});
