import { inspectLock } from '../lock/inspect.ts';
import { duration } from '../record/started-at.ts';
import type { LockTarget, PublicLockRecord } from '../types.ts';
import { describeRecord, type Output } from './output.ts';

const CLEAR = '\r\x1b[2K';
const TICK_MS = 1000;

/** A line on the terminal, redrawn every second while `run --wait` waits: for whom, how long. */
export class WaitLine {
  readonly #out: Output;
  readonly #target: LockTarget & { port: number };
  readonly #started = Date.now();
  readonly #waitMs: number;
  readonly #timer: NodeJS.Timeout;
  #holder: PublicLockRecord | undefined;
  #stopped = false;

  constructor(
    out: Output,
    target: LockTarget & { port: number },
    holder: PublicLockRecord | undefined,
    waitMs: number,
  ) {
    this.#out = out;
    this.#target = target;
    this.#holder = holder;
    this.#waitMs = waitMs;
    this.#draw();
    this.#timer = setInterval(() => void this.#refresh(), TICK_MS);
  }

  async #refresh(): Promise<void> {
    // The holder may change while we wait (another waiter got it first): name the current one.
    const now = await inspectLock(this.#target).catch(() => undefined);
    if (now?.state === 'held' && now.record !== undefined) this.#holder = now.record;
    this.#draw();
  }

  #draw(): void {
    if (this.#stopped) return;
    const who = this.#holder === undefined ? 'another process' : describeRecord(this.#holder);
    const limit = Number.isFinite(this.#waitMs) ? ` of ${duration(this.#waitMs)}` : '';
    const text = `waiting for port ${this.#target.port}, held by ${who}: ${duration(Date.now() - this.#started)}${limit} (Ctrl-C gives up)`;
    this.#out.io.stderr.write(`${CLEAR}${this.#out.paint('dim', text, 'err')}`);
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#out.io.stderr.write(CLEAR);
  }
}
