import { fstatSync } from 'node:fs';
import type { ProcessProbe } from '../identity/probe.ts';
import { readText } from '../identity/probe.ts';
import { recordedKind } from '../interlock/flavour.ts';
import { listeningInode } from '../interlock/holders.ts';
import { interlockName } from '../interlock/name.ts';
import { Interlock } from '../interlock/server.ts';
import { socketFileInterlock } from '../interlock/socket-file-on-first-use.ts';
import type { ResolvedAcquire } from '../options/resolve.ts';
import { replaceAtomically } from '../record/publish.ts';
import { readRecordFileQuietly } from '../record/read-record.ts';
import { createRecord, holderFields, publicRecord, serializeRecord } from '../record/record.ts';
import type { LockRecord } from '../types.ts';
import { Lock } from './handle.ts';
import { ownTokens } from './own-tokens.ts';
import { recordPathHere } from './record-path.ts';

/**
 * A lock handed to a child process through its environment: `<port>:<fd>:<token>:<how>:<dir>`.
 * `<how>` is `leaving` when the process that hands it over goes away once the child has it
 * (`portlock up` handing the lock to its `portlock run`), `staying` when the giver stays and
 * supervises the child (`portlock run` handing it to its command), which the record then says.
 * `<dir>` is the lock directory of the record, which the child uses whatever its own would be.
 */
export const HANDOFF_ENV = 'PORTLOCK_HANDOFF';

/**
 * Beside a handoff: the pid of the process that handed the lock on. A process that inherits the
 * lock's descriptor and outlives that process (a background child of the command) is then named
 * with where its lock came from.
 */
export const RUN_PID_ENV = 'PORTLOCK_RUN_PID';

export interface Handoff {
  port: number;
  fd: number;
  token: string;
  leaving: boolean;
  dir: string;
}

export function handoffValue(handoff: Handoff): string {
  const how = handoff.leaving ? 'leaving' : 'staying';
  return `${handoff.port}:${handoff.fd}:${handoff.token}:${how}:${handoff.dir}`;
}

export function parseHandoff(text: string | undefined): Handoff | undefined {
  const match = /^(\d{1,5}):(\d{1,4}):([0-9a-f]{16,128}):(leaving|staying):(\/.*)$/s.exec(text ?? '');
  if (match === null) return undefined;
  return {
    port: Number(match[1]),
    fd: Number(match[2]),
    token: match[3] ?? '',
    leaving: match[4] === 'leaving',
    dir: match[5] ?? '',
  };
}

/** Whether descriptor `fd` is the listening socket bound to the kernel name `name` (Linux). */
function isKernelName(fd: number, name: string): boolean {
  let inode: number;
  try {
    const stat = fstatSync(fd);
    if (!stat.isSocket()) return false;
    inode = stat.ino;
  } catch {
    return false;
  }
  return listeningInode(name, readText('/proc/net/unix', 'utf8') ?? '') === String(inode);
}

/**
 * Takes over a lock handed to this process, if one was handed for this port: the descriptor must
 * be the port's kernel name or socket file (the kernel says so, not the environment) and the
 * record must carry the token. The record is rewritten to name this process; the command, directory and log the
 * giver recorded stay. Undefined when there is nothing to adopt, and acquiring goes on as usual.
 */
export async function adoptHandoff(options: ResolvedAcquire, probe: ProcessProbe): Promise<Lock | undefined> {
  const handoff = parseHandoff(process.env[HANDOFF_ENV]);
  const { scope } = options;
  if (handoff === undefined || scope.kind !== 'port' || scope.port !== handoff.port || options.interlock === 'off') {
    return undefined;
  }
  // Taken once: a later acquire in this process, or a process it starts, must not take it again.
  delete process.env[HANDOFF_ENV];
  // The record is where the giver keeps it (in this network namespace); the token proves it is the one handed over.
  const path = recordPathHere(handoff.dir, scope, probe);
  const given = readRecordFileQuietly(path)?.record;
  if (given?.token !== handoff.token) return undefined;
  // The record says which interlock the giver holds: an abstract name, or a socket file.
  const kind = recordedKind(given);
  if (kind === 'socket-file') {
    const { isLocksSocketFile } = await socketFileInterlock();
    if (!isLocksSocketFile(handoff.fd, scope, handoff.dir, given.socketFile)) return undefined;
  } else {
    const name = interlockName(scope, handoff.dir);
    if (name === undefined || !isKernelName(handoff.fd, name)) return undefined;
  }
  const interlock = await Interlock.adopt(handoff.fd);
  if (interlock === undefined) return undefined;
  const kept = holderFields({
    ...options.holder,
    ...(given.command !== undefined && { command: given.command }),
    ...(given.cwd !== undefined && { cwd: given.cwd }),
    ...(given.log !== undefined && { log: given.log }),
  });
  const { commandPid: _itself, ...described } = kept;
  const record: LockRecord = {
    ...createRecord(scope, options.name, handoff.token, probe, true, { holder: described, interlockKind: kind }),
    ...(given.socketFile !== undefined && { socketFile: given.socketFile }),
    ...(!handoff.leaving && { supervisorPid: given.pid }),
  };
  let lock: Lock | undefined;
  const written = serializeRecord(record);
  try {
    replaceAtomically(path, written);
  } catch (error) {
    interlock.close();
    throw error;
  }
  ownTokens.add(handoff.token);
  interlock.answerWith({
    record: publicRecord(record),
    lockFile: path,
    token: handoff.token,
    stopHandler: () => lock?.onStopRequest,
  });
  lock = new Lock({ path, written }, record, handoff.token, interlock);
  return lock;
}
