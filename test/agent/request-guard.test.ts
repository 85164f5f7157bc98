import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { controlRequestRefusal, isLoopbackHost } from '../../src/agent/request-guard.ts';

describe('isLoopbackHost', () => {
  it('accepts localhost and loopback addresses in every spelling', () => {
    for (const host of [
      'localhost',
      'LocalHost',
      '127.0.0.1',
      '127.1.2.3',
      '::1',
      '[::1]',
      '0:0:0:0:0:0:0:1',
      '::ffff:127.0.0.1',
    ]) {
      assert.equal(isLoopbackHost(host), true, host);
    }
  });

  it('refuses everything else', () => {
    for (const host of [
      'evil.example',
      'localhost.evil.example',
      'localhost.',
      '10.0.0.1',
      '0.0.0.0',
      '::',
      '::2',
      '128.0.0.1',
      '',
    ]) {
      assert.equal(isLoopbackHost(host), false, host);
    }
  });
});

describe('controlRequestRefusal', () => {
  const port = 5338;
  const allowed = (headers: Record<string, string>) => assert.equal(controlRequestRefusal(headers, port), undefined);
  const refused = (headers: Record<string, string>, pattern: RegExp) =>
    assert.match(controlRequestRefusal(headers, port) ?? 'allowed', pattern);

  it('allows requests from tools, which send no Origin, and same-origin browser requests', () => {
    allowed({});
    allowed({ host: 'localhost:5338' });
    allowed({ host: '127.0.0.1:5338', origin: 'http://127.0.0.1:5338' });
    allowed({ host: '[::1]:5338', origin: 'http://[::1]:5338', 'sec-fetch-site': 'same-origin' });
    allowed({ host: 'localhost:5338', 'sec-fetch-site': 'none' });
  });

  it('refuses Host headers that are not loopback or not this port', () => {
    refused({ host: 'rebind.evil.example:5338' }, /Host header must name localhost/);
    refused({ host: 'localhost@evil.example:5338' }, /Host header must name localhost/);
    refused({ host: 'localhost:5338/x' }, /Host header must name localhost/);
    refused({ host: 'localhost' }, /must name port 5338/);
    refused({ host: 'localhost:5339' }, /must name port 5338/);
  });

  it('refuses the IPv4-mapped loopback form, through which a page gets no Origin or Sec-Fetch-Site', () => {
    refused({ host: '[::ffff:127.0.0.1]:5338' }, /Host header must name localhost/);
    refused({ host: '[::FFFF:7f00:1]:5338' }, /Host header must name localhost/);
    refused({ host: '[0:0:0:0:0:ffff:127.0.0.1]:5338' }, /Host header must name localhost/);
    refused({ host: 'localhost:5338', origin: 'http://[::ffff:127.0.0.1]:5338' }, /cross-origin/);
  });

  it('refuses foreign origins and cross-site fetches', () => {
    refused({ origin: 'https://evil.example' }, /cross-origin/);
    refused({ origin: 'https://localhost:5338' }, /cross-origin/);
    refused({ origin: 'http://localhost:3000' }, /cross-origin/);
    refused({ origin: 'null' }, /cross-origin/);
    refused({ 'sec-fetch-site': 'same-site' }, /cross-site/);
    refused({ 'sec-fetch-site': 'cross-site' }, /cross-site/);
  });
});
