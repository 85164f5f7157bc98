import type { ProcessProbe } from '../identity/probe.ts';
import type { Park } from '../interlock/client.ts';
import { interlockKind, nameOfKind } from '../interlock/flavour.ts';
import { monotonicMs } from '../monotonic.ts';
import type { ResolvedAcquire } from '../options/resolve.ts';
import { newToken } from '../record/record.ts';
import type { InterlockKind } from '../types.ts';
import { ownTokens } from './own-tokens.ts';
import { networkRecordPath } from './record-path.ts';

// Without an interlock, a waiter learns of a release only by looking: often, but not busily.
const POLL_MIN_MS = 5;
const POLL_MAX_MS = 25;

/** How an acquire goes about its tries (acquirePort's choices, for ports it passes by the dozen). */
export interface AcquireChoices {
  /**
   * Whether to ask a holder who it is, for a refusal that names it: acquirePort passes held ports
   * by the dozen, and asking each holder would only cost time.
   */
  identify: boolean;
  /** Whether the caller has made and checked the lock directory already (acquirePort, once a pass). */
  dirChecked: boolean;
}

/**
 * One acquire's state across its tries: what it was asked for, the token and kernel name its tries
 * use, and how long and how it has waited.
 */
export class Acquisition {
  readonly options: ResolvedAcquire;
  readonly probe: ProcessProbe;
  readonly choices: AcquireChoices;
  readonly kind: InterlockKind | undefined;
  readonly started = monotonicMs();
  /** The kernel name of the last try (see `interlockName`). */
  name: string | undefined;
  #token: string | undefined;
  /** When this waiter started waiting, by the wall clock all waiters share (see `queuedSince`). */
  #since: number | undefined;
  #poll = POLL_MIN_MS;
  /** Once it has waited, the event loop has turned: no need to turn it again before resolving. */
  waited = false;
  /** Where the waiter behind this one waits, until this one holds the lock or gives up. */
  park: Park | undefined;
  /** Set once this acquire holds the lock or has given up. */
  ended = false;
  #networkPath: { path: string | undefined } | undefined;

  constructor(options: ResolvedAcquire, probe: ProcessProbe, choices: AcquireChoices) {
    this.options = options;
    this.probe = probe;
    this.choices = choices;
    this.kind = interlockKind(options.interlock);
  }

  /** The lock's kernel name: derived anew on every try, as the directory may have been replaced since the last one. */
  interlockName(): string | undefined {
    this.name = nameOfKind(this.kind, this.options.scope, this.options.dir);
    return this.name;
  }

  /**
   * This network namespace's own record file of a port lock (see `networkRecordPath`): found once,
   * on the first wait or try, not in every hand-over (neither the directory nor the namespace of
   * a process changes while it waits).
   */
  networkPath(): string | undefined {
    this.#networkPath ??= { path: networkRecordPath(this.options.dir, this.options.scope, this.probe) };
    return this.#networkPath.path;
  }

  /** Drawn when first needed, and kept across tries: judges must know it for ours from then on. */
  token(): string {
    if (this.#token === undefined) {
      this.#token = newToken();
      ownTokens.add(this.#token);
    }
    return this.#token;
  }

  /** Lets the token go, once this acquire has given up: no lock of ours carries it. */
  forgetToken(): void {
    if (this.#token !== undefined) ownTokens.delete(this.#token);
  }

  elapsed(): number {
    return monotonicMs() - this.started;
  }

  /** Whether the time to wait is up: the next try is the last. */
  waitIsOver(): boolean {
    return this.elapsed() >= this.options.wait;
  }

  /**
   * Whether the next try asks a holder who it is: only where the caller wants it named, and only
   * once the time to wait is up (a waiter needs to know only when the holder leaves).
   */
  namesHolder(): boolean {
    return this.waitIsOver() && this.choices.identify;
  }

  /**
   * When this waiter started waiting: waiters are served in that order, by the wall clock all
   * share, to the microsecond (waiters often start within the same millisecond). Only a waiter
   * pays for loading perf_hooks, which the global `performance` does.
   */
  queuedSince(): number {
    this.#since ??= performance.timeOrigin + performance.now() - this.elapsed();
    return this.#since;
  }

  /** How long to wait before looking again, without an interlock to tell: a little longer each time. */
  nextPoll(remaining: number): number {
    const ms = Math.min(this.#poll, remaining);
    this.#poll = Math.min(this.#poll * 2, POLL_MAX_MS);
    return ms;
  }

  /**
   * Only now, with the lock held (or given up): the one behind asks the holder again. Once the
   * acquire has resolved, not before: closing the park wakes the one behind at once, and on a
   * machine with few cores it runs in this process's place, delaying the new holder by as long
   * as its waking takes (about a millisecond).
   */
  close(): void {
    this.ended = true;
    const park = this.park;
    if (park !== undefined) setImmediate(() => park.close());
  }
}
