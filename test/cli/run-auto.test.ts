import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { acquirePort } from '../../src/index.ts';
import { hashToPort } from '../../src/port/prefer.ts';
import { portRange } from '../helpers/port-range.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { cli } from './_support.ts';

const node = process.execPath;

/** A loopback server each command connects to, telling its PORT; it lives until told to end. */
async function collector(): Promise<{ port: number; reported: (count: number) => Promise<[Socket, string][]> }> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  after(() => server.close());
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  const seen: [Socket, string][] = [];
  let wake = () => {};
  server.on('connection', (socket) => {
    socket.once('data', (data) => {
      seen.push([socket, data.toString()]);
      wake();
    });
  });
  return {
    port: address.port,
    async reported(count) {
      while (seen.length < count) await new Promise<void>((resolve) => (wake = resolve));
      return seen;
    },
  };
}

/** `node -e` that tells the collector its PORT and exits when answered. */
function reporter(collectorPort: number): string[] {
  const script = `const s = require('net').connect(${collectorPort}, '127.0.0.1', () => s.write(process.env.PORT)); s.on('data', () => process.exit(0));`;
  return [node, '-e', script];
}

describe('portlock run --port auto', () => {
  it('chooses a port, gives it to the command as PORT and names it on stderr', async () => {
    const range = await portRange(4);
    const dir = tempDir();
    const script = `process.exit(process.env.PORT === '${range[0]}' ? 0 : 1)`;
    const base = ['run', '--port', 'auto', '--range', `${range[0]}-${range[1]}`, '--dir', dir];
    const result = await cli([...base, '--prefer', String(range[0]), '--', node, '-e', script]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, `portlock: port ${range[0]} for ${node} -e ${script}\n`);
    const json = await cli([...base, '--prefer', String(range[0]), '--json', '--', node, '-e', script]);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), {
      port: range[0],
      path: join(dir, `agent-${range[0]}.lock`),
      command: [node, '-e', script],
    });
  });

  it('gives parallel runs with one --prefer text distinct ports, the preferred one to one of them', async () => {
    const range = await portRange(8);
    const dir = tempDir();
    const { port, reported } = await collector();
    const prefer = '/home/dev/projects/shop';
    const args = ['run', '--port', 'auto', '--prefer', prefer, '--range', `${range[0]}-${range[1]}`, '--dir', dir];
    const runs = Array.from({ length: 3 }, () => cli([...args, '--', ...reporter(port)]));
    const seen = await reported(3);
    const ports = seen.map(([, text]) => Number(text));
    assert.equal(new Set(ports).size, 3, ports.join());
    assert.ok(ports.includes(hashToPort(prefer, range)), ports.join());
    for (const [socket] of seen) socket.end('done');
    for (const result of await Promise.all(runs)) assert.equal(result.code, 0, result.stderr);
  });

  it('exits 75 (or --conflict-exit-code) naming the range when every port of it is held', async () => {
    const range = await portRange(1);
    const dir = tempDir();
    const holder = await acquirePort({ dir, range });
    try {
      const args = ['run', '--port', 'auto', '--range', `${range[0]}-${range[1]}`, '--dir', dir];
      const refused = await cli([...args, '--', node, '-e', '0']);
      assert.equal(refused.code, 75);
      assert.match(
        refused.stderr,
        new RegExp(`^portlock: No free port in ${range[0]}-${range[1]}: 1 held through portlock`),
      );
      const json = await cli([...args, '--json', '--conflict-exit-code', '9', '--', node, '-e', '0']);
      assert.equal(json.code, 9);
      const { error } = JSON.parse(json.stdout) as { error: Record<string, unknown> };
      assert.equal(error.code, 'EPORTRANGE');
      assert.deepEqual([error.range, error.heldByPortlock, error.heldByOthers], [range, 1, 0]);
    } finally {
      await holder.release();
    }
  });

  it('refuses bad --prefer and --range before anything runs, exit 2', async () => {
    const dir = join(tempDir(), 'never-made');
    const cases: [string[], RegExp][] = [
      [['--port', '8080', '--prefer', 'x'], /--prefer and --range go with --port auto/],
      [['--port', '8080', '--range', '20000-20010'], /--prefer and --range go with --port auto/],
      [['--port', 'auto', '--range', '20000'], /--range must be <low>-<high>/],
      [['--port', 'auto', '--range', '20010-20000'], /--range \[20010, 20000\] is empty/],
      [['--port', 'auto', '--range', '0-10'], /--range must be/],
      [
        ['--port', 'auto', '--range', '20000-20010', '--prefer', '20011'],
        /--prefer must be an integer port inside range 20000-20010/,
      ],
      [['--port', 'automatic'], /--port must be a port number/],
    ];
    for (const [args, message] of cases) {
      const result = await cli(['run', ...args, '--dir', dir, '--', node, '-e', 'process.exit(9)']);
      assert.equal(result.code, 2, args.join(' '));
      assert.match(result.stderr, message);
    }
  });
});
