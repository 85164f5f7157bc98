import assert from 'node:assert/strict';
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { acquireLock } from '../../src/index.ts';
import { cli, foreignRecord, place, staleRecord } from './_support.ts';

describe('portlock status <port>', () => {
  it('says not running, exit 3, when there is no lock file', async () => {
    const { dir, port } = await place();
    const result = await cli(['status', String(port), '--dir', dir]);
    assert.deepEqual(result, { code: 3, stdout: `port ${port}: not running (there is no lock file)\n`, stderr: '' });
  });

  it('names a live holder in one line, exit 0', async () => {
    const { dir, port } = await place();
    const lock = await acquireLock({ port, dir, name: 'percy' });
    try {
      const result = await cli(['status', String(port), '--dir', dir]);
      assert.equal(result.code, 0);
      assert.equal(result.stderr, '');
      const lines = result.stdout.trimEnd().split('\n');
      assert.equal(lines.length, 1);
      assert.match(
        lines[0] ?? '',
        new RegExp(
          `^port ${port}: running: percy, pid ${process.pid}, user \\S+, up \\d+ s; in ${process.cwd()} \\(this process holds it\\)$`,
        ),
      );
    } finally {
      await lock.release();
    }
  });

  it('says stale, exit 1, for a record whose holder is gone, and what to do', async () => {
    const { dir, port } = await place();
    const pid = await staleRecord(join(dir, `agent-${port}.lock`));
    const result = await cli(['status', String(port), '--dir', dir]);
    assert.equal(result.code, 1);
    assert.match(
      result.stdout,
      new RegExp(
        `^port ${port}: stale: ghost, pid ${pid}, user someone, taken 1 h ago \\(process ${pid} is gone\\); the next start replaces it, or 'portlock clean' removes it\\n$`,
      ),
    );
  });

  it('says unknown, exit 4, when the lock path cannot be judged from here', async () => {
    const { dir, port } = await place();
    symlinkSync('/nonexistent', join(dir, `agent-${port}.lock`));
    const result = await cli(['status', String(port), '--dir', dir]);
    assert.equal(result.code, 4);
    assert.match(result.stdout, new RegExp(`^port ${port}: unknown \\(.*symbolic link`));
  });

  it('treats a port record from another host as stale while the port is free here', async () => {
    const { dir, port } = await place();
    foreignRecord(join(dir, `agent-${port}.lock`));
    const result = await cli(['status', String(port), '--dir', dir]);
    assert.equal(result.code, 1);
    assert.match(result.stdout, /on host another-host\.invalid/);
  });

  it('prints one JSON document with --json, exit codes unchanged', async () => {
    const { dir, port } = await place();
    const free = await cli(['status', String(port), '--dir', dir, '--json']);
    assert.equal(free.code, 3);
    assert.deepEqual(JSON.parse(free.stdout), {
      port,
      state: 'free',
      path: join(dir, `agent-${port}.lock`),
      reason: 'there is no lock file',
      certainty: 'certain',
      holders: [],
    });
    const lock = await acquireLock({ port, dir });
    try {
      const held = await cli(['status', String(port), '--dir', dir, '--json']);
      assert.equal(held.code, 0);
      const document = JSON.parse(held.stdout);
      assert.equal(document.state, 'held');
      assert.equal(document.record.pid, process.pid);
      assert.equal('token' in document.record, false);
    } finally {
      await lock.release();
    }
  });
});
