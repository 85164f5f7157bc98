import { existsSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { otherNetworkHere, type Verdict } from '../identity/judge.ts';
import { type ProcessProbe, systemProbe } from '../identity/probe.ts';
import { recordedKind } from '../interlock/flavour.ts';
import { lockFileName, networkLockFileName } from '../options/resolve.ts';
import type { LockScope } from '../options/validate.ts';
import type { RecordFile } from '../record/read-record.ts';
import { readRecordFileQuietly } from '../record/read-record.ts';
import type { InterlockKind, LockRecord } from '../types.ts';

/**
 * Where the record of a port lock lives, seen from one network namespace.
 *
 * A port is a network namespace's own: the host's port 8080 and a container's are two ports, and
 * their abstract interlocks two names (a socket file, or a record alone, is one lock for all that
 * share it). Their records share one lock directory when the container shares the host's home,
 * and one file name, `agent-<port>.lock`. That plain file stays the record of a port lock whenever
 * there is no clash. When it holds the record of another network namespace of this kernel, held
 * through that namespace's abstract socket, whose holder is not provably gone, a holder in this
 * namespace keeps its record beside it, in `agent-<port>.net-<inode>.lock` (the inode of this
 * namespace, as `/proc/self/ns/net` names it), and never replaces the other's. Every reader in a
 * namespace finds that namespace's record through {@link recordPathHere}.
 */

/** This network namespace's own file of a port lock, or undefined (a key; no network namespace to name). */
export function networkRecordPath(dir: string, scope: LockScope, probe: ProcessProbe): string | undefined {
  const netns = scope.kind === 'port' ? probe.netns?.() : undefined;
  const file = netns === undefined || scope.kind !== 'port' ? undefined : networkLockFileName(scope.port, netns);
  return file === undefined ? undefined : join(dir, file);
}

/**
 * Whether a record is of a port lock of another network namespace of this kernel, held through
 * that namespace's own abstract socket: its port is not this one. A holder of a socket file (shared
 * by whoever shares its directory) or of a record alone holds one lock for every namespace that
 * shares the lock directory: its record is everyone's, at the plain path.
 */
export function isOtherNetworks(record: LockRecord | undefined, probe: ProcessProbe): boolean {
  return (
    record !== undefined &&
    record.port !== undefined &&
    recordedKind(record) === 'abstract-socket' &&
    otherNetworkHere(record, probe) !== undefined
  );
}

/**
 * The record path of a lock in this network namespace: the plain file, unless it holds the record
 * of another network namespace of this kernel, or is absent while this namespace's own file is
 * there (its holder took it while the other's record stood); then this namespace's own file.
 * Read-only: looking changes nothing.
 */
export function recordPathHere(dir: string, scope: LockScope, probe: ProcessProbe = systemProbe): string {
  const plain = join(dir, lockFileName(scope));
  const own = networkRecordPath(dir, scope, probe);
  if (own === undefined) return plain;
  let record: LockRecord | undefined;
  try {
    // Anything at the plain path that is not another namespace's record (unreadable, a symlink) is shown as it is.
    if (!existsSync(plain)) return existsSync(own) ? own : plain;
    record = readRecordFileQuietly(plain)?.record;
  } catch {
    return plain;
  }
  return isOtherNetworks(record, probe) ? own : plain;
}

/**
 * Where an acquirer that holds a port's abstract-socket interlock, which is its network
 * namespace's alone, keeps its record when the plain file is another namespace's: undefined for
 * any other lock (a key; a socket file, shared by whoever shares its directory; no interlock, where
 * the plain file is the only place every holder of the port looks).
 */
export function networkFallback(
  path: string | undefined,
  kind: InterlockKind | undefined,
  probe: ProcessProbe,
): { path: string; foreign: (record: LockRecord | undefined) => boolean } | undefined {
  if (kind !== 'abstract-socket') return undefined;
  return path === undefined ? undefined : { path, foreign: (record) => isOtherNetworks(record, probe) };
}

/** Whether anything is at `path`; false where it cannot be looked at either. */
function existsQuietly(path: string): boolean {
  try {
    return lstatSync(path, { throwIfNoEntry: false }) !== undefined;
  } catch {
    return false;
  }
}

/**
 * A live record of this port in this network namespace's own file, written by another holder: one
 * that holds the port through its abstract socket and kept its record there, beside another
 * namespace's plain file. A taker by the plain file alone (no interlock, or a socket file) that
 * finds the plain file free must defer to it; undefined where there is none, or it is stale or ours.
 */
export function heldBeside(
  own: string | undefined,
  judge: (file: RecordFile) => Verdict,
  token: string,
): { record: LockRecord | undefined; verdict: Verdict } | undefined {
  // Looked at before it is read: it is absent as a rule, and an open that fails throws, which costs
  // a new holder, cold, some 0.1 ms while the lock stands free to nobody.
  const file = own !== undefined && existsQuietly(own) ? readRecordFileQuietly(own) : undefined;
  if (file === undefined || file.record?.token === token) return undefined;
  const verdict = judge(file);
  return verdict.state === 'stale' ? undefined : { record: file.record, verdict };
}
