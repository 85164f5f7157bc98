import type { ProcessProbe } from '../identity/probe.ts';
import { crypto } from '../lazy-crypto.ts';
import { isPort, type LockScope } from '../options/validate.ts';
import type { HolderInfo, HolderUpdate, InterlockKind, LockRecord, PublicLockRecord } from '../types.ts';

/** Records larger than this are garbage by definition and are never read whole. */
export const MAX_RECORD_BYTES = 64 * 1024;

/** 122 random bits as 32 hex digits; randomUUID draws from a cached pool, several times faster. */
export function newToken(): string {
  return crypto().randomUUID().replaceAll('-', '');
}

/** The record this process publishes when it takes a lock. */
export function createRecord(
  scope: LockScope,
  name: string,
  token: string,
  probe: ProcessProbe,
  interlocked = false,
  extra: {
    presence?: string | undefined;
    interlockUnavailable?: string | undefined;
    holder?: HolderInfo | undefined;
    /** Which interlock it holds, where it holds one. */
    interlockKind?: InterlockKind | undefined;
  } = {},
): LockRecord {
  // Built field by field, in the order a reader sees them: a new holder makes its record in the
  // hand-over, while the lock stands free to nobody, and a literal of a dozen conditional spreads
  // costs it several times as long.
  const startedAt = new Date(probe.now()).toISOString();
  const hostname = probe.hostname();
  const record: LockRecord =
    scope.kind === 'port'
      ? { portlock: 1, name, pid: probe.pid, port: scope.port, startedAt, hostname }
      : { portlock: 1, name, pid: probe.pid, key: scope.key, startedAt, hostname };
  setDefined(record, 'user', probe.user());
  setDefined(record, 'processStart', probe.ownStartTime());
  setDefined(record, 'bootId', probe.bootId());
  setDefined(record, 'netns', probe.netns?.());
  setDefined(record, 'pidns', probe.pidns?.());
  setDefined(record, 'thread', probe.threadId);
  setDefined(record, 'presence', extra.presence);
  if (interlocked) {
    record.interlock = true;
    setDefined(record, 'interlockKind', extra.interlockKind);
  }
  setDefined(record, 'interlockUnavailable', extra.interlockUnavailable);
  if (extra.holder !== undefined) Object.assign(record, holderFields(extra.holder));
  record.token = token;
  return record;
}

function setDefined<K extends keyof LockRecord>(record: LockRecord, key: K, value: LockRecord[K] | undefined): void {
  if (value !== undefined) record[key] = value;
}

/** The holder's own description, with the fields it left out left out (not `undefined`). */
export function holderFields(holder: HolderUpdate): HolderUpdate {
  const fields: HolderUpdate = {};
  for (const key of HOLDER_KEYS) {
    if (holder[key] !== undefined) Object.assign(fields, { [key]: holder[key] });
  }
  return fields;
}

const HOLDER_KEYS = ['command', 'cwd', 'url', 'log', 'state', 'commandPid'] as const;

export function serializeRecord(record: LockRecord): Buffer {
  return Buffer.from(`${JSON.stringify(record, null, 2)}\n`);
}

const isString = (value: unknown): value is string => typeof value === 'string';
const optional =
  <T>(check: (value: unknown) => value is T) =>
  (value: unknown): boolean =>
    value === undefined || check(value);
const isPid = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) > 0;

const FIELD_CHECKS: Record<string, (value: unknown) => boolean> = {
  portlock: (value) => value === undefined || value === 1,
  name: optional(isString),
  port: optional(isPort),
  key: optional(isString),
  hostname: optional(isString),
  user: optional(isString),
  processStart: optional((value): value is string => isString(value) && /^\d+$/.test(value)),
  bootId: optional(isString),
  netns: optional(isString),
  pidns: optional(isString),
  thread: optional((value): value is number => Number.isSafeInteger(value) && (value as number) >= 0),
  presence: optional((value): value is string => isString(value) && /^[0-9a-f]{16,64}$/.test(value)),
  interlock: (value) => value === undefined || value === true,
  interlockKind: (value) =>
    value === undefined || value === 'abstract-socket' || value === 'named-pipe' || value === 'socket-file',
  interlockUnavailable: optional(isString),
  command: optional(
    (value): value is string[] => Array.isArray(value) && value.length <= 4096 && value.every(isString),
  ),
  cwd: optional(isString),
  url: optional(isString),
  log: optional(isString),
  state: optional((value): value is string => value === 'starting' || value === 'ready' || value === 'stopping'),
  commandPid: optional(isPid),
  supervisorPid: optional(isPid),
  socketInode: optional((value): value is string => isString(value) && /^\d{1,20}$/.test(value)),
  socketFile: optional((value): value is string => isString(value) && /^\d{1,20}:\d{1,20}$/.test(value)),
  token: optional((value): value is string => isString(value) && /^[0-9a-f]{16,128}$/.test(value)),
};

/**
 * Reads a record written by portlock or in Percy's original `{ pid, port, startedAt }` format.
 * Anything else is unreadable (undefined): a pid is the least a record must name.
 */
export function parseRecord(bytes: Buffer): LockRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const fields = value as Record<string, unknown>;
  if (!isPid(fields.pid) || !isString(fields.startedAt)) return undefined;
  for (const [field, check] of Object.entries(FIELD_CHECKS)) {
    if (!check(fields[field])) return undefined;
  }
  const record: LockRecord = { pid: fields.pid, startedAt: fields.startedAt };
  for (const field of Object.keys(FIELD_CHECKS) as (keyof LockRecord)[]) {
    if (fields[field] !== undefined) Object.assign(record, { [field]: fields[field] });
  }
  return record;
}

/** The record as anyone but its holder may see it. */
export function publicRecord(record: LockRecord): PublicLockRecord {
  const { token: _token, ...rest } = record;
  return rest;
}
