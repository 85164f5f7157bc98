import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { unverifiable } from '../../src/interlock/flavour.ts';
import { interlockName } from '../../src/interlock/name.ts';

describe('where the kernel cannot say who holds an interlock', () => {
  it('names why, so that the token is never sent there: a named pipe, a socket file without /proc', () => {
    const pipe = interlockName({ kind: 'port', port: 5338 }, '/x', 'win32') as string;
    assert.match(unverifiable(pipe, 'win32') ?? '', /Windows does not tell Node which process serves a named pipe/);
    assert.match(unverifiable('/tmp/.portlock/port-5338.sock', 'darwin') ?? '', /no \/proc/);
    assert.equal(unverifiable('/tmp/.portlock/port-5338.sock', 'linux'), undefined);
  });
});
