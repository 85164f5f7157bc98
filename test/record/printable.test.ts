import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { printable } from '../../src/printable.ts';

describe('printable', () => {
  it('escapes exactly the characters of Unicode Cc and the line and bidirectional controls', () => {
    const controls = /[\p{Cc}\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;
    // Every BMP code unit, and an astral character (kept whole: it is no control).
    for (let code = 0; code <= 0xffff; code++) {
      const char = String.fromCharCode(code);
      const expected = controls.test(char) ? `\\u{${code.toString(16)}}` : char;
      assert.equal(printable(char), expected, `U+${code.toString(16)}`);
    }
    assert.equal(printable('a😀\u202eb\nc'), 'a😀\\u{202e}b\\u{a}c');
  });
});
