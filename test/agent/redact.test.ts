import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeForLog } from '../../src/agent/redact.ts';
import { redact } from '../../src/index.ts';

const env = {
  PERCY_TOKEN: 'tok-1234567',
  AWS_SECRET: 's3cr3t-value',
  DB_PASSWORD: 'hunter22',
  API_KEY: 'k-98765',
  DEBUG: 'true',
  X_KEY: '1',
};

describe('redact', () => {
  it('removes the values of secret-named environment variables, however they are quoted', () => {
    const text = `token tok-1234567, secret "s3cr3t-value", url ?p=hunter22 and k-98765`;
    assert.equal(redact(text, { env }), 'token [REDACTED], secret "[REDACTED]", url ?p=[REDACTED] and [REDACTED]');
    const special = { QUOTED_SECRET: 'a"b\\c d' };
    assert.equal(redact(JSON.stringify({ v: 'a"b\\c d' }), { env: special }), '{"v":"[REDACTED]"}');
    assert.equal(redact(`?v=${encodeURIComponent('a"b\\c d')}`, { env: special }), '?v=[REDACTED]');
  });

  it('leaves short and boolean-like values of secret-named variables alone', () => {
    assert.equal(redact('DEBUG is true, 1 retry', { env }), 'DEBUG is true, 1 retry');
  });

  it('removes Authorization and Cookie headers, bearer credentials and token fields', () => {
    const cases: [string, string][] = [
      ['Authorization: Bearer abc.def', 'Authorization: [REDACTED]'],
      ['proxy-authorization: Basic dXNlcjpwYXNz', 'proxy-authorization: [REDACTED]'],
      ['Cookie: session=abc; theme=dark', 'Cookie: [REDACTED]'],
      ["{ authorization: 'Bearer sk-live' }", "{ authorization: '[REDACTED]' }"],
      [
        '{"token":"0123abcd","port":5338,"key":"build-cache"}',
        '{"token":"[REDACTED]","port":5338,"key":"build-cache"}',
      ],
      ['GET /x?access_token=abc&page=2', 'GET /x?access_token=[REDACTED]&page=2'],
      ['X-Api-Key: 12345', 'X-Api-Key: [REDACTED]'],
      ['client_secret=xyz password: "p w"', 'client_secret=[REDACTED] password: "[REDACTED]"'],
      ['sent Bearer eyJhbGciOi.x-y_z== upstream', 'sent Bearer [REDACTED] upstream'],
      ['https://bob:pa55@example.com/x', 'https://bob:[REDACTED]@example.com/x'],
      ['3 tokens left, key: build-cache', '3 tokens left, key: build-cache'],
    ];
    for (const [input, output] of cases) assert.equal(redact(input, { env: {} }), output, input);
  });

  it('removes explicitly given secrets', () => {
    assert.equal(redact('lock token 0f0f0f0f0f', { env: {}, secrets: ['0f0f0f0f0f'] }), 'lock token [REDACTED]');
  });

  it('redacts errors with their properties and causes', () => {
    const error = new Error('request failed', {
      cause: Object.assign(new Error(`refused tok-1234567`), { headers: { Authorization: 'Bearer zzz' } }),
    });
    const text = describeForLog(error, { env });
    assert.match(text, /Error: request failed/);
    assert.match(text, /refused \[REDACTED\]/);
    assert.match(text, /Authorization: '\[REDACTED\]'/);
    assert.ok(!text.includes('tok-1234567') && !text.includes('zzz'));
  });
});
