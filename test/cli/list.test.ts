import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { acquireLock } from '../../src/index.ts';
import { freePort } from '../helpers/free-port.ts';
import { deadPid, writeRecord } from '../helpers/records.ts';
import { finished } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { cli, foreignRecord, place, spawnCli, staleRecord } from './_support.ts';

describe('portlock list', () => {
  it('stops quietly, exit 0, when its reader closes the pipe early (`portlock list | head`)', async () => {
    const dir = tempDir();
    const pid = await deadPid();
    for (let i = 0; i < 3; i++) {
      writeRecord(join(dir, `job-${i}.lock`), { pid, key: `job-${i}`, startedAt: new Date().toISOString() });
    }
    const child = spawnCli(['list', '--dir', dir]);
    const done = finished(child);
    // Gone before the table is written, as `head` is once it has its lines.
    child.stdout?.destroy();
    const { code, signal, stderr } = await done;
    assert.deepEqual({ code, signal, stderr }, { code: 0, signal: null, stderr: '' });
  });

  it('says there are no locks, on stderr, exit 0', async () => {
    const dir = tempDir();
    assert.deepEqual(await cli(['list', '--dir', dir]), { code: 0, stdout: '', stderr: `No locks in ${dir}.\n` });
    assert.deepEqual(JSON.parse((await cli(['ls', '--dir', dir, '--json'])).stdout), { dir, locks: [] });
    const missing = join(dir, 'not-yet');
    assert.equal((await cli(['list', '--dir', missing])).code, 0);
  });

  it('shows every lock as an aligned table, stale ones marked with their reason', async () => {
    const { dir, port } = await place();
    const lock = await acquireLock({ port, dir, name: 'percy' });
    // A port of its own, not port + 1: a port's interlock is host-wide, and that one could be in use.
    const stalePort = await freePort();
    try {
      const ghost = await staleRecord(join(dir, `agent-${stalePort}.lock`));
      foreignRecord(join(dir, 'build-cache.lock'));
      const result = await cli(['list', '--dir', dir]);
      assert.equal(result.code, 0);
      assert.equal(result.stderr, '');
      const lines = result.stdout.trimEnd().split('\n');
      assert.equal(lines.length, 4);
      const [header, ...rows] = lines as [string, ...string[]];
      // The holder (this process) tells its command line and directory in its answer.
      assert.match(header, /^LOCK +STATE +NAME +PID +USER +AGE +COMMAND +CWD +URL +NOTE$/);
      for (const column of ['STATE', 'NAME', 'PID', 'USER', 'AGE']) {
        const at = header.indexOf(column);
        for (const row of rows) assert.notEqual(row[at - 1], undefined, row);
        for (const row of rows) assert.equal(row.slice(at - 2, at), '  ', `${column} starts at ${at} in: ${row}`);
      }
      const byLock = new Map(rows.map((row) => [row.split(/ +/)[0], row.split(/ +/)]));
      assert.deepEqual(byLock.get(String(port))?.slice(0, 4), [String(port), 'running', 'percy', String(process.pid)]);
      assert.deepEqual(byLock.get(String(stalePort))?.slice(0, 4), [
        String(stalePort),
        'STALE',
        'ghost',
        String(ghost),
      ]);
      assert.match(rows.find((row) => row.startsWith(`${stalePort} `)) ?? '', new RegExp(`process ${ghost} is gone$`));
      assert.deepEqual(byLock.get('build-cache')?.slice(0, 4), ['build-cache', 'unknown', 'remote', '4242']);
      // Ports first, in order; keys after.
      assert.deepEqual(
        [...byLock.keys()],
        [String(Math.min(port, stalePort)), String(Math.max(port, stalePort)), 'build-cache'],
      );

      const json = JSON.parse((await cli(['list', '--dir', dir, '--json'])).stdout);
      assert.equal(json.dir, dir);
      assert.deepEqual(
        json.locks.map((entry: { lock: string; state: string }) => [entry.lock, entry.state]),
        [...byLock.keys()].map((key) => [
          key,
          key === String(port) ? 'held' : key === 'build-cache' ? 'unknown' : 'stale',
        ]),
      );
      const colour = await cli(['list', '--dir', dir], { isTTY: true });
      assert.ok(colour.stdout.includes('\x1b[33mSTALE'));
    } finally {
      await lock.release();
    }
  });
});
