import assert from 'node:assert/strict';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import { describe, it } from 'node:test';
import { publishExclusive, replaceAtomically, TEMP_SUFFIX, tempPathFor } from '../../src/record/publish.ts';
import { readRecordFile } from '../../src/record/read-record.ts';
import { serializeRecord } from '../../src/record/record.ts';
import { snapshot } from '../helpers/disk.ts';
import { recordFor } from '../helpers/records.ts';
import { finished, fixture, lineMatching, spawnTs } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const posix = process.platform !== 'win32';
const bytes = serializeRecord(recordFor(process.pid, { port: 5338 }));

describe('tempPathFor', () => {
  it('names a temp file after the final path and this pid, recognisably', () => {
    const temp = tempPathFor('/locks/agent-5338.lock');
    assert.ok(temp.startsWith('/locks/agent-5338.lock.'));
    assert.equal(TEMP_SUFFIX.exec(temp)?.[1], String(process.pid));
    assert.notEqual(tempPathFor('/locks/a.lock'), tempPathFor('/locks/a.lock'));
    assert.equal(TEMP_SUFFIX.exec(tempPathFor('/locks/a.lock', 77))?.[1], '77');
  });
});

describe('publishExclusive', () => {
  it('creates the file with the whole content and mode 0600, leaving no temp file', () => {
    const dir = tempDir();
    const path = join(dir, 'agent-5338.lock');
    assert.equal(publishExclusive(path, bytes), true);
    assert.deepEqual(readFileSync(path), bytes);
    if (posix) assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(path).nlink, 1, 'the temp name is gone');
    assert.deepEqual(readdirSync(dir), ['agent-5338.lock']);
  });

  it('keeps mode 0600 whatever the umask allows', { skip: !posix }, () => {
    const dir = tempDir();
    const previous = process.umask(0);
    try {
      assert.equal(publishExclusive(join(dir, 'a.lock'), bytes), true);
    } finally {
      process.umask(previous);
    }
    assert.equal(statSync(join(dir, 'a.lock')).mode & 0o777, 0o600);
  });

  it('returns false when the path exists and leaves it exactly as it was', () => {
    const dir = tempDir();
    const path = join(dir, 'agent-5338.lock');
    writeFileSync(path, 'someone else', { mode: 0o600 });
    const before = snapshot(dir, { self: false });
    assert.equal(publishExclusive(path, bytes), false);
    assert.deepEqual(snapshot(dir, { self: false }), before);
    assert.equal(readFileSync(path, 'utf8'), 'someone else');
  });

  it('returns false for a symlink at the path and writes nothing through it', () => {
    const dir = tempDir();
    const outside = tempDir();
    const target = join(outside, 'target');
    writeFileSync(target, 'precious');
    symlinkSync(target, join(dir, 'a.lock'));
    symlinkSync(join(outside, 'created'), join(dir, 'b.lock'));
    const before = { dir: snapshot(dir, { self: false }), outside: snapshot(outside) };
    assert.equal(publishExclusive(join(dir, 'a.lock'), bytes), false);
    assert.equal(publishExclusive(join(dir, 'b.lock'), bytes), false);
    assert.deepEqual({ dir: snapshot(dir, { self: false }), outside: snapshot(outside) }, before);
    assert.equal(existsSync(join(outside, 'created')), false, 'a dangling link is not followed to create its target');
  });

  it('returns false for a directory at the path', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'a.lock'));
    assert.equal(publishExclusive(join(dir, 'a.lock'), bytes), false);
    assert.deepEqual(readdirSync(dir), ['a.lock']);
  });

  it('throws when the directory is missing, leaving nothing', () => {
    const dir = join(tempDir(), 'missing');
    assert.throws(() => publishExclusive(join(dir, 'a.lock'), bytes), { code: 'ENOENT' });
    assert.equal(existsSync(dir), false);
  });

  it('never shows a reader a half-written record, with a writer in another process', async () => {
    const dir = tempDir();
    const path = join(dir, 'agent-5338.lock');
    const padding = 40_000;
    const readMs = 1000;
    // The writer runs until the reader is done, so every read overlaps its loop however late the
    // reader starts; the stop file lives elsewhere, so that only the lock's own files are in `dir`.
    const stop = join(tempDir(), 'stop');
    const writer = spawnTs(fixture('publish-loop.ts'), [path, stop, String(padding)], {
      timeoutMs: 60_000,
    });
    const result = finished(writer);
    await lineMatching(writer, /^ready$/);
    let found = 0;
    let absent = 0;
    const torn: string[] = [];
    const end = performance.now() + readMs;
    while (performance.now() < end) {
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        absent++;
        continue;
      }
      found++;
      let problem: string | undefined;
      try {
        const record = JSON.parse(text) as { name?: string };
        if (record.name?.length !== padding) problem = `name of ${record.name?.length} characters`;
      } catch {
        problem = `${text.length} bytes that do not parse`;
      }
      // The lock's own reader must see the whole record too.
      const file = readRecordFile(path);
      if (file !== undefined && file.record?.name?.length !== padding) problem ??= `readRecordFile: ${file.size} bytes`;
      if (problem !== undefined) torn.push(problem);
    }
    writeFileSync(stop, '');
    const { code, stdout, stderr } = await result;
    assert.equal(code, 0, stderr);
    const rounds = Number(/rounds (\d+)/.exec(stdout)?.[1]);
    assert.deepEqual(torn.slice(0, 5), [], `${torn.length} of ${found} reads saw a partial record`);
    assert.ok(rounds > 100, `the writer published ${rounds} times`);
    assert.ok(found > 20, `the reader found the file ${found} times (absent ${absent})`);
    assert.deepEqual(
      readdirSync(dir).filter((name) => name !== basename(path)),
      [],
      'no temp files left',
    );
  });
});

describe('replaceAtomically', () => {
  it('replaces an existing file with mode 0600 and leaves no temp file', () => {
    const dir = tempDir();
    const path = join(dir, 'agent-5338.lock');
    writeFileSync(path, 'old', { mode: 0o644 });
    replaceAtomically(path, bytes);
    assert.deepEqual(readFileSync(path), bytes);
    if (posix) assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(dir), ['agent-5338.lock']);
  });

  it('replaces a symlink itself, never its target', () => {
    const dir = tempDir();
    const outside = tempDir();
    writeFileSync(join(outside, 'target'), 'precious');
    symlinkSync(join(outside, 'target'), join(dir, 'a.lock'));
    replaceAtomically(join(dir, 'a.lock'), bytes);
    assert.ok(lstatSync(join(dir, 'a.lock')).isFile());
    assert.equal(readFileSync(join(outside, 'target'), 'utf8'), 'precious');
  });

  it('cleans up its temp file when the rename fails', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'a.lock'));
    writeFileSync(join(dir, 'a.lock', 'inside'), 'x');
    assert.throws(() => replaceAtomically(join(dir, 'a.lock'), bytes));
    assert.deepEqual(readdirSync(dir), ['a.lock']);
  });
});
