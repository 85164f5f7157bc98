import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  createRecord,
  MAX_RECORD_BYTES,
  newToken,
  parseRecord,
  publicRecord,
  serializeRecord,
} from '../../src/record/record.ts';
import type { LockRecord } from '../../src/types.ts';
import { FAKE_NOW, fakeProbe } from '../helpers/fake-probe.ts';

const full: LockRecord = {
  portlock: 1,
  name: 'percy',
  pid: 4242,
  port: 5338,
  startedAt: '2026-11-24T09:12:03.000Z',
  hostname: 'devbox',
  user: 'alice',
  processStart: '123456',
  bootId: '69e03fcf-67b5-476e-be25-c544ad11852b',
  netns: 'net:[4026531840]',
  pidns: 'pid:[4026531836]',
  interlock: true,
  token: '0123456789abcdef0123456789abcdef',
};

const parse = (value: unknown): LockRecord | undefined =>
  parseRecord(Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)));

describe('parseRecord', () => {
  it('reads a portlock record with every field', () => {
    assert.deepEqual(parse(full), full);
  });

  it('reads a key record', () => {
    const { port: _port, ...rest } = full;
    assert.deepEqual(parse({ ...rest, key: 'build-cache' }), { ...rest, key: 'build-cache' });
  });

  it("reads Percy's original { pid, port, startedAt } format", () => {
    const old = { pid: 912, port: 5338, startedAt: '2025-06-01T10:00:00.000Z' };
    assert.deepEqual(parse(old), old);
  });

  it('drops fields it does not know', () => {
    assert.deepEqual(parse({ ...full, extra: 'x', argv: ['rm', '-rf'] }), full);
  });

  it('reads what the holder says it serves, and finds a record that says it wrongly unreadable', () => {
    const serving = {
      command: ['node', 'server.js'],
      cwd: '/srv/app',
      url: 'http://localhost:5338',
      log: '/home/alice/.percy/agent-5338.log',
      state: 'ready',
      commandPid: 4243,
      supervisorPid: 4241,
    };
    assert.deepEqual(parse({ ...full, ...serving }), { ...full, ...serving });
    for (const bad of [{ command: 'node server.js' }, { command: [1] }, { state: 'up' }, { commandPid: -1 }]) {
      assert.equal(parse({ ...full, ...bad }), undefined, JSON.stringify(bad));
    }
  });

  const garbage: [string, unknown][] = [
    ['an empty file', ''],
    ['whitespace', '  \n'],
    ['a truncated record', JSON.stringify(full).slice(0, 40)],
    ['a JSON array', [full]],
    ['JSON null', null],
    ['a JSON number', 4242],
    ['a JSON string', '"4242"'],
    ['a record without a pid', { port: 5338, startedAt: full.startedAt }],
    ['a record without startedAt', { pid: 4242, port: 5338 }],
    ['pid 0', { ...full, pid: 0 }],
    ['a negative pid', { ...full, pid: -5 }],
    ['a fractional pid', { ...full, pid: 1.5 }],
    ['a pid as a string', { ...full, pid: '4242' }],
    ['a pid beyond safe integers', { ...full, pid: 2 ** 60 }],
    ['startedAt as a number', { ...full, startedAt: 1_700_000_000_000 }],
    ['port 0', { ...full, port: 0 }],
    ['port 65536', { ...full, port: 65536 }],
    ['a port as a string', { ...full, port: '5338' }],
    ['a key as a number', { ...full, key: 7 }],
    ['a hostname as a number', { ...full, hostname: 1 }],
    ['a user as an object', { ...full, user: {} }],
    ['a name as an array', { ...full, name: ['percy'] }],
    ['a processStart that is not digits', { ...full, processStart: '12ab' }],
    ['a processStart as a number', { ...full, processStart: 123456 }],
    ['a bootId as a number', { ...full, bootId: 5 }],
    ['a netns as a number', { ...full, netns: 4026531840 }],
    ['a pidns as a number', { ...full, pidns: 4026531836 }],
    ['interlock false', { ...full, interlock: false }],
    ['interlock as a string', { ...full, interlock: 'yes' }],
    ['a token with upper case', { ...full, token: full.token?.toUpperCase() }],
    ['a token too short', { ...full, token: 'abcdef' }],
    ['a token that is not hex', { ...full, token: 'z'.repeat(32) }],
    ['a token as a number', { ...full, token: 1234567890123456 }],
    ['another format version', { ...full, portlock: 2 }],
  ];

  for (const [label, value] of garbage) {
    it(`rejects ${label}`, () => {
      assert.equal(parse(value), undefined);
    });
  }

  it('rejects bytes that are not UTF-8 JSON', () => {
    assert.equal(parseRecord(Buffer.from([0xff, 0xfe, 0x00, 0x7b])), undefined);
  });
});

describe('publicRecord', () => {
  it('leaves out the token and nothing else, without changing the record', () => {
    const shown = publicRecord(full);
    assert.equal('token' in shown, false);
    const { token: _token, ...rest } = full;
    assert.deepEqual(shown, rest);
    assert.equal(full.token, '0123456789abcdef0123456789abcdef');
  });

  it('passes a record without a token through', () => {
    const old = { pid: 912, port: 5338, startedAt: '2025-06-01T10:00:00.000Z' };
    assert.deepEqual(publicRecord(old), old);
  });
});

describe('serializeRecord', () => {
  it('round-trips through parseRecord', () => {
    assert.deepEqual(parseRecord(serializeRecord(full)), full);
    const old = { pid: 912, port: 5338, startedAt: '2025-06-01T10:00:00.000Z' };
    assert.deepEqual(parseRecord(serializeRecord(old)), old);
  });

  it('writes readable JSON ending in a newline, far below the size limit', () => {
    const bytes = serializeRecord(full);
    assert.equal(bytes.toString('utf8').endsWith('}\n'), true);
    assert.ok(bytes.length < MAX_RECORD_BYTES / 16);
  });
});

describe('createRecord', () => {
  it('names this process through the probe, with a port, and round-trips', () => {
    const token = newToken();
    const record = createRecord({ kind: 'port', port: 5338 }, 'percy', token, fakeProbe());
    assert.deepEqual(record, {
      portlock: 1,
      name: 'percy',
      pid: 1000,
      port: 5338,
      startedAt: new Date(FAKE_NOW).toISOString(),
      hostname: 'devbox',
      user: 'alice',
      processStart: '100',
      bootId: 'boot-current',
      token,
    });
    assert.deepEqual(parseRecord(serializeRecord(record)), record);
  });

  it('marks a record whose holder also holds the interlock, and names its network and pid namespaces', () => {
    const probe = fakeProbe({}, { netns: () => 'net:[1]', pidns: () => 'pid:[2]' });
    const record = createRecord({ kind: 'port', port: 5338 }, 'percy', newToken(), probe, true);
    assert.equal(record.interlock, true);
    assert.equal(record.netns, 'net:[1]');
    assert.equal(record.pidns, 'pid:[2]');
    assert.deepEqual(parseRecord(serializeRecord(record)), record);
  });

  it('writes a key instead of a port, and leaves out what the OS does not tell', () => {
    const probe = fakeProbe({}, { user: () => undefined, ownStartTime: () => undefined, bootId: () => undefined });
    const record = createRecord({ kind: 'key', key: 'jobs' }, 'percy', newToken(), probe);
    assert.equal(record.key, 'jobs');
    for (const field of ['port', 'user', 'processStart', 'bootId', 'netns', 'pidns', 'interlock']) {
      assert.equal(field in record, false, field);
    }
    assert.deepEqual(parseRecord(serializeRecord(record)), record);
  });

  it('writes every field in one order, whichever are present, with the token last', () => {
    const probe = fakeProbe({}, { netns: () => 'net:[1]', pidns: () => 'pid:[2]', threadId: 3 });
    const record = createRecord({ kind: 'port', port: 5338 }, 'percy', newToken(), probe, true, {
      presence: 'p',
      interlockUnavailable: 'EACCES',
      interlockKind: 'abstract-socket',
      holder: { url: 'http://localhost:5338', command: ['agent'] },
    });
    assert.deepEqual(Object.keys(record), [
      'portlock',
      'name',
      'pid',
      'port',
      'startedAt',
      'hostname',
      'user',
      'processStart',
      'bootId',
      'netns',
      'pidns',
      'thread',
      'presence',
      'interlock',
      'interlockKind',
      'interlockUnavailable',
      'command',
      'url',
      'token',
    ]);
    assert.deepEqual(Object.keys(createRecord({ kind: 'key', key: 'jobs' }, 'percy', newToken(), fakeProbe())), [
      'portlock',
      'name',
      'pid',
      'key',
      'startedAt',
      'hostname',
      'user',
      'processStart',
      'bootId',
      'token',
    ]);
  });

  it('leaves out the interlock kind of a holder without an interlock', () => {
    const record = createRecord({ kind: 'port', port: 5338 }, 'percy', newToken(), fakeProbe(), false, {
      interlockKind: 'abstract-socket',
    });
    assert.equal('interlock' in record, false);
    assert.equal('interlockKind' in record, false);
  });
});

describe('newToken', () => {
  it('is 32 hex digits, different every time, and accepted by parseRecord', () => {
    const tokens = new Set(Array.from({ length: 100 }, newToken));
    assert.equal(tokens.size, 100);
    for (const token of tokens) assert.match(token, /^[0-9a-f]{32}$/);
    const [token] = tokens;
    assert.equal(parse({ ...full, token })?.token, token);
  });
});
