import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encode, parseReply, parseRequest } from '../../src/interlock/protocol.ts';

describe('interlock protocol', () => {
  it('reads the three requests', () => {
    assert.deepEqual(parseRequest('{"v":1,"op":"who"}'), { op: 'who' });
    assert.deepEqual(parseRequest('{"v":1,"op":"wait"}'), { op: 'wait' });
    assert.deepEqual(parseRequest('{"v":1,"op":"stop","token":"abc"}'), { op: 'stop', token: 'abc' });
  });

  it('answers anything else with an error reply, never a throw', () => {
    const cases: [string, string][] = [
      ['', 'EBADREQUEST'],
      ['{', 'EBADREQUEST'],
      ['[]', 'EBADREQUEST'],
      ['null', 'EBADREQUEST'],
      ['"who"', 'EBADREQUEST'],
      ['{"op":"who"}', 'EVERSION'],
      ['{"v":2,"op":"who"}', 'EVERSION'],
      ['{"v":1,"op":"kill"}', 'EBADREQUEST'],
      ['{"v":1,"op":"stop"}', 'EBADREQUEST'],
      ['{"v":1,"op":"stop","token":7}', 'EBADREQUEST'],
      [`{"v":1,"op":"stop","token":"${'a'.repeat(300)}"}`, 'EBADREQUEST'],
      // An object whose toString is not callable throws if turned into a string.
      ['{"v":1,"op":{"toString":1}}', 'EBADREQUEST'],
      ['{"v":1,"op":{"valueOf":null,"toString":null}}', 'EBADREQUEST'],
    ];
    for (const [line, code] of cases) {
      const reply = parseRequest(line);
      assert.ok('v' in reply && !reply.ok, line);
      assert.equal(reply.error.code, code, line);
    }
  });

  it('round-trips replies, and rejects lines that are not replies', () => {
    const reply = { v: 1, ok: true, waiting: true } as const;
    assert.deepEqual(parseReply(encode(reply).trim()), reply);
    assert.equal(parseReply('garbage'), undefined);
    assert.equal(parseReply('{"v":2,"ok":true}'), undefined);
    assert.equal(parseReply('{"v":1}'), undefined);
  });

  it('accepts a who reply only with a real record, and never passes a token on', () => {
    assert.equal(parseReply('{"v":1,"ok":true,"record":null}'), undefined);
    assert.equal(parseReply('{"v":1,"ok":true,"record":{"pid":"1","startedAt":"x"}}'), undefined);
    assert.equal(parseReply('{"v":1,"ok":true}'), undefined);
    assert.equal(parseReply('{"v":1,"ok":false,"error":null}'), undefined);
    const reply = parseReply(`{"v":1,"ok":true,"record":{"pid":7,"startedAt":"x","token":"${'a'.repeat(32)}"}}`);
    assert.deepEqual(reply, { v: 1, ok: true, record: { pid: 7, startedAt: 'x' } });
  });
});
