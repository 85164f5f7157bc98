import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { recordFor, writeRecord } from '../helpers/records.ts';
import { finished, fixture, lineMatching, onLines, spawnTs } from '../helpers/spawn.ts';
import { CHILD, cli, exited, place, spawnCli } from './_support.ts';

/** The pids of the first `count` processes that said they are ready on the child's stdout (one listener: lines may come in one chunk). */
function readyPids(child: ChildProcess, count: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const pids: number[] = [];
    onLines(child, (line) => {
      const pid = /"ready":true,"pid":(\d+)/.exec(line)?.[1];
      if (pid !== undefined) pids.push(Number(pid));
      if (pids.length >= count) resolve(pids);
    });
    child.once('close', () => reject(new Error(`closed after ${pids.length} of ${count} ready lines`)));
  });
}

// The sentences status and stop print, read as a person reads them: verbs that agree, the time
// limit as it was set, prepositions that fit, and no full stop inside parentheses.
describe('the wording of status and stop', () => {
  it('several processes on the interlock: "pid A (...) and pid B (...) hold", and the limit as a round figure', async () => {
    const { dir, port } = await place();
    // Two processes inherit the lock from portlock run, which is then killed: both hold it, neither answers.
    const run = spawnCli(
      ['run', '-p', String(port), '--dir', dir, '--', 'sh', '-c', `node ${CHILD} plain & exec node ${CHILD} plain`],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const pids: number[] = [];
    try {
      pids.push(...(await readyPids(run, 2)));
      run.kill('SIGKILL');
      await exited(run);
      const status = await cli(['status', String(port), '--dir', dir]);
      assert.equal(status.code, 0, status.stderr);
      assert.match(
        status.stdout,
        // Named from the kernel at once (they cannot answer), or after a question that got no answer.
        /pid \d+ \([^)]*\) and pid \d+ \([^)]*\) (through the kernel interlock|hold the lock's kernel interlock(, and do not answer \(it did not answer within 1 s\))?)/,
      );
      // And where status names them itself.
      assert.match(
        status.stdout,
        /^port \d+: running: held by pid \d+ \([^)]*\) and pid \d+ \([^)]*\) through the kernel interlock/,
      );
      assert.doesNotMatch(status.stdout, /\bholds the lock's kernel interlock|within \d+ ms/);
    } finally {
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Gone already.
        }
      }
    }
  });

  it('a holder that does not answer: "within 1 s", not what was left of it', async () => {
    const { dir, port } = await place();
    const silent = spawnTs(fixture('silent-interlock.ts'), [JSON.stringify({ port, dir })]);
    try {
      await lineMatching(silent, /"ready":true/);
      writeRecord(join(dir, `agent-${port}.lock`), recordFor(silent.pid ?? 0, { port }));
      const stop = await cli(['stop', String(port), '--dir', dir]);
      assert.equal(stop.code, 1, stop.stderr);
      assert.match(stop.stderr, /the holder does not answer stop requests \(it did not answer within 1 s\)/);
      assert.doesNotMatch(stop.stderr, /within \d+ ms/);
    } finally {
      silent.stdin?.end();
      await finished(silent);
    }
  });

  it('a record from another host: "taken on host runner-7"', async () => {
    const { dir, port } = await place();
    writeRecord(join(dir, `agent-${port}.lock`), {
      portlock: 1,
      name: 'percy',
      pid: 4242,
      port,
      startedAt: new Date().toISOString(),
      hostname: 'runner-7',
    });
    const status = await cli(['status', String(port), '--dir', dir]);
    assert.equal(status.code, 1, status.stdout);
    assert.match(
      status.stdout,
      /\(it was taken on host runner-7, whose port is not this one; here the port's interlock is free\)/,
    );
  });

  it('an unknown lock: the reason in parentheses ends without a full stop', async () => {
    const { dir, port } = await place();
    symlinkSync('/nonexistent', join(dir, `agent-${port}.lock`));
    const status = await cli(['status', String(port), '--dir', dir]);
    assert.equal(status.code, 4);
    assert.equal(
      status.stdout,
      `port ${port}: unknown (the lock path is a symbolic link; portlock never follows one)\n`,
    );
    const list = await cli(['list', '--dir', dir]);
    assert.match(list.stdout, /the lock path is a symbolic link; portlock never follows one\n$/);
  });
});
