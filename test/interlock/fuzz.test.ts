import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { once } from 'node:events';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import { ask } from '../../src/interlock/client.ts';
import { interlockName } from '../../src/interlock/name.ts';
import { MAX_REQUEST_BYTES } from '../../src/interlock/protocol.ts';
import { MAX_WAITERS } from '../../src/interlock/server.ts';
import { freePort } from '../helpers/free-port.ts';
import { startHolder } from '../helpers/holder.ts';
import { tempDir } from '../helpers/temp-dir.ts';

/** Sends raw bytes and resolves with whatever came back once the holder closes the connection. */
function send(name: string, chunks: (string | Buffer)[], { gapMs = 0, end = false } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ path: name });
    let received = '';
    const guard = setTimeout(() => {
      socket.destroy();
      reject(new Error('the holder kept a bad connection open'));
    }, 10_000);
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(guard);
      resolve(received);
    });
    socket.on('connect', async () => {
      for (const chunk of chunks) {
        if (socket.destroyed) return;
        socket.write(chunk);
        if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
      }
      if (end) socket.end();
    });
  });
}

/** A `wait` request: `first` settles with the first reply (or '' if dropped), `closed` on close. */
function openWaiter(name: string): { first: Promise<string>; closed: Promise<void> } {
  const socket = connect({ path: name });
  socket.on('error', () => {});
  socket.on('connect', () => socket.write('{"v":1,"op":"wait"}\n'));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const first = new Promise<string>((resolve) => {
    socket.once('data', (chunk) => resolve(chunk.toString('utf8')));
    socket.once('close', () => resolve(''));
  });
  return { first, closed };
}

function mutate(line: string): string {
  const at = randomInt(line.length + 1);
  switch (randomInt(4)) {
    case 0:
      return line.slice(0, at);
    case 1:
      return line.slice(0, at) + String.fromCharCode(randomInt(256)) + line.slice(at);
    case 2:
      return line.slice(0, at) + line.slice(at + 1 + randomInt(4));
    default:
      return `${line.slice(0, at)}${line.slice(0, at)}`;
  }
}

describe('the interlock holder under bad input', { skip: process.platform !== 'linux' }, () => {
  it('survives random, truncated, oversized, slow and concurrent requests, and still answers', async () => {
    const port = await freePort();
    const holder = await startHolder({ port, dir: tempDir() }, 120_000);
    const name = interlockName({ kind: 'port', port }, '') ?? '';
    const stillAnswers = async (after: string) => {
      const asked = await ask(name, { op: 'who' });
      assert.ok(asked.kind === 'answered' && asked.reply.ok, `no answer after ${after}: ${JSON.stringify(asked)}`);
    };
    const valid = ['{"v":1,"op":"who"}', '{"v":1,"op":"wait"}', '{"v":1,"op":"stop","token":"00"}'];

    for (let round = 0; round < 200; round++) {
      const input = round % 2 === 0 ? randomBytes(randomInt(1, 600)) : `${mutate(valid[round % valid.length] ?? '')}\n`;
      const reply = await send(name, [input], { end: true }).catch(() => '');
      if (reply !== '' && !reply.includes('"waiting":true')) assert.match(reply, /^\{"v":1,"ok":/);
      if (round % 20 === 0) await stillAnswers(`input ${JSON.stringify(input.toString('latin1'))}`);
    }

    const hostile = await send(name, ['{"v":1,"op":{"toString":1}}\n']);
    assert.match(hostile, /EBADREQUEST/);
    await stillAnswers('a request whose op cannot be turned into a string');

    const oversized = await send(name, ['x'.repeat(MAX_REQUEST_BYTES + 10)]);
    assert.match(oversized, /ETOOLARGE/);
    await stillAnswers('an oversized request');

    // A byte every 150 ms never completes a request before the holder's deadline cuts it off.
    const trickled = await send(name, '{"v":1,"op":"who"}'.split(''), { gapMs: 150 });
    assert.equal(trickled, '');
    await stillAnswers('a trickled request');

    const silent = await send(name, []);
    assert.equal(silent, '');
    await stillAnswers('a silent connection');

    await Promise.all(Array.from({ length: 300 }, () => send(name, []).catch(() => '')));
    await stillAnswers('300 idle connections at once');

    // Every waiter is either admitted (and held open) or turned away before who is asked.
    const waiters = Array.from({ length: MAX_WAITERS + 20 }, () => openWaiter(name));
    const firstReplies = await Promise.all(waiters.map((waiter) => waiter.first));
    assert.equal(firstReplies.filter((reply) => reply.includes('"waiting":true')).length, MAX_WAITERS);
    assert.ok(
      firstReplies.some((reply) => reply.includes('EBUSY')),
      'waiters beyond the cap are turned away',
    );
    await stillAnswers('a full queue of waiters');
    assert.equal(holder.child.exitCode, null, 'the holder is still running');
    holder.child.stdin?.end();
    await once(holder.child, 'exit');
    // The release ends every admitted waiter's connection.
    await Promise.all(waiters.map((waiter) => waiter.closed));
  });
});
