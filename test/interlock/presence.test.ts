import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bindPresence, presenceBound, presenceIn } from '../../src/interlock/presence.ts';

const ID = '0123456789abcdef';
const line = (path: string) => `0000000000000000: 00000002 00000000 00010000 0001 01 123456 ${path}`;

describe('presence names', () => {
  it('are found in /proc/net/unix as Node 22+ binds them (exact) and as Node 20 does (NUL-padded)', () => {
    assert.equal(presenceIn(line(`@portlock/holder-${ID}`), ID), true);
    assert.equal(presenceIn(line(`@portlock/holder-${ID}`.padEnd(108, '@')), ID), true);
    // A longer name, or one with a literal '@' after the id, is not this one.
    assert.equal(presenceIn(line(`@portlock/holder-${ID}${'@'.repeat(80)}`), ID), false);
    assert.equal(presenceIn(line(`@portlock/holder-${ID}@`), ID), false);
    // Only a listening socket holds it.
    assert.equal(presenceIn(line(`@portlock/holder-${ID}`).replace('00010000', '00000000'), ID), false);
    // Another holder whose id merely starts with this one is not this one.
    assert.equal(presenceIn(line(`@portlock/holder-${ID}00`), ID), false);
    assert.equal(presenceIn(line(`/tmp/portlock/holder-${ID}`), ID), false);
  });

  it('are bound while held and free once closed', { skip: process.platform !== 'linux' && 'Linux only' }, async () => {
    const id = `${Date.now().toString(16)}${process.pid.toString(16)}`.padEnd(16, '0').slice(0, 16);
    const bound = await bindPresence(id);
    assert.ok(bound);
    const owner = { uid: process.getuid?.(), pid: process.pid };
    assert.equal(presenceBound(id, owner), true);
    // Held, but not by a process of this user: not proof of life.
    assert.equal(presenceBound(id, { uid: 65534 }), undefined);
    assert.equal(presenceBound(id), undefined);
    bound.close();
    assert.equal(presenceBound(id, owner), false);
  });

  it('refuse an id that is not hex, rather than building a pattern from it', () => {
    assert.equal(presenceBound('.*'), undefined);
  });
});
