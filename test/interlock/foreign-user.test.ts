import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { giveToNobody, nobodyUnavailable, runTsAsNobody } from '../helpers/as-nobody.ts';
import { freePort } from '../helpers/free-port.ts';
import { startHolder } from '../helpers/holder.ts';
import { fixture } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

describe('another user and the interlock', { skip: process.platform !== 'linux' }, () => {
  it('is refused with the holder named, hears no token from who, and cannot stop it', {
    skip: nobodyUnavailable(),
  }, async () => {
    const port = await freePort();
    const holder = await startHolder({ port, dir: tempDir(), name: 'percy', stoppable: true });
    const parent = tempDir();
    chmodSync(parent, 0o755);
    const theirs = join(parent, 'locks');
    mkdirSync(theirs, { mode: 0o700 });
    giveToNobody(theirs);

    const { code, stdout, stderr } = await runTsAsNobody(fixture('foreign-interlock.ts'), [
      JSON.stringify({ port, dir: theirs }),
    ]);
    assert.equal(code, 0, stderr);
    const { refusal, who, stop } = JSON.parse(stdout);
    assert.equal(refusal.name, 'LockHeldError');
    // The kernel shows nobody whose process holds the name: the answer is a claim, shown as one.
    assert.equal(refusal.meta, undefined);
    assert.match(refusal.message, new RegExp(`port ${port}: .*claims to be "percy" pid ${holder.pid}`));
    assert.equal(who.kind, 'answered');
    assert.equal(who.reply.record.pid, holder.pid);
    assert.equal('token' in who.reply.record, false);
    assert.ok(!stdout.includes(JSON.parse(readFileSync(holder.path, 'utf8')).token), 'the token never leaks');
    assert.equal(stop.reply.error.code, 'EDENIED');
    assert.equal(holder.child.exitCode, null, 'the holder keeps running');
    holder.child.kill('SIGKILL');
  });
});
