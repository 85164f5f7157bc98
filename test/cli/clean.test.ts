import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { acquireLock, cleanLocks, removeStaleLock } from '../../src/index.ts';
import { deadPid, liveProcess, recordFor, writeRecord } from '../helpers/records.ts';
import { finished, fixture, spawnTs } from '../helpers/spawn.ts';
import { cli, foreignRecord, place, staleRecord } from './_support.ts';

describe('portlock clean', () => {
  it("removes portlock's own leftovers of dead processes, and never a file that is not a lock record", async () => {
    const { dir, port } = await place();
    const dead = await deadPid();
    const temp = join(dir, `agent-${port}.lock.${dead}.0123456789ab.tmp`);
    // Older than any publish takes: a temp file's pid alone may be of another pid namespace.
    writeRecord(temp, '', 60_000);
    const garbage = join(dir, 'xtables.lock');
    writeRecord(garbage, 'not json', 60_000);
    const other = join(dir, `agent-${port}.lock.bak`);
    writeRecord(other, 'a backup of someone else');
    const result = await cli(['clean', '--dir', dir]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      new RegExp(`^removed leftover agent-${port}\\.lock\\.${dead}\\.0123456789ab\\.tmp$`, 'm'),
    );
    assert.match(
      result.stderr,
      /^kept xtables\.lock: not a lock record, left alone \(the lock file is not a readable record/m,
    );
    assert.equal(existsSync(temp), false);
    assert.equal(existsSync(garbage), true);
    assert.equal(existsSync(other), true);
    const removed = await removeStaleLock({ key: 'xtables', dir });
    assert.equal(removed.removed, false);
    assert.equal(existsSync(garbage), true);
  });

  it('prints the name of a leftover another user planted with escape sequences escaped', async () => {
    const { dir } = await place();
    const dead = await deadPid();
    const planted = `x\u001b]0;PWNED\u0007\u001b[2J.lock.${dead}.abcdefabcdef.tmp`;
    writeRecord(join(dir, planted), '', 60_000);
    const result = await cli(['clean', '--dir', dir]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^removed leftover x\\u\{1b\}\]0;PWNED\\u\{7\}\\u\{1b\}\[2J\.lock\./m);
    assert.doesNotMatch(
      (result.stdout + result.stderr).replaceAll('\n', ''),
      /\p{Cc}/u,
      'no control character printed',
    );
    assert.equal(existsSync(join(dir, planted)), false);
  });

  it('removes stale records only, says what it removed, and leaves live and unknown ones', async () => {
    const { dir, port } = await place();
    const lock = await acquireLock({ port, dir });
    try {
      const ghost = await staleRecord(join(dir, 'agent-1.lock'));
      await staleRecord(join(dir, 'old-job.lock'));
      foreignRecord(join(dir, 'build-cache.lock'));
      const before = readdirSync(dir).sort();

      const dry = await cli(['clean', '--dry-run', '--dir', dir]);
      assert.equal(dry.code, 0);
      assert.deepEqual(readdirSync(dir).sort(), before, 'a dry run removes nothing');
      assert.match(
        dry.stdout,
        new RegExp(`^would remove agent-1\\.lock \\(ghost, pid ${ghost}, .*\\): process ${ghost} is gone$`, 'm'),
      );
      assert.match(dry.stdout, /^would remove old-job\.lock /m);
      assert.equal(dry.stdout.trimEnd().split('\n').length, 2);
      assert.match(dry.stderr, /Would remove 2 stale lock files in .*; kept 1 running and 1 unknown\./);
      assert.match(dry.stderr, /^kept build-cache\.lock \(remote, pid 4242/m);

      const done = await cli(['clean', '--dir', dir]);
      assert.equal(done.code, 0);
      assert.match(done.stdout, /^removed agent-1\.lock /m);
      assert.match(done.stdout, /^removed old-job\.lock /m);
      assert.match(done.stderr, /Removed 2 stale lock files/);
      assert.deepEqual(readdirSync(dir).sort(), ['build-cache.lock', `agent-${port}.lock`].sort());

      const again = await cli(['clean', '--dir', dir, '--json']);
      const document = JSON.parse(again.stdout);
      assert.deepEqual(document.removed, []);
      assert.deepEqual(
        document.kept.map((entry: { lock: string }) => entry.lock).sort(),
        ['build-cache', String(port)].sort(),
      );
      assert.equal(document.dryRun, false);
      assert.match((await cli(['clean', '--dir', dir])).stderr, /^Nothing to clean in /m);
    } finally {
      await lock.release();
    }
  });

  it('removeStaleLock leaves a record that a live process is reclaiming right now', async () => {
    const { dir } = await place();
    const path = join(dir, 'job.lock');
    await staleRecord(path, { token: 'aa'.repeat(16) });
    const { pid } = await liveProcess();
    // A live claimer of the stale record: the claim chain says it alone may act.
    writeRecord(`${path}.claim-${'aa'.repeat(16)}`, recordFor(pid, { key: 'job', token: 'bb'.repeat(16) }));
    const result = await removeStaleLock({ key: 'job', dir });
    assert.equal(result.removed, false);
    assert.match(result.reason, /another process is replacing its stale record/);
    assert.ok(existsSync(path));
    assert.deepEqual(await removeStaleLock({ key: 'nothing', dir }), {
      state: 'free',
      path: join(dir, 'nothing.lock'),
      reason: 'there is no lock file',
      certainty: 'certain',
      removed: false,
    });
  });

  it('never removes a record that a concurrent acquire has just published', async (t) => {
    const { dir } = await place();
    // The worker plants a stale record, takes the lock over it and checks its record is still
    // there, again and again; meanwhile this process cleans the directory as fast as it can.
    const worker = spawnTs(fixture('cli-clean-race.ts'), [dir, '300'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const result = finished(worker);
    let cleaned = 0;
    while (worker.exitCode === null) {
      cleaned += (await cleanLocks({ dir })).removed.length;
      await new Promise((resolve) => setImmediate(resolve));
    }
    const { code, stdout } = await result;
    assert.equal(code, 0, stdout);
    assert.deepEqual(JSON.parse(stdout.trim().split('\n').pop() ?? '{}').lost, 0);
    t.diagnostic(`removed ${cleaned} stale records while the worker raced for them`);
  });
});
