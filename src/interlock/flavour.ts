import type { LockScope } from '../options/validate.ts';
import type { InterlockKind, InterlockOption, LockRecord } from '../types.ts';
import { interlockName } from './name.ts';
import { socketFileInterlock } from './socket-file-on-first-use.ts';
import { socketFileBase } from './socket-file-path.ts';

/**
 * Which interlock holds a lock: `auto` is the abstract socket on Linux, the named pipe on Windows
 * and a socket file everywhere else (macOS, the BSDs, other POSIX systems); `socket-file` forces
 * the socket file on any POSIX system; `off`, none. The one place that decides it.
 */
export function interlockKind(option: InterlockOption, platform: NodeJS.Platform = process.platform) {
  if (option === 'off') return undefined;
  if (option === 'socket-file') return platform === 'win32' ? undefined : ('socket-file' as const);
  return platform === 'linux'
    ? ('abstract-socket' as const)
    : platform === 'win32'
      ? ('named-pipe' as const)
      : 'socket-file';
}

/**
 * The kind of interlock a record's holder held: its own word, or for a record written before
 * records said it, this platform's kernel name (the only kind there was).
 */
export function recordedKind(record: Pick<LockRecord, 'interlock' | 'interlockKind'>): InterlockKind | undefined {
  if (record.interlock !== true) return undefined;
  return record.interlockKind ?? (process.platform === 'win32' ? 'named-pipe' : 'abstract-socket');
}

/**
 * The name a lock's interlock of this kind is taken under: the abstract socket's or the pipe's
 * kernel name, or the socket file's path (for a port, its first slot; see `socket-file.ts`).
 */
export function nameOfKind(kind: InterlockKind | undefined, scope: LockScope, dir: string): string | undefined {
  if (kind === undefined) return undefined;
  return kind === 'socket-file' ? socketFileBase(scope, dir) : interlockName(scope, dir);
}

/** Whether this platform has interlocks of this kind. */
const available = (kind: InterlockKind, platform: NodeJS.Platform): boolean =>
  kind === 'abstract-socket'
    ? platform === 'linux'
    : kind === 'named-pipe'
      ? platform === 'win32'
      : platform !== 'win32';

/**
 * The interlock to ask about a lock, and its kind: the kind its record says its holder holds
 * (where this platform has it), else the one the option names; none with `off`. For a socket
 * file, the live slot where there is one.
 */
export async function interlockToAsk(
  option: InterlockOption,
  scope: LockScope,
  dir: string,
  record: LockRecord | undefined,
): Promise<{ kind: InterlockKind; name: string } | undefined> {
  const recorded = record === undefined ? undefined : recordedKind(record);
  let kind = interlockKind(option);
  if (kind !== undefined && recorded !== undefined && available(recorded, process.platform)) kind = recorded;
  if (kind === undefined) return undefined;
  // The socket-file interlock's code loads where a lock has one (see socket-file-path.ts).
  const name =
    kind === 'socket-file' ? await (await socketFileInterlock()).liveSocketFile(scope, dir) : interlockName(scope, dir);
  return name === undefined ? undefined : { kind, name };
}

/**
 * Why the kernel cannot be asked who holds a lock's interlock here, or undefined where it can
 * (Linux, through /proc). Elsewhere an answer on the interlock stays a claim, and the record's
 * token is never sent: on Windows any user may create a pipe of the lock's name first, and Node
 * cannot ask Windows which process serves a pipe (GetNamedPipeServerProcessId); on macOS and BSD,
 * Node cannot ask who listens on a socket file (LOCAL_PEERPID, LOCAL_PEERCRED).
 */
export function unverifiable(name: string, platform: NodeJS.Platform = process.platform): string | undefined {
  if (platform === 'linux') return undefined;
  return platform === 'win32' || !name.startsWith('/')
    ? 'Windows does not tell Node which process serves a named pipe, and any user may create one of its name first'
    : 'this OS does not tell Node which process listens on a socket file (there is no /proc)';
}
