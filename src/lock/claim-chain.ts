import type { Verdict } from '../identity/judge.ts';
import { publishExclusive, replaceAtomically } from '../record/publish.ts';
import { type RecordFile, readRecordFile } from '../record/read-record.ts';
import { unlinkQuietly } from '../record/unlink-quietly.ts';

/**
 * Reclaiming a stale lock without ever granting it twice.
 *
 * Unlink-then-create is broken: unlink acts on the name, so a slow reclaimer deletes the fresh
 * record of a fast one. Instead, whoever wants to replace the stale record with identity S must
 * first create the claim file `<lock>.claim-S`, exclusively. Only the claimer may replace the
 * record, and only after reading it again and finding S still there; it replaces it with a rename,
 * so the name is never absent. A second reclaimer finds the claim taken and looks again.
 *
 * A claimer can die holding its claim. Its claim is then stale in turn, and is "reclaimed" the
 * same way: by creating `<lock>.claim-C` where C is the dead claim's identity. Claims form a chain
 * from the record; only the process at the live end of the chain may act.
 */

// Only a cycle written by hand could make a chain this long; real ones are a link or two.
const MAX_CHAIN = 1000;

export function claimPathFor(lockPath: string, identity: string): string {
  return `${lockPath}.claim-${identity}`;
}

export const CLAIM_INFIX = '.claim-';

interface ChainLink {
  path: string;
  file: RecordFile;
}

/**
 * Follows the chain of claims from `identity`. Returns the links in order, and whether a live
 * claimer sits on it.
 */
export function followClaims(
  lockPath: string,
  identity: string,
  judge: (file: RecordFile) => Verdict,
): { links: ChainLink[]; tip: string; busy: boolean } {
  const links: ChainLink[] = [];
  let tip = identity;
  for (let depth = 0; depth <= MAX_CHAIN; depth++) {
    const path = claimPathFor(lockPath, tip);
    const file = readRecordFile(path);
    if (file === undefined) return { links, tip, busy: false };
    links.push({ path, file });
    if (judge(file).state !== 'stale') return { links, tip, busy: true };
    tip = file.identity;
  }
  return { links, tip, busy: true };
}

/**
 * Acts on the stale record `stale` at `lockPath` (`act` replaces or removes it), if this process is
 * the one allowed to: it claims the end of the chain with `claimBytes`, then checks the record is
 * still `stale`. `done`: `act` ran, and its result is returned. `changed`: the record or the chain
 * moved on; read and judge again. `busy`: a live process is claiming it right now. `stillThere`
 * tells whether the thing at `lockPath` is still the stale one (by default: its record's identity);
 * a dead socket file (see `interlock/socket-file.ts`) is taken over through the same chain.
 */
export function actOnStale<T>(
  lockPath: string,
  stale: Pick<RecordFile, 'identity'>,
  claimBytes: Buffer,
  judge: (file: RecordFile) => Verdict,
  act: () => T,
  stillThere: () => boolean = () => readRecordFile(lockPath)?.identity === stale.identity,
): { kind: 'done'; value: T } | { kind: 'changed' } | { kind: 'busy' } {
  const chain = followClaims(lockPath, stale.identity, judge);
  if (chain.busy) return { kind: 'busy' };
  const mine = claimPathFor(lockPath, chain.tip);
  if (!publishExclusive(mine, claimBytes)) return { kind: 'changed' };
  let done = false;
  try {
    if (!stillThere()) return { kind: 'changed' };
    const value = act();
    done = true;
    return { kind: 'done', value };
  } finally {
    // Whoever acted clears the chain it completed; a loser only its own claim.
    if (done) for (const link of chain.links) unlinkQuietly(link.path);
    unlinkQuietly(mine);
  }
}

/** Replaces the stale record `stale` at `lockPath` with `bytes` through the claim chain. */
export function reclaimStale(lockPath: string, stale: RecordFile, bytes: Buffer, judge: (file: RecordFile) => Verdict) {
  return actOnStale(lockPath, stale, bytes, judge, () => replaceAtomically(lockPath, bytes));
}
