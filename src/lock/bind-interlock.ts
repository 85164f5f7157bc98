import { createServer } from 'node:net';
import type { ProcessProbe } from '../identity/probe.ts';
import { legacyFormBound } from '../interlock/holders.ts';
import { keyPathName, legacyForm } from '../interlock/name.ts';
import { bindPresence } from '../interlock/presence.ts';
import { Interlock } from '../interlock/server.ts';
import type { SocketFileTaker } from '../interlock/socket-file.ts';
import type { ResolvedAcquire } from '../options/resolve.ts';
import type { LockScope } from '../options/validate.ts';
import { createRecord, newToken, serializeRecord } from '../record/record.ts';
import { judgeWith } from './judge-here.ts';

/**
 * Binds a lock's kernel name and, for a key, the second name from its directory's real path (see
 * `keyPathName`): held only while holding both. Returns the name found taken, if one is.
 */
export async function bindBoth(
  name: string,
  scope: LockScope,
  dir: string,
): Promise<{ first: Interlock; second?: Interlock } | string | undefined> {
  const first = await Interlock.bind(name);
  if (first === 'taken') return name;
  if (first === 'unavailable') return undefined;
  const pathName = scope.kind === 'key' ? keyPathName(scope.key, dir) : undefined;
  if (pathName === undefined || pathName === name) return { first };
  const second = await Interlock.bind(pathName);
  if (second === 'taken') {
    first.close();
    return pathName;
  }
  return second === 'unavailable' ? { first } : { first, second };
}

/** A socket-file taker's claim on a dead socket: this holder's record, and the judge of others' claims. */
export function takerFor(options: ResolvedAcquire, probe: ProcessProbe, tokenOf: () => string): SocketFileTaker {
  return {
    claim: () => serializeRecord(createRecord(options.scope, options.name, tokenOf(), probe)),
    judge: judgeWith(probe),
  };
}

// Node 22 and later bind an abstract name's exact bytes; Node 20 pads every name to the full
// sun_path, and so cannot bind a lock name's legacy (unpadded) form.
const BINDS_EXACT_NAMES = Number(process.versions.node.split('.')[0]) >= 22;

/**
 * Makes sure no older portlock holds the legacy form of a name just bound (it holds the lock too,
 * see `legacyForm`): `taken` if one does. Where Node binds exact names, the legacy form is bound
 * beside the name and returned, to be held with the lock: that answers without reading the
 * kernel's table, and shuts an older portlock out for as long as the lock is held. Elsewhere (or
 * if that bind is refused) the table tells.
 */
export async function guardLegacyForm(name: string): Promise<Interlock | 'taken' | undefined> {
  const legacy = legacyForm(name);
  if (legacy === undefined || process.platform !== 'linux') return undefined;
  if (BINDS_EXACT_NAMES) {
    const bound = await Interlock.bind(legacy);
    if (typeof bound === 'object') return bound;
    // Found taken: by an older portlock, by a holder of both forms that is just exiting (the kernel
    // closes a dead process's sockets one by one), or, if Node padded it after all, by our own name.
  }
  return legacyFormBound(name) ? 'taken' : undefined;
}

/** Binds a presence name for this try's record (Linux, where the probe can check one). */
export async function presenceOf(probe: ProcessProbe): Promise<{ id: string; bound: Interlock } | undefined> {
  if (probe.presenceBound === undefined) return undefined;
  const id = newToken().slice(0, 16);
  const bound = await bindPresence(id);
  return bound && { id, bound };
}

/**
 * Why the kernel refused to bind an interlock's name, for the record of a lock that falls back to
 * the record alone: the error of one more try (if that one succeeds, it is let go, and the record
 * says that binding failed once).
 */
export function whyUnbindable(name: string): Promise<string> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    server.listen({ path: name, exclusive: true }, () => {
      server.close();
      resolve('binding its name failed once');
    });
  });
}
