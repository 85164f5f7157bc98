import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  acquireLock,
  acquirePort,
  inspectLock,
  type PortHandle,
  type PortOptions,
  PortRangeExhaustedError,
} from '../../src/index.ts';
import { hashToPort } from '../../src/port/prefer.ts';
import { portRange } from '../helpers/port-range.ts';
import { finished, fixture, lineMatching, spawnTracked, spawnTs } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const linuxOnly = { skip: process.platform !== 'linux' && 'the kernel interlock and unshare are Linux only' };

/** A plain server, of a program that knows nothing of portlock, on `port` at `host`. */
async function occupy(port: number, host = '127.0.0.1'): Promise<Server> {
  const server = createServer();
  server.listen({ port, host });
  await once(server, 'listening');
  return server;
}

async function withPort<T>(options: PortOptions, use: (handle: PortHandle) => Promise<T>): Promise<T> {
  const handle = await acquirePort(options);
  try {
    return await use(handle);
  } finally {
    await handle.release();
  }
}

describe('acquirePort: bad input is refused before anything is bound or written', () => {
  const bad: [string, Record<string, unknown>, typeof TypeError | typeof RangeError, RegExp][] = [
    [
      'a range below 1',
      { range: [0, 10] },
      RangeError,
      /range must be \[low, high\] with integer ports from 1 to 65535/,
    ],
    ['a range above 65535', { range: [65000, 70000] }, RangeError, /from 1 to 65535, got \[65000, 70000\]/],
    ['a reversed range', { range: [30010, 30000] }, RangeError, /range \[30010, 30000\] is empty/],
    ['an empty range', { range: [] }, TypeError, /range must be \[low, high\]/],
    ['a range of fractions', { range: [20000.5, 20010] }, RangeError, /integer ports/],
    ['a range as text', { range: '20000-20010' }, TypeError, /range must be \[low, high\]/],
    [
      'prefer above the range',
      { range: [20000, 20010], prefer: 20011 },
      RangeError,
      /inside range 20000-20010, got 20011/,
    ],
    ['prefer below the range', { range: [20000, 20010], prefer: 80 }, RangeError, /inside range 20000-20010, got 80/],
    ['prefer empty', { prefer: '' }, RangeError, /non-empty string/],
    [
      'prefer neither number nor text',
      { prefer: { port: 1 } },
      TypeError,
      /prefer must be a port number or a non-empty string/,
    ],
    ['a host name for host', { host: 'localhost' }, TypeError, /host must be an IP address .* got 'localhost'/],
    ['a bad address in the list', { host: ['127.0.0.1', '300.1.1.1'] }, TypeError, /got '300.1.1.1'/],
    ['no host at all', { host: [] }, RangeError, /at least one IP address/],
    ['a port', { port: 8080 }, TypeError, /acquirePort chooses the port/],
    ['a key', { key: 'build' }, TypeError, /acquirePort chooses the port/],
    ['listen as text', { listen: 'yes' }, TypeError, /listen must be true or false/],
    ['a bad name', { name: '../etc' }, RangeError, /name must be/],
    ['a negative wait', { wait: -1 }, RangeError, /wait must be 0 or more/],
  ];
  for (const [what, options, type, message] of bad) {
    it(`refuses ${what}`, async () => {
      const dir = join(tempDir(), 'never-made');
      await assert.rejects(acquirePort({ dir, ...options } as PortOptions), (error: Error) => {
        assert.ok(error instanceof type, `${error.name}: ${error.message}`);
        assert.match(error.message, message);
        return true;
      });
      // The lock comes before the bind check: no lock directory means nothing was bound either.
      assert.equal(existsSync(dir), false);
    });
  }

  it('refuses a call without an options object', async () => {
    await assert.rejects(acquirePort(null as unknown as PortOptions), /acquirePort takes an options object/);
  });
});

describe('acquirePort', () => {
  it('returns a port in the range, with its lock held, as a LockHandle', async () => {
    const range = await portRange(8);
    const dir = tempDir();
    await withPort({ dir, range }, async (handle) => {
      assert.ok(handle.port >= range[0] && handle.port <= range[1]);
      assert.equal(handle.record.port, handle.port);
      assert.equal(handle.path, join(dir, `agent-${handle.port}.lock`));
      assert.equal((await inspectLock({ port: handle.port, dir })).state, 'held');
      assert.equal(handle.server, undefined);
      await occupy(handle.port).then((server) => server.close());
    });
  });

  it('gives distinct ports to many calls at once in one process', async () => {
    const range = await portRange(16);
    const dir = tempDir();
    const handles = await Promise.all(Array.from({ length: 16 }, () => acquirePort({ dir, range })));
    assert.equal(new Set(handles.map((handle) => handle.port)).size, 16);
    await assert.rejects(acquirePort({ dir, range }), PortRangeExhaustedError);
    await Promise.all(handles.map((handle) => handle.release()));
  });

  it('prefer: a port number is tried first; a string gives the same port on every run and machine', async () => {
    // Fixed values: the hash is part of the contract, the same everywhere, forever.
    assert.equal(hashToPort('my-service', [20000, 32767]), 29505);
    assert.equal(hashToPort('/home/dev/projects/shop-frontend', [20000, 32767]), 31064);
    const range = await portRange(32);
    const dir = tempDir();
    const preferred = hashToPort('my-service', range);
    for (let run = 0; run < 2; run++) {
      await withPort({ dir, range, prefer: 'my-service' }, async (handle) => assert.equal(handle.port, preferred));
    }
    await withPort({ dir, range, prefer: range[1] }, async (handle) => assert.equal(handle.port, range[1]));
    // Taken: another port, not an error.
    await withPort({ dir, range, prefer: 'my-service' }, async (first) => {
      await withPort({ dir, range, prefer: 'my-service' }, async (second) => assert.notEqual(second.port, first.port));
    });
  });

  it('skips a port another program has bound, on any of the addresses', async () => {
    const range = await portRange(3);
    const [low] = range;
    const dir = tempDir();
    const v4 = await occupy(low);
    try {
      await withPort({ dir, range: [low, low + 1], prefer: low }, async (handle) => assert.equal(handle.port, low + 1));
    } finally {
      v4.close();
    }
    let v6: Server | undefined;
    try {
      v6 = await occupy(low + 2, '::1');
    } catch {
      // No IPv6 on this host: the first case stands for both.
    }
    if (v6 !== undefined) {
      await assert.rejects(acquirePort({ dir, range: [low + 2, low + 2] }), { code: 'EPORTRANGE', heldByOthers: 1 });
      // Checked only where asked: on 127.0.0.1 alone the port is free.
      await withPort({ dir, range: [low + 2, low + 2], host: '127.0.0.1' }, async (handle) =>
        assert.equal(handle.port, low + 2),
      );
      v6.close();
    }
    assert.equal((await inspectLock({ port: low, dir })).state, 'free', 'the lock of a skipped port is let go');
  });

  it('skips a port whose lock path holds something odd, and reports it as held', async () => {
    const range = await portRange(2);
    const [low] = range;
    const dir = tempDir();
    mkdirSync(join(dir, `agent-${low}.lock`));
    await withPort({ dir, range, prefer: low }, async (handle) => assert.equal(handle.port, low + 1));
    await assert.rejects(acquirePort({ dir, range: [low, low] }), { code: 'EPORTRANGE', heldByPortlock: 1 });
  });

  it('rejects with PortRangeExhaustedError naming the range and who holds its ports', async () => {
    const range = await portRange(3);
    const [low, high] = range;
    const dir = tempDir();
    const lock = await acquireLock({ port: low, dir });
    const other = await occupy(low + 1);
    const port = await acquirePort({ dir, range: [high, high] });
    try {
      await assert.rejects(acquirePort({ dir, range }), (error: PortRangeExhaustedError) => {
        assert.equal(error.name, 'PortRangeExhaustedError');
        assert.equal(error.code, 'EPORTRANGE');
        assert.deepEqual(error.range, range);
        assert.equal(error.heldByPortlock, 2);
        assert.equal(error.heldByOthers, 1);
        assert.equal(
          error.message.split('\n')[0],
          `No free port in ${low}-${high}: 2 held through portlock, 1 in use by other programs.`,
        );
        assert.match(error.message, /\nNext step: /);
        return true;
      });
    } finally {
      await Promise.all([lock.release(), port.release()]);
      other.close();
    }
  });

  it('with wait, looks again until a port frees up or the signal aborts', async () => {
    const range = await portRange(1);
    const dir = tempDir();
    const holder = await acquirePort({ dir, range });
    const signal = AbortSignal.timeout(100);
    await assert.rejects(acquirePort({ dir, range, wait: Number.POSITIVE_INFINITY, signal }), { name: 'TimeoutError' });
    const waiting = acquirePort({ dir, range, wait: 30_000 });
    await holder.release();
    const got = await waiting;
    assert.equal(got.port, range[0]);
    await got.release();
  });

  it('listen: true hands over a server already listening, which a caller serves on', async () => {
    const range = await portRange(4);
    const handle = await acquirePort({ dir: tempDir(), range, listen: true });
    try {
      assert.deepEqual(handle.server.address(), { address: '127.0.0.1', family: 'IPv4', port: handle.port });
      const http = createHttpServer((_request, response) => response.end('served'));
      http.listen(handle.server);
      await once(http, 'listening');
      const response = await fetch(`http://127.0.0.1:${handle.port}/`);
      assert.equal(await response.text(), 'served');
      await new Promise((resolve) => http.close(resolve));
    } finally {
      await handle.release();
    }
  });

  it("works with interlock: 'off', the record alone deciding", async () => {
    const range = await portRange(2);
    const dir = tempDir();
    await withPort({ dir, range, interlock: 'off' }, async (first) => {
      assert.equal(first.interlocked, false);
      await withPort({ dir, range, interlock: 'off' }, async (second) => assert.notEqual(second.port, first.port));
      // A caller with the interlock sees the record too.
      await assert.rejects(acquirePort({ dir, range: [first.port, first.port] }), { heldByPortlock: 1 });
    });
  });

  it('frees a dead holder’s port for the next caller at once, with and without the interlock', linuxOnly, async () => {
    const [low] = await portRange(2);
    const dir = tempDir();
    const options = [
      { dir, range: [low, low] },
      { dir, range: [low + 1, low + 1], interlock: 'off' },
    ];
    const holder = spawnTs(fixture('port-once.ts'), [JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const line = JSON.parse(await lineMatching(holder, /^\{/)) as { results: unknown[] };
    assert.deepEqual(line.results, [{ port: low }, { port: low + 1 }]);
    await assert.rejects(acquirePort({ dir, range: [low, low] }), { heldByPortlock: 1 });
    holder.kill('SIGKILL');
    await once(holder, 'exit');
    await withPort({ dir, range: [low, low] }, async (handle) => assert.equal(handle.port, low));
    await withPort({ dir, range: [low + 1, low + 1], interlock: 'off' }, async (handle) =>
      assert.equal(handle.port, low + 1),
    );
  });
});

describe('acquirePort on a host without IPv6', () => {
  const unshare = spawnSync('unshare', ['--net', 'true']);
  const skip =
    process.platform !== 'linux' || unshare.status !== 0
      ? `unshare --net is refused here: ${unshare.stderr?.toString().trim() || unshare.error?.message}`
      : false;

  it('skips the addresses of the missing family, and refuses a list of nothing but those', { skip }, async () => {
    const range = await portRange(2);
    // A network namespace of its own, with loopback up and IPv6 turned off in it.
    const script = [
      'ip link set lo up',
      'sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 net.ipv6.conf.lo.disable_ipv6=1',
      `exec "${process.execPath}" --import tsx "${fixture('port-once.ts')}" '${JSON.stringify([
        { dir: tempDir(), range },
        { dir: tempDir(), range, host: '::1' },
      ])}'`,
    ].join(' && ');
    const child = spawnTracked('unshare', ['--net', 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    const done = finished(child);
    const line = JSON.parse(await lineMatching(child, /^\{/)) as {
      results: [{ port?: number }, { error?: { name: string; message: string } }];
    };
    child.kill('SIGKILL');
    const { stderr } = await done;
    const [port, none] = line.results;
    assert.ok(
      port.port !== undefined && port.port >= range[0] && port.port <= range[1],
      `${JSON.stringify(line)} ${stderr}`,
    );
    assert.equal(none.error?.name, 'RangeError');
    assert.match(none.error?.message ?? '', /none of ::1 is an address of this host/);
  });
});
