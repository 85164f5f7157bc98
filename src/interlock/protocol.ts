import { parseRecord, publicRecord } from '../record/record.ts';
import type { PublicLockRecord } from '../types.ts';
import { SUN_PATH_BYTES } from './name.ts';

/**
 * The holder's interlock answers one request per connection, as a line of JSON:
 * - `{"v":1,"op":"who"}`: the holder's public record (never its token), with the path of its lock
 *   file (`lockFile`: a port's name is the same for every lock directory), its own command line
 *   (`argv`) and working directory (`cwd`), which the asker believes only where the kernel vouches
 *   for the process that answered;
 * - `{"v":1,"op":"stop","token":"…"}`: asks the holder to stop; the token proves the asker can
 *   read the holder's 0600 record;
 * - `{"v":1,"op":"wait","since":…,"pid":…}`: keeps the connection open until the lock is released,
 *   so a waiter learns at once (the kernel closes it too when the holder dies). `since` (ms since
 *   the epoch) is when the waiter started waiting, `pid` its process: the holder keeps its waiters
 *   in the order of `since` and tells each its place with
 *   `{"v":1,"ok":true,"waiting":true,"ahead":n,"after":pid,"holder":pid}` lines: how many are
 *   ahead of it, the pid of the one just ahead, and the holder's own pid. On the release the head
 *   takes the lock; each other waiter lets the one ahead of it go first and queues again with
 *   the successor. These are claims of the waiters about themselves, for ordering only.
 *
 *   A waiter may add `"park":id`, naming an abstract socket of its own (see {@link parkName}) on
 *   which it listens while it waits. The holder then adds `"behind":id`, the park of the waiter just
 *   ahead, to a place with waiters ahead: the waiter told so may close its connection and instead
 *   connect to that park, where it stays until the one ahead has had its turn (its park closes), so
 *   that a release or a holder's death wakes only the head of the queue. The holder keeps such a
 *   waiter's place after its connection closes, for newcomers to queue behind it. A park is a claim
 *   too: it may delay a waiter, bounded, and never takes the place of the kernel's arbitration.
 */
export const PROTOCOL_VERSION = 1;

/** A request longer than this is refused unread. */
export const MAX_REQUEST_BYTES = 4096;

/** A client that has not sent a whole request by then is disconnected. */
export const REQUEST_TIMEOUT_MS = 1000;

/** A `who` answer's `lockFile` is at most this long, and its `argv` at most this many characters in all. */
const MAX_PATH_CHARS = 4096;
const MAX_ARGV_CHARS = 4096;

/**
 * The holder's command line as a `who` answer carries it: whole words, as many as fit in
 * {@link MAX_ARGV_CHARS} (the last one cut short), so that an answer always fits in one reply.
 */
export function answerArgv(argv: readonly string[]): string[] {
  const kept: string[] = [];
  let left = MAX_ARGV_CHARS;
  for (const word of argv) {
    if (left <= 0) break;
    kept.push(word.slice(0, left));
    left -= word.length + 1;
  }
  return kept;
}

/**
 * What a `who` answer says beside its record (see `LockRecord.lockFile` and `argv`), where it is
 * well-formed. Parsed here, not with the record: a record file never carries them.
 */
function answerExtras(record: unknown): Pick<PublicLockRecord, 'lockFile' | 'argv'> {
  if (typeof record !== 'object' || record === null) return {};
  const { lockFile, argv } = record as Record<string, unknown>;
  const path =
    typeof lockFile === 'string' &&
    lockFile.startsWith('/') &&
    lockFile.length <= MAX_PATH_CHARS &&
    !lockFile.includes('\0')
      ? lockFile
      : undefined;
  const words =
    Array.isArray(argv) &&
    argv.every((word) => typeof word === 'string') &&
    argv.reduce((total: number, word: string) => total + word.length + 1, 0) <= MAX_ARGV_CHARS + 1
      ? (argv as string[])
      : undefined;
  return { ...(path !== undefined && { lockFile: path }), ...(words !== undefined && { argv: words }) };
}

/** What names a waiter's park: its pid and 128 random bits, in hex. */
const PARK_ID = /^[1-9][0-9]{0,9}-[0-9a-f]{32}$/;

function isParkId(value: unknown): value is string {
  return typeof value === 'string' && PARK_ID.test(value);
}

/**
 * The abstract socket name of the park `id` (Linux), padded like a lock's name so that every Node
 * version binds and connects to the same kernel name.
 */
export function parkName(id: string): string {
  return `\0portlock/park-${id}`.padEnd(SUN_PATH_BYTES, '\0');
}

export type Request =
  | { op: 'who' }
  | { op: 'stop'; token: string }
  | { op: 'wait'; since?: number; pid?: number; park?: string };

type ErrorCode = 'EBADREQUEST' | 'ETOOLARGE' | 'EVERSION' | 'EDENIED' | 'ENOTSUP' | 'EBUSY';

export type Reply =
  | { v: 1; ok: true; record: PublicLockRecord }
  | { v: 1; ok: true; stopping: true }
  | { v: 1; ok: true; waiting: true; ahead?: number; after?: number; holder?: number; behind?: string }
  | { v: 1; ok: false; error: { code: ErrorCode; message: string } };

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

export function errorReply(code: ErrorCode, message: string): Reply {
  return { v: PROTOCOL_VERSION, ok: false, error: { code, message } };
}

export function encode(message: Reply | (Request & { v: number })): string {
  return `${JSON.stringify(message)}\n`;
}

/** Reads one request line; anything unexpected becomes an error reply to send back. */
export function parseRequest(line: string): Request | Reply {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return errorReply('EBADREQUEST', 'the request is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return errorReply('EBADREQUEST', 'the request is not a JSON object');
  }
  const { v, op, token, since, pid, park } = value as Record<string, unknown>;
  if (v !== PROTOCOL_VERSION) return errorReply('EVERSION', `protocol version ${PROTOCOL_VERSION} is spoken here`);
  if (op === 'who') return { op };
  if (op === 'wait') {
    return {
      op,
      ...(typeof since === 'number' && Number.isFinite(since) && { since }),
      ...(isCount(pid) && pid > 0 && { pid }),
      ...(isParkId(park) && { park }),
    };
  }
  if (op === 'stop') {
    return typeof token === 'string' && token.length <= 256
      ? { op, token }
      : errorReply('EBADREQUEST', 'stop needs the token from the lock record');
  }
  const shown = typeof op === 'string' ? JSON.stringify(op).slice(0, 40) : `of type ${typeof op}`;
  return errorReply('EBADREQUEST', `unknown request ${shown}`);
}

/** Reads a reply line from a holder; undefined when it is not one (a holder may be anyone). */
export function parseReply(line: string): Reply | undefined {
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || value.v !== PROTOCOL_VERSION) return undefined;
  if (value.ok === false) {
    const error = value.error as Record<string, unknown> | null | undefined;
    return typeof error?.code === 'string' && typeof error.message === 'string' ? (value as Reply) : undefined;
  }
  if (value.ok !== true) return undefined;
  if ('record' in value) {
    const record = parseRecord(Buffer.from(JSON.stringify(value.record ?? null)));
    if (record === undefined) return undefined;
    return { v: PROTOCOL_VERSION, ok: true, record: { ...publicRecord(record), ...answerExtras(value.record) } };
  }
  if (value.waiting === true) {
    const { ahead, after, holder, behind } = value;
    return {
      v: PROTOCOL_VERSION,
      ok: true,
      waiting: true,
      ...(isCount(ahead) && { ahead }),
      ...(isCount(after) && { after }),
      ...(isCount(holder) && { holder }),
      ...(isParkId(behind) && { behind }),
    };
  }
  return value.stopping === true ? { v: PROTOCOL_VERSION, ok: true, stopping: true } : undefined;
}
