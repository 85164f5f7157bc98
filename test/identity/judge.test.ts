import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { judgeHolder, judgeRecordFile, UNREADABLE_GRACE_MS, type Verdict } from '../../src/identity/judge.ts';
import type { ProcessInfo, ProcessProbe } from '../../src/identity/probe.ts';
import type { RecordFile } from '../../src/record/read-record.ts';
import type { LockRecord } from '../../src/types.ts';
import { FAKE_BOOT_MS, FAKE_NOW, type FakeProcess, fakeProbe, ticksAfterBoot } from '../helpers/fake-probe.ts';

const HOLDER = 4242;
const TOKEN = 'ab'.repeat(16);
// The holder started an hour after boot and took the lock a second later.
const HOLDER_START = ticksAfterBoot(3_600_000);
const TAKEN_AT = new Date(FAKE_BOOT_MS + 3_601_000).toISOString();

/** The holder as the process table shows it, with any field changed. */
const alive = (info: Partial<ProcessInfo> = {}, existence: FakeProcess['existence'] = 'alive'): FakeProcess => ({
  existence,
  info: { state: 'S', startTime: HOLDER_START, tgid: HOLDER, ...info },
});

function record(fields: Partial<LockRecord> = {}): LockRecord {
  return {
    portlock: 1,
    name: 'percy',
    pid: HOLDER,
    port: 5338,
    startedAt: TAKEN_AT,
    hostname: 'devbox',
    user: 'alice',
    processStart: HOLDER_START,
    bootId: 'boot-current',
    token: TOKEN,
    ...fields,
  };
}

const oldFormat = (startedAt: string): LockRecord => ({ pid: HOLDER, port: 5338, startedAt });

function judge(rec: LockRecord, probe: ProcessProbe, owned: string[] = []): Verdict {
  return judgeHolder(rec, { probe, ownsToken: (token) => owned.includes(token) });
}

function expectVerdict(verdict: Verdict, state: Verdict['state'], certainty: Verdict['certainty'], reason: RegExp) {
  assert.equal(verdict.state, state, verdict.reason);
  assert.equal(verdict.certainty, certainty, verdict.reason);
  assert.match(verdict.reason, reason);
}

describe('judgeHolder', () => {
  it('calls a live holder with a matching start time held, certain', () => {
    const verdict = judge(record(), fakeProbe({ [HOLDER]: alive() }));
    expectVerdict(verdict, 'held', 'certain', /process 4242 is alive and is the one that took the lock/);
    assert.equal(verdict.retryAfterMs, undefined);
  });

  it('calls a record from another host unknown, even when the pid is gone here', () => {
    const verdict = judge(record({ hostname: 'build-7' }), fakeProbe());
    expectVerdict(verdict, 'unknown', 'likely', /build-7.*devbox/);
    assert.equal(verdict.retryAfterMs, undefined, 'another host does not resolve itself by waiting');
  });

  it('calls a record naming this process held only while this process owns its token', () => {
    const own = fakeProbe({}, { pid: HOLDER });
    expectVerdict(judge(record(), own, [TOKEN]), 'held', 'certain', /this process holds it/);
    expectVerdict(judge(record(), own, ['cd'.repeat(16)]), 'stale', 'certain', /names this process/);
    expectVerdict(judge(oldFormat(TAKEN_AT), own, [TOKEN]), 'stale', 'certain', /does not hold it/);
  });

  it('calls a record from an earlier boot stale, even if its pid is alive now', () => {
    const verdict = judge(record({ bootId: 'boot-earlier' }), fakeProbe({ [HOLDER]: alive() }));
    expectVerdict(verdict, 'stale', 'certain', /before the machine last booted/);
  });

  it('does not judge by boot where either side has no boot id', () => {
    const probe = fakeProbe({ [HOLDER]: alive() }, { bootId: () => undefined });
    expectVerdict(judge(record({ bootId: 'boot-earlier' }), probe), 'held', 'certain', /alive/);
  });

  it('calls a gone pid stale', () => {
    expectVerdict(judge(record(), fakeProbe()), 'stale', 'certain', /process 4242 is gone/);
  });

  it('calls a pid that vanishes between the two looks stale', () => {
    const probe = fakeProbe({ [HOLDER]: { existence: 'alive', info: 'gone' } });
    expectVerdict(judge(record(), probe), 'stale', 'certain', /gone/);
  });

  it("counts another user's live process (EPERM) as alive, and says so", () => {
    const verdict = judge(record(), fakeProbe({ [HOLDER]: alive({}, 'other-user') }));
    expectVerdict(verdict, 'held', 'certain', /alive, owned by another user/);
  });

  it('calls a zombie stale, and a dead (X) process too', () => {
    expectVerdict(judge(record(), fakeProbe({ [HOLDER]: alive({ state: 'Z' }) })), 'stale', 'certain', /zombie/);
    expectVerdict(judge(record(), fakeProbe({ [HOLDER]: alive({ state: 'X' }) })), 'stale', 'certain', /exited/);
  });

  it('calls a thread id stale: its thread group id is not the pid', () => {
    const verdict = judge(record(), fakeProbe({ [HOLDER]: alive({ tgid: 4200 }) }));
    expectVerdict(verdict, 'stale', 'certain', /4242 is a thread of process 4200/);
  });

  it('calls a reused pid stale: the start time differs', () => {
    const later = ticksAfterBoot(7_200_000);
    const verdict = judge(record(), fakeProbe({ [HOLDER]: alive({ startTime: later }) }));
    expectVerdict(verdict, 'stale', 'certain', /pid 4242 was reused/);
  });

  it('calls an old-format record stale, likely, when its pid started after the lock was taken', () => {
    const probe = fakeProbe({ [HOLDER]: alive({ startTime: ticksAfterBoot(3_700_000) }) });
    expectVerdict(judge(oldFormat(TAKEN_AT), probe), 'stale', 'likely', /reused: that process started after/);
  });

  it('calls an old-format record held, likely, when its pid started before the lock was taken', () => {
    const probe = fakeProbe({ [HOLDER]: alive() });
    expectVerdict(judge(oldFormat(TAKEN_AT), probe), 'held', 'likely', /no start time to confirm/);
  });

  it('allows an old-format record the second of slack that boot time resolution needs', () => {
    // Started one second after the record's startedAt: within boot time's 1 s resolution.
    const probe = fakeProbe({ [HOLDER]: alive({ startTime: ticksAfterBoot(3_602_000) }) });
    expectVerdict(judge(oldFormat(TAKEN_AT), probe), 'held', 'likely', /no start time/);
  });

  it('calls an old-format record held, likely, where the boot time or startedAt is unknown', () => {
    const late = alive({ startTime: ticksAfterBoot(3_700_000) });
    const noBoot = fakeProbe({ [HOLDER]: late }, { bootTimeMs: () => undefined });
    expectVerdict(judge(oldFormat(TAKEN_AT), noBoot), 'held', 'likely', /no start time/);
  });

  it('calls a live pid held, likely, on an OS without /proc', () => {
    const probe = fakeProbe({ [HOLDER]: { existence: 'alive', info: undefined } });
    expectVerdict(judge(record(), probe), 'held', 'likely', /does not tell its start time/);
    const foreign = fakeProbe({ [HOLDER]: { existence: 'other-user', info: undefined } });
    expectVerdict(judge(record(), foreign), 'held', 'likely', /owned by another user/);
  });

  it('judges a record without a hostname as local', () => {
    const { hostname: _hostname, ...rest } = record();
    expectVerdict(judge(rest, fakeProbe()), 'stale', 'certain', /gone/);
  });
});

describe('judgeRecordFile', () => {
  const file = (fields: Partial<RecordFile>): RecordFile => ({
    record: undefined,
    identity: 'f'.repeat(32),
    mtimeMs: FAKE_NOW,
    size: 0,
    ...fields,
  });
  const context = { probe: fakeProbe(), ownsToken: () => false };

  it('judges a readable file by its record', () => {
    const verdict = judgeRecordFile(file({ record: record(), size: 300 }), {
      ...context,
      probe: fakeProbe({ [HOLDER]: alive() }),
    });
    expectVerdict(verdict, 'held', 'certain', /alive/);
  });

  it('calls a young empty file unknown, to look at again when the grace period ends', () => {
    const verdict = judgeRecordFile(file({ mtimeMs: FAKE_NOW - 300 }), context);
    expectVerdict(verdict, 'unknown', 'likely', /empty and 300 ms old/);
    assert.equal(verdict.retryAfterMs, UNREADABLE_GRACE_MS - 300);
  });

  it('calls a young garbage or oversized file unknown too', () => {
    const garbage = judgeRecordFile(file({ size: 12 }), context);
    expectVerdict(garbage, 'unknown', 'likely', /not a readable record/);
    assert.equal(garbage.retryAfterMs, UNREADABLE_GRACE_MS);
    const huge = judgeRecordFile(file({ size: 10_485_760 }), context);
    expectVerdict(huge, 'unknown', 'likely', /10485760 bytes, too large/);
  });

  it('gives a file whose mtime is slightly ahead of the clock the same grace', () => {
    const verdict = judgeRecordFile(file({ mtimeMs: FAKE_NOW + 200 }), context);
    assert.equal(verdict.state, 'unknown');
    assert.ok((verdict.retryAfterMs ?? 0) > 0);
  });

  it('calls an unreadable file stale once it is older than the grace period', () => {
    const verdict = judgeRecordFile(file({ size: 5, mtimeMs: FAKE_NOW - 60_000 }), context);
    expectVerdict(verdict, 'stale', 'certain', /not a readable record \(last written 1 min ago\)/);
    assert.equal(verdict.retryAfterMs, undefined);
    const edge = judgeRecordFile(file({ mtimeMs: FAKE_NOW - UNREADABLE_GRACE_MS }), context);
    assert.equal(edge.state, 'stale');
  });

  it('honours a shorter grace period from the context', () => {
    const verdict = judgeRecordFile(file({ mtimeMs: FAKE_NOW - 300 }), { ...context, graceMs: 100 });
    assert.equal(verdict.state, 'stale');
  });
});

describe('judgeHolder with the interlock known to be free', () => {
  const judgeFree = (rec: LockRecord, probe: ProcessProbe, hostLocal: boolean) =>
    judgeHolder(rec, { probe, ownsToken: () => false, interlockFree: { hostLocal } });

  it('calls a record whose holder held the interlock stale, even though its process is alive', () => {
    const verdict = judgeFree(record({ interlock: true }), fakeProbe({ [HOLDER]: alive() }), true);
    expectVerdict(verdict, 'stale', 'certain', /no longer holds the lock's interlock/);
  });

  it('judges a record written without an interlock by its process, as before', () => {
    expectVerdict(judgeFree(record(), fakeProbe({ [HOLDER]: alive() }), true), 'held', 'certain', /alive/);
    expectVerdict(judgeFree(oldFormat(TAKEN_AT), fakeProbe({ [HOLDER]: alive() }), true), 'held', 'likely', /alive/);
  });

  it("calls a port record from another host stale: this host's port is free", () => {
    const verdict = judgeFree(record({ hostname: 'build-7' }), fakeProbe(), true);
    expectVerdict(verdict, 'stale', 'certain', /host build-7/);
  });

  it('still calls a key record from another host unknown: a key is not bound to one host', () => {
    const verdict = judgeFree(record({ hostname: 'build-7', interlock: true }), fakeProbe(), false);
    expectVerdict(verdict, 'unknown', 'likely', /build-7/);
  });

  it("never calls a port record of another network namespace of this boot stale because this namespace's interlock is free", () => {
    // A container's port and the host's are two ports: a free name here says nothing of the other's holder.
    const probe = fakeProbe({ [HOLDER]: alive() }, { netns: () => 'net:[1]' });
    const verdict = judgeFree(record({ netns: 'net:[2]', interlock: true }), probe, true);
    expectVerdict(verdict, 'held', 'certain', /process 4242 is alive/);
    // Its holder gone: stale, by its identity, as any record.
    expectVerdict(
      judgeFree(record({ netns: 'net:[2]', interlock: true }), fakeProbe({}, { netns: () => 'net:[1]' }), true),
      'stale',
      'certain',
      /is gone/,
    );
    // Of another boot (another machine's kernel): another machine's port.
    const otherBoot = record({ netns: 'net:[2]', interlock: true, bootId: 'boot-other' });
    expectVerdict(judgeFree(otherBoot, probe, true), 'stale', 'certain', /another network namespace \(net:\[2\]\)/);
  });
});

describe('judgeHolder across namespaces, threads and impossible times', () => {
  const NS = { netns: () => 'net:[1]', pidns: () => 'pid:[1]' };
  const judgeFree = (rec: LockRecord, probe: ProcessProbe, hostLocal = false) =>
    judgeHolder(rec, { probe, ownsToken: () => false, interlockFree: { hostLocal } });

  it('never probes a pid of another pid namespace: unknown, saying so, even when that pid is alive here', () => {
    const probe = fakeProbe({ [HOLDER]: alive() }, NS);
    const verdict = judge(record({ netns: 'net:[1]', pidns: 'pid:[2]' }), probe);
    expectVerdict(verdict, 'unknown', 'likely', /process 4242 runs in another pid namespace \(pid:\[2\]\)/);
  });

  it("finds a holder of another pid namespace through the kernel's view of that namespace, never by its pid here", () => {
    const inside = record({ netns: 'net:[1]', pidns: 'pid:[2]' });
    const seeing = (there: ReturnType<NonNullable<ProcessProbe['inPidNamespace']>>) =>
      fakeProbe({}, { ...NS, inPidNamespace: (ns, pid) => (ns === 'pid:[2]' && pid === HOLDER ? there : 'gone') });
    expectVerdict(judge(inside, seeing('gone')), 'stale', 'certain', /of another pid namespace \(pid:\[2\]\) is gone/);
    const running = { state: 'S', startTime: HOLDER_START, tgid: HOLDER };
    expectVerdict(judge(inside, seeing(running)), 'unknown', 'certain', /alive there; stop it inside that namespace/);
    const reused = { ...running, startTime: ticksAfterBoot(9_000_000) };
    expectVerdict(judge(inside, seeing(reused)), 'stale', 'certain', /has exited/);
    expectVerdict(judge(inside, seeing(undefined)), 'unknown', 'likely', /cannot be checked from here/);
  });

  it('does not take a record of another pid namespace naming this pid for its own', () => {
    const probe = fakeProbe({}, { ...NS, pid: HOLDER });
    const verdict = judge(record({ netns: 'net:[1]', pidns: 'pid:[2]' }), probe, [TOKEN]);
    expectVerdict(verdict, 'unknown', 'likely', /another pid namespace/);
  });

  it('calls an interlocked record of another pid namespace stale when the interlock is free', () => {
    const verdict = judgeFree(record({ netns: 'net:[1]', pidns: 'pid:[2]', interlock: true }), fakeProbe({}, NS));
    expectVerdict(verdict, 'stale', 'certain', /another pid namespace.*no longer holds the lock's interlock/);
  });

  it('calls an interlocked key record of another hostname (UTS namespace) stale when this kernel frees the interlock', () => {
    const rec = record({ hostname: 'box-in-container', netns: 'net:[1]', interlock: true });
    expectVerdict(judgeFree(rec, fakeProbe({}, NS)), 'stale', 'certain', /no longer holds the lock's interlock/);
    // Another network namespace of this kernel: that interlock is not the one seen here, and its
    // holder, a container's of this machine whatever its hostname, is judged by its identity.
    const otherNet = record({ hostname: 'box-in-container', netns: 'net:[9]', interlock: true });
    expectVerdict(judgeFree(otherNet, fakeProbe({ [HOLDER]: alive() }, NS)), 'held', 'certain', /4242 is alive/);
    expectVerdict(judgeFree(otherNet, fakeProbe({}, NS)), 'stale', 'certain', /process 4242 is gone/);
    // Another boot: another machine's, whose processes cannot be checked from here.
    const otherBoot = record({ hostname: 'box-in-container', netns: 'net:[1]', bootId: 'x', interlock: true });
    expectVerdict(judgeFree(otherBoot, fakeProbe({}, NS)), 'unknown', 'likely', /box-in-container/);
  });

  it('judges a record with a presence name by whether the kernel still has that name bound', () => {
    const bound = new Set(['1234567890abcdef']);
    const probe = fakeProbe({ [HOLDER]: alive() }, { ...NS, presenceBound: (id) => bound.has(id) });
    const inside = { netns: 'net:[1]', pidns: 'pid:[2]' };
    expectVerdict(
      judge(record({ ...inside, presence: '1234567890abcdef' }), probe),
      'unknown',
      'certain',
      /runs in another pid namespace \(pid:\[2\]\) and is alive there/,
    );
    expectVerdict(
      judge(record({ ...inside, presence: 'fedcba0987654321' }), probe),
      'stale',
      'certain',
      /process 4242 in another pid namespace \(pid:\[2\]\) is gone/,
    );
  });

  it("calls a record of another thread of this process held while that thread's presence name is bound", () => {
    const bound = new Set<string>(['1234567890abcdef']);
    const probe = fakeProbe({}, { ...NS, pid: HOLDER, threadId: 0, presenceBound: (id) => bound.has(id) });
    const rec = record({ netns: 'net:[1]', pidns: 'pid:[1]', thread: 3, presence: '1234567890abcdef' });
    expectVerdict(judge(rec, probe), 'held', 'certain', /thread 3 of this process \(pid 4242\) holds it/);
    bound.clear();
    expectVerdict(judge(rec, probe), 'stale', 'certain', /is gone/);
  });

  it('keeps a record of another thread held, likely, where no presence name can tell', () => {
    const probe = fakeProbe({}, { pid: HOLDER, threadId: 0, ownStartTime: () => HOLDER_START });
    expectVerdict(judge(record({ thread: 2 }), probe), 'held', 'likely', /thread 2 of this process/);
    // Written by an earlier process that had this pid: stale.
    const earlier = fakeProbe({}, { pid: HOLDER, threadId: 0, ownStartTime: () => ticksAfterBoot(9_000_000) });
    expectVerdict(judge(record({ thread: 2 }), earlier), 'stale', 'certain', /does not hold it/);
  });

  it('takes an impossible startedAt for no evidence: unknown (never signalled), until the pid started after the file was written', () => {
    const future = new Date(FAKE_NOW + 3_600_000).toISOString();
    const probe = fakeProbe({ [HOLDER]: alive() });
    const writtenBefore = FAKE_BOOT_MS + 3_700_000; // after the holder started
    for (const startedAt of [future, 'yesterday']) {
      const verdict = judgeHolder(oldFormat(startedAt), { probe, ownsToken: () => false }, writtenBefore);
      expectVerdict(verdict, 'unknown', 'likely', /(lies in the future|is not a time).*remove the lock file/);
      // The file was last written before that pid's process started: not its writer.
      const reused = judgeHolder(oldFormat(startedAt), { probe, ownsToken: () => false }, FAKE_BOOT_MS + 1000);
      expectVerdict(reused, 'stale', 'likely', /started after the lock file was last written/);
    }
  });
});
