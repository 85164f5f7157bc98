import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { build } from 'esbuild';
import type { PortOptions } from '../../src/index.ts';
import { hashToPort } from '../../src/port/prefer.ts';
import { portRange } from '../helpers/port-range.ts';
import { fixture, spawnTracked } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const WORKERS = 32;
const ROUNDS = 50;
// Without an interlock only the record protocol is exercised, which test/lock/race.test.ts covers at length.
const ROUNDS_WITHOUT_INTERLOCK = 25;
const REPLY_MS = 30_000;

type Reply = { type: string; port?: number; bindError?: string; error?: string };

/** A worker process spoken to over IPC; its replies queue up until the test takes them. */
class Worker {
  readonly child: ChildProcess;
  readonly #replies: Reply[] = [];
  #wake: (() => void) | undefined;
  #exit: string | undefined;
  #stderr = '';

  constructor(script: string) {
    this.child = spawnTracked(process.execPath, [script], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      timeoutMs: 180_000,
    });
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.#stderr = (this.#stderr + chunk).slice(-2000);
    });
    this.child.on('message', (reply: Reply) => {
      this.#replies.push(reply);
      this.#wake?.();
    });
    this.child.once('exit', (code, signal) => {
      this.#exit = `worker ${this.child.pid} exited (${code ?? signal}) ${this.#stderr}`;
      this.#wake?.();
    });
  }

  async next(type: string): Promise<Reply> {
    const deadline = AbortSignal.timeout(REPLY_MS);
    for (;;) {
      const reply = this.#replies.shift();
      if (reply !== undefined) {
        assert.equal(reply.type, type, `worker ${this.child.pid}: ${JSON.stringify(reply)}`);
        return reply;
      }
      if (this.#exit !== undefined) throw new Error(this.#exit);
      if (deadline.aborted) throw new Error(`worker ${this.child.pid}: no '${type}' within ${REPLY_MS} ms`);
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        deadline.addEventListener('abort', () => resolve(), { once: true });
      });
      this.#wake = undefined;
    }
  }

  send(message: object): void {
    this.child.send(message);
  }
}

let workers: Worker[] = [];

before(async () => {
  // The workers run a bundle of the fixture: 32 starts of plain Node cost a fraction of 32 starts
  // of the TypeScript loader, and the code they run is the same source.
  const outfile = join(tempDir(), 'port-worker.mjs');
  await build({
    entryPoints: [fixture('port-worker.ts')],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20.19',
    logLevel: 'warning',
  });
  workers = Array.from({ length: WORKERS }, () => new Worker(outfile));
  await Promise.all(workers.map((worker) => worker.next('ready')));
});

after(() => {
  for (const worker of workers) worker.child.disconnect();
});

interface Outcome {
  duplicates: number;
  bindErrors: string[];
  failures: string[];
  ports: number[][];
}

/** Releases every worker at one barrier (one message each, sent together), ROUNDS times. */
async function race(options: PortOptions, rounds = ROUNDS): Promise<Outcome> {
  const outcome: Outcome = { duplicates: 0, bindErrors: [], failures: [], ports: [] };
  for (let round = 0; round < rounds; round++) {
    for (const worker of workers) worker.send({ type: 'go', options });
    const replies = await Promise.all(workers.map((worker) => worker.next('got')));
    const ports = replies.flatMap((reply) => (reply.port === undefined ? [] : [reply.port]));
    outcome.duplicates += ports.length - new Set(ports).size;
    outcome.bindErrors.push(
      ...replies.flatMap((reply) => (reply.bindError ? [`${reply.port}: ${reply.bindError}`] : [])),
    );
    outcome.failures.push(...replies.flatMap((reply) => (reply.error ? [reply.error] : [])));
    outcome.ports.push(ports);
    for (const worker of workers) worker.send({ type: 'release' });
    await Promise.all(workers.map((worker) => worker.next('released')));
  }
  return outcome;
}

function assertClean(outcome: Outcome, range: [number, number]): void {
  assert.deepEqual(outcome.failures, []);
  assert.deepEqual(outcome.bindErrors, [], 'a port handed out could not be bound: EADDRINUSE');
  assert.equal(outcome.duplicates, 0, 'two live holders got the same port');
  for (const ports of outcome.ports) {
    assert.equal(ports.length, WORKERS);
    for (const port of ports) assert.ok(port >= range[0] && port <= range[1], `${port} outside ${range}`);
  }
}

describe(`acquirePort, ${WORKERS} processes at one barrier, ${ROUNDS} rounds`, () => {
  it('never hands one port to two of them, and every port can be bound', async () => {
    const range = await portRange(64);
    assertClean(await race({ dir: tempDir(), range }), range);
  });

  it('the same with listen: true, the caller taking over the listening server', async () => {
    const range = await portRange(64);
    assertClean(await race({ dir: tempDir(), range, listen: true }), range);
  });

  it('the same with one prefer string for all: distinct ports, and one of them gets the preferred one', async () => {
    const range = await portRange(64);
    const prefer = '/home/dev/projects/shop-frontend';
    const outcome = await race({ dir: tempDir(), range, prefer });
    assertClean(outcome, range);
    const preferred = hashToPort(prefer, range);
    for (const ports of outcome.ports) assert.equal(ports.filter((port) => port === preferred).length, 1);
  });

  it(`the same with interlock: 'off', the record alone deciding (${ROUNDS_WITHOUT_INTERLOCK} rounds)`, async () => {
    const range = await portRange(64);
    assertClean(await race({ dir: tempDir(), range, interlock: 'off' }, ROUNDS_WITHOUT_INTERLOCK), range);
  });
});
