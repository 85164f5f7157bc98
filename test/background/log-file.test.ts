import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { BoundedLog } from '../../src/background/log-file.ts';
import { parseReadyCheck } from '../../src/background/readiness.ts';
import { lastLines } from '../../src/background/tail.ts';
import { tempDir } from '../helpers/temp-dir.ts';

test('a log is rotated once when the next write would pass its bound, and never grows past it', () => {
  const path = join(tempDir(), 'server.log');
  // A file left readable by others is made private when the log opens it.
  writeFileSync(path, 'old\n', { mode: 0o644 });
  const log = new BoundedLog(path, 100);
  for (let i = 0; i < 50; i++) log.write(`line ${String(i).padStart(2, '0')}\n`);
  log.write(`${'x'.repeat(300)}\n`);
  log.write('last\n');
  log.close();
  for (const file of [path, `${path}.1`]) {
    assert.ok(statSync(file).size <= 100);
    assert.equal(statSync(file).mode & 0o777, 0o600);
  }
  assert.equal(readFileSync(path, 'utf8'), 'last\n');
  assert.deepEqual(lastLines(path, 2), [`${'x'.repeat(99)}`, 'last']);
});

test('--ready checks: tcp, an http(s) URL, log:<text>; anything else is refused', () => {
  assert.deepEqual(parseReadyCheck('tcp'), { kind: 'tcp' });
  assert.deepEqual(parseReadyCheck('http://localhost:3000/health'), {
    kind: 'http',
    url: 'http://localhost:3000/health',
  });
  assert.deepEqual(parseReadyCheck('log:Listening on'), { kind: 'log', text: 'Listening on' });
  for (const bad of ['', 'log:', 'ftp://x', 'localhost:3000', 'http://']) assert.equal(parseReadyCheck(bad), undefined);
});
