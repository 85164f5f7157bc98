import { statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Wording } from '../errors.ts';
import { currentReader, type Reader } from '../listeners/describe.ts';
import { scopeOfFileName } from '../options/resolve.ts';
import { printable } from '../printable.ts';
import type { PublicLockRecord } from '../types.ts';

/** Whether two paths name one directory (a symbolic link or a bind mount may spell it otherwise). */
function sameDirectory(a: string, b: string): boolean {
  if (a === b) return true;
  try {
    const first = statSync(a);
    const second = statSync(b);
    return first.dev === second.dev && first.ino === second.ino;
  } catch {
    return false;
  }
}

/**
 * The lock file a holder says it holds (in its `who` answer, believed only where the kernel vouches
 * for the process), when it is not the file at `asked`: a port's kernel name is the same for
 * every lock directory, so the holder of a port may keep its record in another one. Undefined
 * when it is the same file, or the holder did not say.
 */
export function lockFileElsewhere(record: PublicLockRecord | undefined, asked: string): string | undefined {
  const told = record?.lockFile;
  if (told === undefined || told === asked) return undefined;
  if (sameLock(basename(told), basename(asked)) && sameDirectory(dirname(told), dirname(asked))) return undefined;
  return told;
}

/**
 * Whether two lock file names are one lock's: the same name, or a port's plain file and a network
 * namespace's own file of that port (see record-path.ts), which a reader in another namespace of
 * the same directory may name.
 */
function sameLock(a: string, b: string): boolean {
  if (a === b) return true;
  const [one, two] = [scopeOfFileName(a), scopeOfFileName(b)];
  return one?.kind === 'port' && two?.kind === 'port' && one.port === two.port;
}

/** A path as a shell reads it: quoted where it has anything but plain characters. */
export function shellWord(path: string): string {
  return /^[\w@%+=:,./-]+$/.test(path) ? path : `'${path.replaceAll("'", "'\\''")}'`;
}

/**
 * Whose the other lock directory of a holder is, as a phrase (`another application's directory`),
 * and whether the reader may act on it: another user's directory is that user's (and root's).
 */
export function otherDirectory(
  record: PublicLockRecord,
  askerName: string | undefined,
  reader: Reader = currentReader(),
): { whose: string; actable: boolean } {
  const user = record.user;
  if (user !== undefined && !reader.root && user !== reader.user) {
    const who = user === 'root' ? 'root' : `${user} or root`;
    return { whose: printable(`user ${user}'s directory: only ${who} can act on it`), actable: false };
  }
  const other = record.name !== undefined && askerName !== undefined && record.name !== askerName;
  return { whose: other ? "another application's directory" : 'another lock directory', actable: true };
}

/**
 * `(another application's directory: pass --dir /root/.alpha to act on it)`: what to do about a
 * lock whose record lies in `lockFile`, in another directory than the reader's, in the reader's
 * words. Another user's directory is that user's to act on: then it says so, and offers no option.
 */
export function elsewhereNote(
  lockFile: string,
  record: PublicLockRecord,
  askerName: string | undefined,
  wording: Wording,
): string {
  const { whose, actable } = otherDirectory(record, askerName);
  if (!actable) return `(${whose})`;
  const dir = dirname(lockFile);
  const how = wording === 'cli' ? `pass --dir ${shellWord(dir)}` : `pass the \`dir\` option ${JSON.stringify(dir)}`;
  return printable(`(${whose}: ${how} to act on it)`);
}

/** `held through /root/.alpha/agent-8210.lock (another application's directory: ...)`, or undefined. */
export function heldThrough(
  record: PublicLockRecord | undefined,
  asked: string,
  askerName: string | undefined,
  wording: Wording,
): string | undefined {
  const file = lockFileElsewhere(record, asked);
  if (file === undefined || record === undefined) return undefined;
  return printable(`held through ${file} ${elsewhereNote(file, record, askerName, wording)}`);
}
