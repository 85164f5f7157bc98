import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { interlockKind } from '../../src/interlock/flavour.ts';
import { INTERLOCK_ENV, validateInterlock } from '../../src/options/validate.ts';

describe('the interlock option', () => {
  it("picks the abstract socket on Linux, the named pipe on Windows, a socket file elsewhere; 'socket-file' forces it on POSIX", () => {
    assert.equal(interlockKind('auto', 'linux'), 'abstract-socket');
    assert.equal(interlockKind('auto', 'win32'), 'named-pipe');
    for (const platform of ['darwin', 'freebsd', 'openbsd', 'sunos'] as const) {
      assert.equal(interlockKind('auto', platform), 'socket-file');
    }
    assert.equal(interlockKind('socket-file', 'linux'), 'socket-file');
    assert.equal(interlockKind('off', 'linux'), undefined);
  });

  it('takes PORTLOCK_INTERLOCK where a call gives none, and names it when its value is wrong', () => {
    const saved = process.env[INTERLOCK_ENV];
    try {
      process.env[INTERLOCK_ENV] = 'socket-file';
      assert.equal(validateInterlock(undefined), 'socket-file');
      assert.equal(validateInterlock('off'), 'off', 'a call that gives one keeps it');
      process.env[INTERLOCK_ENV] = 'abstract';
      assert.throws(() => validateInterlock(undefined), { name: 'TypeError', message: /PORTLOCK_INTERLOCK must be/ });
      delete process.env[INTERLOCK_ENV];
      assert.equal(validateInterlock(undefined), 'auto');
      assert.throws(() => validateInterlock('on'), { name: 'TypeError', message: /'socket-file'/ });
    } finally {
      if (saved === undefined) delete process.env[INTERLOCK_ENV];
      else process.env[INTERLOCK_ENV] = saved;
    }
  });
});
