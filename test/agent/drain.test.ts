import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Agent as HttpAgent, type IncomingMessage, request } from 'node:http';
import { describe, it } from 'node:test';
import { stopLock } from '../../src/index.ts';
import { monotonicMs } from '../../src/monotonic.ts';
import { freePort } from '../helpers/free-port.ts';
import { fixture, lineMatching, spawnTs } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const SNAPSHOT = 'x'.repeat(16 * 1024);

interface Sent {
  id: string;
  /** When the request was wholly handed to the OS ('finish'), in ms on the host's monotonic clock (the agent's too), if it was. */
  sentAt?: number;
  status?: number;
  error?: string;
}

/** One POST on the lane's keep-alive connection; resolves when it has an answer or an error. */
function post(agent: HttpAgent, port: number, sent: Sent): Promise<void> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/snapshots', method: 'POST', agent });
    req.once('finish', () => {
      sent.sentAt = monotonicMs();
    });
    req.once('response', (res: IncomingMessage) => {
      res.resume();
      res.once('end', () => {
        sent.status = res.statusCode;
        resolve();
      });
      res.once('error', (error: NodeJS.ErrnoException) => {
        sent.error = error.code ?? error.message;
        resolve();
      });
    });
    req.once('error', (error: NodeJS.ErrnoException) => {
      sent.error = error.code ?? error.message;
      resolve();
    });
    // A snapshot of some size: the server, not the client, is the busier side, as under real load.
    req.end(`${sent.id}\n${SNAPSHOT}`);
  });
}

describe('a graceful stop under load', () => {
  it('answers every request sent before it began, and handled none it did not answer', async () => {
    const dir = tempDir();
    const port = await freePort();
    const server = spawnTs(fixture('snapshot-agent.ts'), [JSON.stringify({ port, dir, drainTimeout: 20_000 })], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    server.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    server.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const exited = once(server, 'close');
    await lineMatching(server, /"ready":true/);

    const all: Sent[] = [];
    let answered = 0;
    let halfway: () => void = () => {};
    const loaded = new Promise<void>((resolve) => {
      halfway = resolve;
    });
    // 50 clients, one keep-alive connection each, each sending its next request as soon as it
    // has the answer to the last, until the server turns it away.
    const lanes = Array.from({ length: 50 }, async (_, lane) => {
      const agent = new HttpAgent({ keepAlive: true, maxSockets: 1 });
      for (let n = 0; ; n++) {
        const sent: Sent = { id: `${lane}-${n}` };
        all.push(sent);
        await post(agent, port, sent);
        if (sent.status !== 201) break;
        if (++answered === 2000) halfway();
      }
      agent.destroy();
    });
    await loaded;
    const result = await stopLock({ port, dir, timeout: 20_000 });
    await Promise.all(lanes);
    await exited;

    assert.equal(result.outcome, 'stopped', result.reason);
    const events = stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { got?: string; stopping?: number });
    const handled = new Set(events.map((event) => event.got));
    const stoppedAt = events.find((event) => event.stopping !== undefined)?.stopping ?? 0;
    const before = all.filter((sent) => sent.sentAt !== undefined && sent.sentAt < stoppedAt);
    const lost = before.filter((sent) => sent.status !== 201);
    assert.deepEqual(lost, [], `${lost.length} of ${before.length} requests sent before the stop began got no answer`);
    const unanswered = all.filter((sent) => sent.status === undefined);
    const handledUnanswered = unanswered.filter((sent) => handled.has(sent.id));
    assert.deepEqual(handledUnanswered, [], 'a request the server handled got no answer');
    assert.ok(unanswered.length > 0 && unanswered.length <= 50, `${unanswered.length} requests got no answer`);
    assert.doesNotMatch(stderr, /drain timeout/, 'the drain finished before its timeout');
  });
});
