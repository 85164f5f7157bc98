import { createServer, type Server, type Socket } from 'node:net';
import { listenOrFail } from '../listen-or-fail.ts';
import { monotonicMs } from '../monotonic.ts';
import { sameToken } from '../same-token.ts';
import type { PublicLockRecord, StopRequestHandler } from '../types.ts';
import { boundAbstractNames, shownAs, socketInode } from './holders.ts';
import { readLines } from './lines.ts';
import {
  answerArgv,
  encode,
  errorReply,
  MAX_REQUEST_BYTES,
  PROTOCOL_VERSION,
  parkName,
  parseRequest,
  REQUEST_TIMEOUT_MS,
  type Reply,
} from './protocol.ts';

/**
 * Connections that have not yet sent their request, at most. No user can be told apart on an
 * abstract socket (Node cannot read SO_PEERCRED), so there is no per-user share: when the table is
 * full, the oldest of them is cut to make room. An asker sends its request the moment it connects,
 * so to push it out a flood would have to open this many connections in that moment.
 */
const MAX_PENDING = 1024;
/** Waiters held open at once: the earliest ones, in the order they started waiting. */
export const MAX_WAITERS = 128;
/** Connections the kernel queues until the holder accepts them (Linux caps it at somaxconn). */
const BACKLOG = 4096;

interface HolderAnswers {
  /** The record to show askers (no token). */
  record: PublicLockRecord;
  /** The lock file's absolute path, told to askers: a port's name is the same for every lock directory. */
  lockFile?: string;
  token: string;
  /** Read at request time, so a handler installed after acquiring is found. */
  stopHandler(): StopRequestHandler | undefined;
}

let argv: string[] | undefined;
/** This process's command line, as a `who` answer carries it (computed once: it does not change). */
function ownArgv(): string[] {
  argv ??= answerArgv(process.argv);
  return argv;
}

/** This process's working directory, for a holder that did not say one; none if it was removed. */
function ownCwd(): { cwd?: string } {
  try {
    return { cwd: process.cwd() };
  } catch {
    return {};
  }
}

interface Waiter {
  /** Its connection; undefined once it has gone to wait behind the one ahead (see `park`). */
  socket: Socket | undefined;
  /** When it started waiting (ms since the epoch, by its own clock): the queue's order. */
  since: number;
  /** Its pid, as it says. */
  pid: number | undefined;
  /** What it was last told of its place. */
  told: string;
  /** The id of its park, where the one behind it may wait (see the protocol). */
  park: string | undefined;
  /** Whether it was last told a park to wait behind: its connection closing then means it went there. */
  parking: boolean;
}

/**
 * The holder's end of the interlock: a kernel name bound for as long as the lock is held, which
 * answers who holds it, forwards authorised stop requests, and keeps a queue of waiters in the
 * order they started waiting, telling each its place.
 */
export class Interlock {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  /** Connections yet to send a request, oldest first, with the time each arrived. */
  readonly #pending = new Map<Socket, number>();
  #sweep: NodeJS.Timeout | undefined;
  /** Sorted by `since`; an arrival ties after those already there. */
  #queue: Waiter[] = [];
  #answers: HolderAnswers | undefined;
  #closed = false;
  /** The listening socket's inode, looked up on the first `who` (null: not yet). */
  #inode: string | undefined | null = null;
  /** What must happen before the name is freed (a socket file's link removed while still its own). */
  #beforeClose: (() => void) | undefined;

  private constructor(server: Server) {
    this.#server = server;
    server.on('connection', (socket) => {
      // Answers are given in the same turn as the bind resolves, before any connection is accepted.
      if (this.#answers === undefined) socket.destroy();
      else this.#serve(socket, this.#answers);
    });
  }

  /**
   * Binds `name`; resolves `taken` when another process holds it. The caller gives its answers
   * with `answerWith` at once: a refused caller never has to make up a record it will not publish.
   * `shared`: a socket file that every user may connect to (in the host-wide socket directory).
   */
  static async bind(
    name: string,
    { shared = false }: { shared?: boolean } = {},
  ): Promise<Interlock | 'taken' | 'unavailable'> {
    const server = createServer({ allowHalfOpen: false, pauseOnConnect: false });
    const everyone = shared ? { readableAll: true, writableAll: true } : {};
    try {
      await listenOrFail(server, { path: name, exclusive: true, backlog: BACKLOG, ...everyone });
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === 'EADDRINUSE' ? 'taken' : 'unavailable';
    }
    return Interlock.#serving(server);
  }

  /**
   * Serves a listening socket this process inherited (a lock handed over by `portlock run`); the
   * caller has checked that it is the lock's kernel name. Undefined if it cannot be served.
   */
  static async adopt(fd: number): Promise<Interlock | undefined> {
    const server = createServer({ allowHalfOpen: false, pauseOnConnect: false });
    try {
      await listenOrFail(server, { fd });
    } catch {
      return undefined;
    }
    return Interlock.#serving(server);
  }

  static #serving(server: Server): Interlock {
    // A failing client socket must never take the holder down.
    server.on('error', () => {});
    // The lock must not keep its holder's process alive.
    server.unref();
    return new Interlock(server);
  }

  #ownInode(): string | undefined {
    if (this.#inode === null) this.#inode = socketInode(this.fd);
    return this.#inode;
  }

  /** What this holder tells whoever asks; to be called in the turn in which `bind` resolved. */
  answerWith(answers: HolderAnswers): void {
    this.#answers = answers;
  }

  #serve(socket: Socket, answers: HolderAnswers): void {
    this.#sockets.add(socket);
    socket.on('close', () => {
      this.#sockets.delete(socket);
      this.#pending.delete(socket);
    });
    socket.on('error', () => socket.destroy());
    socket.unref();
    if (this.#pending.size >= MAX_PENDING) {
      // The oldest has had the longest to speak; the newest may be the owner's stop request.
      const oldest = this.#pending.keys().next().value;
      oldest?.destroy();
    }
    this.#pending.set(socket, monotonicMs());
    this.#armSweep();
    readLines(socket, MAX_REQUEST_BYTES, (line) => {
      this.#pending.delete(socket);
      if (line === undefined) {
        this.#reply(socket, errorReply('ETOOLARGE', `a request is at most ${MAX_REQUEST_BYTES} bytes`));
        return false;
      }
      try {
        this.#answer(socket, line, answers);
      } catch {
        // Whatever a request holds, it must never take the holder down.
        socket.destroy();
      }
      // One request a connection.
      return false;
    });
  }

  /**
   * An absolute deadline per connection, not an idle timeout: a client trickling bytes is cut off
   * all the same. One timer for all of them, set for the oldest, keeps a flood cheap.
   */
  #armSweep(): void {
    if (this.#sweep !== undefined || this.#closed) return;
    const oldest = this.#pending.values().next().value;
    if (oldest === undefined) return;
    const delay = Math.max(0, oldest + REQUEST_TIMEOUT_MS - monotonicMs());
    this.#sweep = setTimeout(() => {
      this.#sweep = undefined;
      const cutoff = monotonicMs() - REQUEST_TIMEOUT_MS;
      for (const [socket, arrived] of this.#pending) {
        if (arrived > cutoff) break;
        this.#pending.delete(socket);
        socket.destroy();
      }
      this.#armSweep();
    }, delay).unref();
  }

  #answer(socket: Socket, line: string, answers: HolderAnswers): void {
    const request = parseRequest(line);
    if ('v' in request) {
      this.#reply(socket, request);
      return;
    }
    switch (request.op) {
      case 'who': {
        // With this socket's inode, by which an asker tells the name's own socket from look-alikes.
        const socketInode = this.#ownInode();
        // This process's command line and directory only where the record it tells is its own.
        const own = answers.record.pid === process.pid;
        const record = {
          ...answers.record,
          ...(answers.lockFile !== undefined && { lockFile: answers.lockFile }),
          ...(own && { argv: ownArgv() }),
          ...(own && answers.record.cwd === undefined && ownCwd()),
          ...(socketInode !== undefined && { socketInode }),
        };
        this.#reply(socket, { v: PROTOCOL_VERSION, ok: true, record });
        return;
      }
      case 'wait':
        this.#enqueue(socket, request.since ?? Date.now(), request.pid, request.park);
        return;
      case 'stop': {
        if (!sameToken(request.token, answers.token)) {
          this.#reply(socket, errorReply('EDENIED', 'the token does not match the lock record'));
          return;
        }
        const handler = answers.stopHandler();
        if (handler === undefined) {
          this.#reply(socket, errorReply('ENOTSUP', 'this holder does not accept stop requests'));
          return;
        }
        this.#reply(socket, { v: PROTOCOL_VERSION, ok: true, stopping: true });
        Promise.resolve()
          .then(handler)
          .catch((error: unknown) =>
            process.emitWarning(`portlock: the stop request handler failed: ${String(error)}`),
          );
      }
    }
  }

  #reply(socket: Socket, reply: Reply): void {
    // Closed as soon as the reply is flushed, so the connection costs nothing once answered.
    socket.end(encode(reply), () => socket.destroy());
  }

  /**
   * Keeps a waiter's connection open until the release (the kernel closes it too when the holder
   * dies), in the order waiters started waiting. When the queue is full, the one that started last
   * is turned away, so that a waiter never waits behind one that came after it. A waiter that goes
   * to wait behind the one ahead of it (its connection closes after it was told where) keeps its
   * place, so that newcomers queue behind it; one that came back (the same park) takes its place anew.
   */
  #enqueue(socket: Socket, since: number, pid: number | undefined, park: string | undefined): void {
    if (park !== undefined) {
      const earlier = this.#queue.findIndex((waiter) => waiter.park === park);
      if (earlier >= 0) {
        const [again] = this.#queue.splice(earlier, 1);
        again?.socket?.destroy();
      }
    }
    if (this.#queue.length >= MAX_WAITERS) this.#forgetGoneParks();
    let at = this.#queue.length;
    while (at > 0 && (this.#queue[at - 1]?.since ?? 0) > since) at--;
    if (at >= MAX_WAITERS) {
      this.#reply(socket, errorReply('EBUSY', 'too many waiters; try again later'));
      return;
    }
    const waiter: Waiter = { socket, since, pid, told: '', park, parking: false };
    this.#queue.splice(at, 0, waiter);
    socket.on('close', () => {
      if (waiter.socket !== socket) return;
      waiter.socket = undefined;
      if (waiter.parking) return;
      const index = this.#queue.indexOf(waiter);
      if (index < 0) return;
      this.#queue.splice(index, 1);
      this.#tellPlaces();
    });
    if (this.#queue.length > MAX_WAITERS) {
      const last = this.#queue.pop();
      if (last?.socket !== undefined)
        this.#reply(last.socket, errorReply('EBUSY', 'too many waiters; try again later'));
    }
    this.#tellPlaces();
  }

  /**
   * Drops the places of waiters gone to a park that is no longer bound (they gave up or died while
   * waiting there), so that they do not fill the queue. Looked at only when it is full: it reads
   * the kernel's table of names.
   */
  #forgetGoneParks(): void {
    const bound = boundAbstractNames();
    if (bound === undefined) return;
    const before = this.#queue.length;
    this.#queue = this.#queue.filter(
      (waiter) => waiter.socket !== undefined || waiter.park === undefined || bound.has(shownAs(parkName(waiter.park))),
    );
    if (this.#queue.length < before) this.#tellPlaces();
  }

  /**
   * Tells each waiter whose place changed how many are ahead of it, who is just ahead, and that
   * one's park if it has one, so that every waiter knows its place when the holder releases or
   * dies: the head takes the lock, each other lets the one ahead of it go first. A waiter joining
   * at the end, the usual case, moves no one. Waiters gone to a park are told nothing: they learn
   * of their turn from the one ahead.
   */
  #tellPlaces(): void {
    if (this.#closed) return;
    this.#queue.forEach((waiter, ahead) => {
      if (waiter.socket === undefined) return;
      const before = this.#queue[ahead - 1];
      const behind = waiter.park !== undefined ? before?.park : undefined;
      const place = encode({
        v: PROTOCOL_VERSION,
        ok: true,
        waiting: true,
        ahead,
        ...(before?.pid !== undefined && { after: before.pid }),
        holder: process.pid,
        ...(behind !== undefined && { behind }),
      });
      if (waiter.told === place) return;
      waiter.told = place;
      waiter.parking = behind !== undefined;
      waiter.socket.write(place);
    });
  }

  /**
   * The listening socket's file descriptor, for a child process to inherit; undefined once closed
   * or where the OS gives none (Windows named pipes).
   */
  get fd(): number | undefined {
    // Node has no public accessor for a server's descriptor; its handle has carried `fd` since 0.x.
    const fd = (this.#server as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
    return !this.#closed && typeof fd === 'number' && fd >= 0 ? fd : undefined;
  }

  /** Runs `step` in `close()`, before the name is freed (at most one such step; undefined: none). */
  beforeClose(step: (() => void) | undefined): void {
    this.#beforeClose = step;
  }

  /** Frees the name at once (synchronously), and ends every open connection. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#beforeClose?.();
    } catch {
      // Tidying a name must never keep it held.
    }
    this.#server.close();
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
    this.#pending.clear();
    this.#queue = [];
    // Last: the name is free and its waiters told first. Clearing a pending timer runs code a
    // holder may not have run before (some 0.1 ms, cold).
    clearTimeout(this.#sweep);
  }
}
