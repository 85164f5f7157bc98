import assert from 'node:assert/strict';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { readLines } from '../../src/interlock/lines.ts';

/** Writes `bytes` to `stream` as separate chunks, cut at `cuts`, each read before the next is written. */
async function inChunks(stream: PassThrough, bytes: Buffer, cuts: number[]): Promise<void> {
  let from = 0;
  for (const to of [...cuts, bytes.length]) {
    const read = once(stream, 'data');
    stream.write(bytes.subarray(from, to));
    await read;
    from = to;
  }
}

describe('readLines', () => {
  it('keeps a character whose bytes come in two chunks whole', async () => {
    const stream = new PassThrough();
    const lines: (string | undefined)[] = [];
    readLines(stream, 100, (line) => lines.push(line) > 0);
    const bytes = Buffer.from('{"name":"café ☕"}\n{"n":2}\n');
    const insideE = bytes.indexOf(Buffer.from('é')) + 1;
    const insideCup = bytes.indexOf(Buffer.from('☕')) + 2;
    await inChunks(stream, bytes, [insideE, insideCup]);
    assert.deepEqual(lines, ['{"name":"café ☕"}', '{"n":2}']);
  });

  it('stops at the first line its reader declines', async () => {
    const stream = new PassThrough();
    const lines: (string | undefined)[] = [];
    readLines(stream, 100, (line) => {
      lines.push(line);
      return false;
    });
    await inChunks(stream, Buffer.from('one\ntwo\n'), [4]);
    assert.deepEqual(lines, ['one']);
  });

  it('gives undefined, once, for a line too long, whether or not its newline has come', async () => {
    for (const text of ['x'.repeat(11), `${'x'.repeat(11)}\nshort\n`]) {
      const stream = new PassThrough();
      const lines: (string | undefined)[] = [];
      readLines(stream, 10, (line) => lines.push(line) > 0);
      await inChunks(stream, Buffer.from(text), []);
      assert.deepEqual(lines, [undefined], JSON.stringify(text));
    }
  });
});
