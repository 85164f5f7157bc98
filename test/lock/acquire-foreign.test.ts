import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { giveToNobody, nobodyUnavailable, runTsAsNobody } from '../helpers/as-nobody.ts';
import { snapshot } from '../helpers/disk.ts';
import { freePort } from '../helpers/free-port.ts';
import { deadPid, liveProcess, recordFor, writeRecord } from '../helpers/records.ts';
import { fixture } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

/** A lock directory that nobody owns, reachable by nobody, with a record file nobody owns in it. */
async function nobodysLock(record: (port: number) => object) {
  const parent = tempDir();
  chmodSync(parent, 0o755);
  const dir = join(parent, 'locks');
  mkdirSync(dir, { mode: 0o700 });
  giveToNobody(dir);
  const port = await freePort();
  const path = join(dir, `agent-${port}.lock`);
  writeRecord(path, record(port));
  giveToNobody(path);
  return { dir, port, path };
}

async function tryAsNobody(options: object) {
  const { code, stdout, stderr } = await runTsAsNobody(fixture('try-acquire.ts'), [JSON.stringify(options)]);
  assert.equal(code, 0, stderr);
  return JSON.parse(stdout);
}

describe('a holder owned by another user (kill answers EPERM)', () => {
  it("is not believed, nor reclaimed: nobody's own record naming root's live process is unknown, and nobody is refused naming its pid", {
    skip: nobodyUnavailable(),
  }, async () => {
    const { pid } = await liveProcess();
    const { dir, port, path } = await nobodysLock((port) => recordFor(pid, { port, name: 'percy' }));
    const before = snapshot(dir, { self: false });
    const outcome = await tryAsNobody({ port, dir, name: 'percy' });
    assert.equal(outcome.acquired, false, 'a live process of another user is never reclaimed');
    assert.equal(outcome.error.name, 'LockHeldError');
    assert.equal(outcome.error.code, 'ELOCKED');
    assert.match(outcome.error.message, new RegExp(`held by pid ${pid}\\b`));
    // A record speaks only for its file owner's processes: nobody's cannot speak for root's.
    assert.match(
      outcome.error.message,
      /cannot be checked from here: the record claims process \d+, which runs as root/,
    );
    assert.match(outcome.error.message, /Next step: .*remove /);
    assert.equal(outcome.inspection.state, 'unknown');
    assert.equal(outcome.inspection.certainty, 'certain');
    assert.equal(outcome.inspection.record.pid, pid);
    assert.match(outcome.inspection.reason, /not as nobody \(uid 65534\), who owns the lock file/);
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).pid, pid, 'the record is untouched');
    assert.deepEqual(snapshot(dir, { self: false }), before);
  });

  it('is still stale once its pid is gone: nobody takes the lock', { skip: nobodyUnavailable() }, async () => {
    const dead = await deadPid();
    const { dir, port } = await nobodysLock((port) => ({ ...recordFor(process.pid, { port }), pid: dead }));
    const outcome = await tryAsNobody({ port, dir });
    assert.equal(outcome.acquired, true, JSON.stringify(outcome.error));
    assert.equal(outcome.inspection.state, 'stale');
  });

  it('reports a record nobody cannot read as unknown, not free', { skip: nobodyUnavailable() }, async () => {
    const { pid } = await liveProcess();
    const { dir, port, path } = await nobodysLock((port) => recordFor(pid, { port }));
    // Root's own 0600 file in nobody's directory: nobody can see it is there, but not read it.
    chownSync(path, 0, 0);
    const outcome = await tryAsNobody({ port, dir });
    assert.equal(outcome.acquired, false);
    assert.notEqual(outcome.inspection.state, 'free');
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).pid, pid);
  });
});
