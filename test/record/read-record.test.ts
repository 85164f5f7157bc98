import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { lstatSync, mkdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { judgeRecordFile } from '../../src/identity/judge.ts';
import { systemProbe } from '../../src/identity/probe.ts';
import { holdsExactly, readRecordFile } from '../../src/record/read-record.ts';
import { MAX_RECORD_BYTES } from '../../src/record/record.ts';
import { bytesReadSoFar } from '../helpers/disk.ts';
import { isLockPathError } from '../helpers/lock-target.ts';
import { recordFor, writeRecord } from '../helpers/records.ts';
import { finished, fixture, spawnTs } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const isLinux = process.platform === 'linux';
const TEN_MB = 10 * 1024 * 1024;

function assertPathError(path: string, problem: string): void {
  assert.throws(
    () => readRecordFile(path),
    (error) => isLockPathError(error, path, problem),
  );
}

describe('readRecordFile', () => {
  it('returns undefined when there is no file', () => {
    assert.equal(readRecordFile(join(tempDir(), 'agent-1.lock')), undefined);
  });

  it('reads a record with its size and mtime, and takes the token as its identity', () => {
    const path = join(tempDir(), 'agent-1.lock');
    const record = recordFor(process.pid, { port: 1 });
    writeRecord(path, record);
    const file = readRecordFile(path);
    assert.deepEqual(file?.record, record);
    assert.equal(file?.identity, record.token);
    assert.equal(file?.size, statSync(path).size);
    assert.equal(file?.mtimeMs, Math.floor(statSync(path).mtimeMs));
  });

  it('gives a token-less file a digest identity that is stable until the file changes', () => {
    const path = join(tempDir(), 'agent-1.lock');
    writeRecord(path, { pid: 912, port: 1, startedAt: '2025-06-01T10:00:00.000Z' });
    const first = readRecordFile(path);
    assert.match(first?.identity ?? '', /^[0-9a-f]{32}$/);
    assert.equal(readRecordFile(path)?.identity, first?.identity, 'reading again gives the same identity');
    writeRecord(path, { pid: 913, port: 1, startedAt: '2025-06-01T10:00:00.000Z' });
    assert.notEqual(readRecordFile(path)?.identity, first?.identity, 'new content, new identity');
  });

  it('tells apart two garbage files with the same content (their inodes differ)', () => {
    const dir = tempDir();
    writeRecord(join(dir, 'a.lock'), 'garbage');
    writeRecord(join(dir, 'b.lock'), 'garbage');
    const a = readRecordFile(join(dir, 'a.lock'));
    assert.equal(a?.record, undefined);
    assert.equal(a?.size, 7);
    assert.notEqual(a?.identity, readRecordFile(join(dir, 'b.lock'))?.identity);
  });

  it('refuses a symlink at the path, whatever it points to, and leaves the target untouched', () => {
    const dir = tempDir();
    const target = join(dir, 'target.json');
    const record = recordFor(process.pid, { port: 1 });
    writeRecord(target, record, 60_000);
    const before = statSync(target);
    symlinkSync(target, join(dir, 'agent-1.lock'));
    assertPathError(join(dir, 'agent-1.lock'), 'symlink');
    symlinkSync(join(dir, 'nowhere.json'), join(dir, 'agent-2.lock'));
    assertPathError(join(dir, 'agent-2.lock'), 'symlink');
    const afterwards = statSync(target);
    assert.equal(readFileSync(target, 'utf8'), JSON.stringify(record));
    assert.equal(afterwards.mtimeMs, before.mtimeMs);
    assert.equal(afterwards.atimeMs, before.atimeMs, 'the target was not even read');
  });

  it('refuses a directory at the path', () => {
    const path = join(tempDir(), 'agent-1.lock');
    mkdirSync(path);
    assertPathError(path, 'directory');
  });

  it('refuses a FIFO at the path without waiting for a writer', { skip: !isLinux && 'mkfifo is POSIX' }, async () => {
    const path = join(tempDir(), 'agent-1.lock');
    const made = spawnSync('mkfifo', ['-m', '600', path], { timeout: 10_000 });
    assert.equal(made.status, 0, `mkfifo failed: ${made.stderr}`);
    // In a child with a deadline, so that a blocking open fails the test instead of hanging it.
    const child = spawnTs(fixture('read-record.ts'), [path], { timeoutMs: 60_000 });
    const result = await finished(child);
    assert.equal(result.signal, null, 'the read finished on its own');
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout).error?.problem, 'special');
    assert.equal(JSON.parse(result.stdout).error?.name, 'LockPathError');
    assertPathError(path, 'special');
    assert.ok(lstatSync(path).isFIFO(), 'the FIFO is left in place');
  });

  it('refuses a Unix socket at the path', { skip: process.platform === 'win32' }, async () => {
    const path = join(tempDir(), 'agent-1.lock');
    const server = createServer();
    server.listen(path);
    await once(server, 'listening');
    try {
      assertPathError(path, 'special');
    } finally {
      server.close();
    }
  });

  it('reads no more than the record limit of a 10 MB garbage file, and reports its size', () => {
    const path = join(tempDir(), 'agent-1.lock');
    writeFileSync(path, Buffer.alloc(TEN_MB, 'x'));
    const readBefore = isLinux ? bytesReadSoFar() : 0;
    const file = readRecordFile(path);
    if (isLinux) {
      const read = bytesReadSoFar() - readBefore;
      assert.ok(read <= MAX_RECORD_BYTES + 16 * 1024, `read ${read} bytes of a ${TEN_MB}-byte file`);
    }
    assert.equal(file?.record, undefined);
    assert.equal(file?.size, TEN_MB);
    assert.match(file?.identity ?? '', /^[0-9a-f]{32}$/);
    assert.equal(readRecordFile(path)?.identity, file?.identity);
  });

  it('leaves a valid record padded past the limit unread, as garbage', () => {
    const path = join(tempDir(), 'agent-1.lock');
    const record = JSON.stringify(recordFor(process.pid, { port: 1 }));
    writeFileSync(path, record + ' '.repeat(MAX_RECORD_BYTES));
    assert.equal(readRecordFile(path)?.record, undefined);
    writeFileSync(path, record + ' '.repeat(MAX_RECORD_BYTES - record.length));
    assert.equal(readRecordFile(path)?.record?.pid, process.pid, 'exactly at the limit is still read');
  });

  it('hands a huge garbage file to the judge: unknown while fresh, stale once old', () => {
    const path = join(tempDir(), 'agent-1.lock');
    writeFileSync(path, Buffer.alloc(TEN_MB, 'x'));
    const context = { probe: systemProbe, ownsToken: () => false };
    const fresh = readRecordFile(path);
    assert.ok(fresh !== undefined);
    const young = judgeRecordFile(fresh, context);
    assert.equal(young.state, 'unknown');
    assert.ok((young.retryAfterMs ?? 0) > 0);
    const then = new Date(Date.now() - 60_000);
    utimesSync(path, then, then);
    const old = readRecordFile(path);
    assert.ok(old !== undefined);
    const verdict = judgeRecordFile(old, context);
    assert.equal(verdict.state, 'stale');
    assert.equal(verdict.certainty, 'certain');
    assert.match(verdict.reason, new RegExp(`${TEN_MB} bytes, too large`));
  });
});

describe('holdsExactly', () => {
  const bytes = Buffer.from('{"pid":1,"startedAt":"2026-11-24T09:12:03.000Z","token":"a"}\n');

  it('is true only for a file with exactly those bytes', () => {
    const dir = tempDir();
    const path = join(dir, 'agent-1.lock');
    writeFileSync(path, bytes);
    assert.equal(holdsExactly(path, bytes), true);
    // The same length, one byte changed; one byte more; one byte less.
    writeFileSync(path, Buffer.from(bytes.toString().replace('"a"', '"b"')));
    assert.equal(holdsExactly(path, bytes), false);
    writeFileSync(path, Buffer.concat([bytes, Buffer.from(' ')]));
    assert.equal(holdsExactly(path, bytes), false);
    writeFileSync(path, bytes.subarray(0, -1));
    assert.equal(holdsExactly(path, bytes), false);
  });

  it('is false where there is no file, a symlink to one, a directory or a FIFO', {
    skip: !isLinux && 'mkfifo is POSIX',
  }, () => {
    const dir = tempDir();
    const target = join(dir, 'target');
    writeFileSync(target, bytes);
    assert.equal(holdsExactly(join(dir, 'absent.lock'), bytes), false);
    symlinkSync(target, join(dir, 'link.lock'));
    assert.equal(holdsExactly(join(dir, 'link.lock'), bytes), false);
    mkdirSync(join(dir, 'dir.lock'));
    assert.equal(holdsExactly(join(dir, 'dir.lock'), bytes), false);
    assert.equal(spawnSync('mkfifo', [join(dir, 'fifo.lock')]).status, 0);
    assert.equal(holdsExactly(join(dir, 'fifo.lock'), bytes), false);
  });
});
