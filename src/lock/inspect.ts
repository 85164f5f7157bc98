import { readdirSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { LockPathError, PATH_PROBLEMS } from '../errors.ts';
import { type ProcessProbe, systemProbe } from '../identity/probe.ts';
import { ASK_TIMEOUT_MS, type Asked } from '../interlock/client.ts';
import { interlockToAsk } from '../interlock/flavour.ts';
import {
  boundAbstractNames,
  isBound,
  kernelHolders,
  parsedUnixTable,
  runsWhollyAs,
  type SocketOwners,
  socketOwners,
  type UnixTable,
} from '../interlock/holders.ts';
import { interlockName } from '../interlock/name.ts';
import { socketOf } from '../interlock/unlisted-socket-file.ts';
import { lockFileName, networkOfFileName, resolveListDir, resolveTarget, scopeOfFileName } from '../options/resolve.ts';
import { type LockScope, validateInterlock } from '../options/validate.ts';
import { printable } from '../printable.ts';
import { type RecordFile, readRecordFile } from '../record/read-record.ts';
import { publicRecord } from '../record/record.ts';
import type {
  InspectOptions,
  InterlockHolder,
  InterlockOption,
  ListOptions,
  LockInspection,
  PublicLockRecord,
} from '../types.ts';
import { heldByAnswer, heldByUnlisted } from './interlock-answer.ts';
import { judgeWith } from './judge-here.ts';
import { checkLockDir } from './lock-dir.ts';
import { askUnlessOrphaned, kernelAfterAsk, orphaned } from './orphan.ts';
import { isOtherNetworks, recordPathHere } from './record-path.ts';

/** Interlocks asked at once by `listLocks`. */
const CONCURRENCY = 32;

/** A lock as judged now: what its file says, and what the interlock adds. */
interface Judgement {
  /** The lock file, when there is one and it could be read. */
  file: RecordFile | undefined;
  verdict: Pick<LockInspection, 'state' | 'certainty' | 'reason' | 'notOwners'>;
  /** The record to show: the holder's own answer where the kernel confirms it, else the file's. */
  record: PublicLockRecord | undefined;
  /** The processes the kernel says hold the lock's interlock, where it was asked. */
  holders?: InterlockHolder[];
  /** An answer on the interlock that the kernel contradicts. */
  claim?: PublicLockRecord;
  /** Set when the kernel's holders hold it orphaned (see `orphaned`). */
  orphaned?: true;
  /** A live socket at the lock's socket file that the kernel here does not list (see `LockInspection.unlistedSocket`). */
  unlisted?: LockInspection['unlistedSocket'];
}

const FREE: Asked = { kind: 'free' };
// No lock file: nothing for the judge to judge.
const FREE_VERDICT = { state: 'free', certainty: 'certain', reason: 'there is no lock file' } as const;

/** How a look at a lock may be cut short. */
interface Look {
  /** The kernel's table of bound names, if the caller has read it: a name missing there is free. */
  bound?: Set<string> | undefined;
  /** How long the interlock's holder may take to answer. */
  askTimeoutMs?: number;
  /** One scan of the processes' descriptors shared by many looks. */
  owners?: () => SocketOwners;
  /** One reading of the kernel's table of Unix sockets shared by many looks. */
  unixTable?: () => UnixTable | undefined;
}

/** Reads the lock file, asks the interlock, and judges the lock. Changes nothing. */
export async function judgeLock(
  path: string,
  scope: LockScope,
  dir: string,
  interlock: InterlockOption,
  probe: ProcessProbe,
  { bound, askTimeoutMs = ASK_TIMEOUT_MS, owners, unixTable }: Look = {},
): Promise<Judgement> {
  let file: RecordFile | undefined;
  let unreadable: string | undefined;
  try {
    file = readRecordFile(path);
  } catch (error) {
    unreadable =
      error instanceof LockPathError
        ? `the lock path ${PATH_PROBLEMS[error.problem]}`
        : `the lock file cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`;
  }
  const shown = file?.record && publicRecord(file.record);
  // A port record of another network namespace (a container's, or the host's): its interlock is
  // that namespace's, which this one cannot ask. Its holder is judged by identity alone.
  if (file?.record !== undefined && isOtherNetworks(file.record, probe)) {
    // Never `held` here: its holder serves that namespace's port, which is not reachable as this one's.
    const { state, certainty, reason } = judgeWith(probe)(file);
    const verdict = {
      state: state === 'held' ? 'unknown' : state,
      certainty,
      reason: `a lock of another network namespace (${file.record.netns}), whose port is not this one's: ${reason}`,
    } as const;
    return { file, verdict, record: shown };
  }
  // The kind of interlock the record's holder holds, else the one the option names (none with `off`).
  const asking = await interlockToAsk(interlock, scope, dir, file?.record);
  const name = asking?.name;
  // A name missing from the kernel's table of bound names is free: no need to knock.
  const unbound = name !== undefined && bound !== undefined && !isBound(bound, name);
  // Held by processes that cannot answer (none waits on the name's socket): the kernel says who,
  // and nobody waits a second for an answer that cannot come.
  const port = scope.kind === 'port' ? scope.port : undefined;
  const heard =
    name === undefined
      ? undefined
      : unbound
        ? { asked: FREE }
        : await askUnlessOrphaned(
            name,
            () => kernelHolders(name, owners, undefined, unixTable),
            () => file?.record,
            port,
            askTimeoutMs,
          );
  if (heard?.orphan !== undefined) {
    const verdict = { state: 'held', certainty: 'certain', reason: heard.orphan.reason } as const;
    return { file, verdict, record: undefined, holders: heard.orphan.holders, orphaned: true };
  }
  const asked = heard?.asked;
  // Someone holds the kernel name: held, whatever the file says. Who, the kernel says (read again
  // unless the holder that answered was seen before: the name may have changed hands meanwhile).
  const kernel =
    name === undefined || unbound || asked === undefined
      ? undefined
      : kernelAfterAsk(asked, heard?.kernel, () => kernelHolders(name, owners, undefined, unixTable));
  // A socket file that answers where the kernel here lists no socket: held from another network
  // namespace, whatever it claims (see heldByUnlisted).
  const held =
    (asked && kernel && heldByAnswer(asked, probe, kernel, scope)) ??
    (name !== undefined && asked !== undefined && kernel?.state === 'free'
      ? await heldByUnlisted(name, asked, file)
      : undefined);
  if (held?.record !== undefined && file?.record !== undefined && networkOfFileName(basename(path)) !== undefined) {
    // This network namespace's own file of a port, beside the plain one: the interlock's holder
    // vouches for the record it keeps, and for no other. A record here that names another process
    // is one whose holder left the interlock, which the kernel frees only when it is gone.
    const { pid, startedAt } = file.record;
    if (held.record.pid !== pid || held.record.startedAt !== startedAt) {
      const reason = `process ${pid} no longer holds the port's interlock: process ${held.record.pid} holds it, and keeps its record in another file`;
      return { file, verdict: { state: 'stale', certainty: 'certain', reason }, record: shown };
    }
  }
  if (held !== undefined) {
    // An answer the kernel does not confirm is not shown; the record is, where the kernel
    // cannot tell who holds the name (at most `likely`), or where it names the record's process.
    const recordHolds = shown !== undefined && held.holders.some((holder) => holder.pid === shown.pid);
    // A socket unlisted here is the kernel's word alone: no record on file speaks for it.
    const record =
      held.record ?? (held.unlisted === undefined && (held.claim === undefined || recordHolds) ? shown : undefined);
    return {
      file,
      verdict: held.verdict,
      record,
      holders: held.holders,
      ...(held.claim && { claim: held.claim }),
      ...(held.unlisted && {
        unlisted: socketOf(held.unlisted),
      }),
    };
  }
  if (unreadable !== undefined) {
    return { file, verdict: { state: 'unknown', certainty: 'certain', reason: unreadable }, record: undefined };
  }
  if (file === undefined) return { file, verdict: FREE_VERDICT, record: undefined };
  return {
    file,
    verdict: judgeWith(probe, asked && { hostLocal: scope.kind === 'port', kind: asking?.kind })(file),
    record: shown,
  };
}

/** A judgement as `inspectLock` reports it. */
export function toInspection(
  path: string,
  {
    verdict,
    record,
    holders,
    claim,
    orphaned,
    unlisted,
  }: Pick<Judgement, 'verdict' | 'record' | 'holders' | 'claim' | 'orphaned' | 'unlisted'>,
): LockInspection {
  return {
    state: verdict.state,
    path,
    ...(record && { record }),
    // A reason may quote a record (its host, its name): nothing in it reaches a terminal raw.
    reason: printable(verdict.reason),
    certainty: verdict.certainty,
    ...(holders !== undefined && holders.length > 0 && { holders }),
    ...(claim && { claim }),
    ...(orphaned && { orphaned }),
    ...(unlisted && { unlistedSocket: unlisted }),
    ...(verdict.notOwners !== undefined && { notOwners: verdict.notOwners }),
  };
}

async function inspectPath(
  path: string,
  scope: LockScope,
  dir: string,
  interlock: InterlockOption,
  probe: ProcessProbe,
  look?: Look,
): Promise<LockInspection> {
  return toInspection(path, await judgeLock(path, scope, dir, interlock, probe, look));
}

/** `inspectLock` with the probe as a parameter, and a look that may be cut short. */
export async function inspectLockWith(
  options: InspectOptions,
  probe: ProcessProbe,
  look?: Look,
): Promise<LockInspection> {
  const { scope, dir } = resolveTarget(options, 'inspectLock');
  // Checked as acquireLock checks it: no symlink followed, nobody else's writable directory.
  checkLockDir(dir);
  const path = recordPathHere(dir, scope, probe);
  return inspectPath(path, scope, dir, validateInterlock(options.interlock), probe, look);
}

/** Reports whether a lock is free, held, stale or unknown, and why. Changes nothing on disk. */
export async function inspectLock(options: InspectOptions): Promise<LockInspection> {
  return inspectLockWith(options, systemProbe);
}

async function mapLimited<T, R>(items: T[], limit: number, map: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) results[i] = await map(items[i] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Inspects every lock file in a directory (`dir`, or the default directory of `name`). */
export async function listLocks(options: ListOptions = {}): Promise<LockInspection[]> {
  const { dir } = resolveListDir(options);
  const interlock = validateInterlock(options.interlock);
  const where = checkLockDir(dir);
  if (where === undefined) return [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const locks: { name: string; scope: LockScope }[] = [];
  for (const name of names) {
    const scope = scopeOfFileName(name);
    if (scope !== undefined) locks.push({ name, scope });
  }
  locks.sort((a, b) => {
    // A port's plain file before any network namespace's own file of it (see record-path.ts).
    if (a.scope.kind === 'port' && b.scope.kind === 'port' && a.scope.port !== b.scope.port) {
      return a.scope.port - b.scope.port;
    }
    if (a.scope.kind !== b.scope.kind) return a.scope.kind === 'port' ? -1 : 1;
    return a.name < b.name ? -1 : 1;
  });
  const bound = interlock === 'off' ? undefined : boundAbstractNames();
  let scanned: SocketOwners | undefined;
  const owners = () => {
    scanned ??= socketOwners();
    return scanned;
  };
  // Read once for the whole listing, as `owners`: every look would read and parse the table again,
  // and it holds every listed lock's sockets (a listing of n locks would cost n times n).
  let table: UnixTable | undefined | null = null;
  const unixTable = () => {
    if (table === null) table = parsedUnixTable();
    return table;
  };
  const inspected = await mapLimited(locks, CONCURRENCY, (lock) =>
    inspectPath(join(dir, lock.name), lock.scope, dir, interlock, systemProbe, { bound, owners, unixTable }),
  );
  const filed = new Set(locks.flatMap((lock) => (lock.scope.kind === 'port' ? [lock.scope.port] : [])));
  const orphans = bound === undefined ? [] : orphansWithoutFile(dir, where.uid, bound, filed, owners, unixTable);
  if (orphans.length === 0) return inspected;
  // In port order, with the keys after the ports as before.
  const port = (lock: LockInspection) => {
    const scope = scopeOfFileName(basename(lock.path));
    return scope?.kind === 'port' ? scope.port : Number.POSITIVE_INFINITY;
  };
  return [...inspected, ...orphans].sort((a, b) => port(a) - port(b));
}

// A port's kernel name as /proc/net/unix shows it: padded (NULs shown as `@`), or the legacy form.
const PORT_NAME = /^@portlock\/port-([1-9]\d{0,4})@*$/;

/** Whether two paths are one directory. */
function sameDir(a: string, b: string): boolean {
  try {
    const [one, two] = [statSync(a), statSync(b)];
    return one.dev === two.dev && one.ino === two.ino;
  } catch {
    return resolve(a) === resolve(b);
  }
}

/**
 * The ports held orphaned (see `orphaned`) that have no lock file in `dir`: a command that outlived
 * its `portlock run`, whose lock file went with it. Each is this directory's where its holders run
 * as the directory's owner and their environment names this one as the lock directory they
 * inherited the lock from (see `PORTLOCK_HANDOFF`).
 */
function orphansWithoutFile(
  dir: string,
  owner: number | undefined,
  bound: Set<string>,
  filed: Set<number>,
  owners: () => SocketOwners,
  unixTable: () => UnixTable | undefined,
): LockInspection[] {
  const ports = new Set<number>();
  for (const shown of bound) {
    const port = Number(PORT_NAME.exec(shown)?.[1]);
    if (port >= 1 && port <= 65535 && !filed.has(port)) ports.add(port);
  }
  const found: LockInspection[] = [];
  for (const port of [...ports].sort((a, b) => a - b)) {
    const scope = { kind: 'port', port } as const;
    const name = interlockName(scope, dir);
    if (name === undefined) continue;
    const orphan = orphaned(kernelHolders(name, owners, undefined, unixTable), undefined, port);
    if (orphan === undefined) continue;
    if (owner !== undefined && !orphan.holders.every((holder) => runsWhollyAs(holder, owner))) continue;
    // Only this directory's: another's, or one that cannot be told, is that port's own to report.
    if (orphan.dir === undefined || !sameDir(orphan.dir, dir)) continue;
    found.push(
      toInspection(join(dir, lockFileName(scope)), {
        verdict: { state: 'held', certainty: 'certain', reason: orphan.reason },
        record: undefined,
        holders: orphan.holders,
        orphaned: true,
      }),
    );
  }
  return found;
}
