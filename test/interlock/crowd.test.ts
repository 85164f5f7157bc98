import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inspectLock, stopLock } from '../../src/index.ts';
import { ask } from '../../src/interlock/client.ts';
import { interlockName } from '../../src/interlock/name.ts';
import { nobodyUnavailable, spawnAsNobody } from '../helpers/as-nobody.ts';
import { freePort } from '../helpers/free-port.ts';
import { startHolder } from '../helpers/holder.ts';
import { fixture, lineMatching } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const linuxOnly = { skip: process.platform !== 'linux' && 'the interlock is tested on Linux' };

describe('a crowd at the interlock', linuxOnly, () => {
  it("lets the owner's stop through 200 idle connections held open by another user", {
    skip: nobodyUnavailable(),
  }, async () => {
    const dir = tempDir();
    const port = await freePort();
    const holder = await startHolder({ port, dir, stoppable: true });
    const name = interlockName({ kind: 'port', port }, dir) ?? '';
    const flood = spawnAsNobody(
      process.execPath,
      ['--import', 'tsx', fixture('idle-flood.ts'), JSON.stringify({ name, count: 200 })],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    await lineMatching(flood, /"ready":true/);
    const released = lineMatching(holder.child, /"released"/);
    const result = await stopLock({ port, dir, timeout: 5000 });
    assert.equal(result.outcome, 'stopped', result.reason);
    assert.equal(result.via, 'request');
    assert.match(await released, /stop request/);
    flood.stdin?.end();
  });

  it('answers 999 askers at once, every one for certain', async () => {
    const dir = tempDir();
    const port = await freePort();
    const holder = await startHolder({ port, dir });
    const name = interlockName({ kind: 'port', port }, dir) ?? '';
    const asked = await Promise.all(Array.from({ length: 999 }, () => ask(name, { op: 'who' }, 20_000)));
    const unanswered = asked.filter((answer) => answer.kind !== 'answered');
    assert.deepEqual(unanswered, [], `${unanswered.length} of 999 got no answer`);
    const inspected = await Promise.all(Array.from({ length: 100 }, () => inspectLock({ port, dir })));
    assert.deepEqual(
      inspected.filter((lock) => lock.certainty !== 'certain').map((lock) => lock.reason),
      [],
    );
    holder.child.kill('SIGKILL');
  });
});
