import { createServer, type Server, type Socket } from 'node:net';
import { sameToken } from '../same-token.ts';
import type { PublicLockRecord, StopRequestHandler } from '../types.ts';
import {
  encode,
  errorReply,
  MAX_REQUEST_BYTES,
  PROTOCOL_VERSION,
  parseRequest,
  REQUEST_TIMEOUT_MS,
  type Reply,
} from './protocol.ts';

/** Connections served at once; Node closes any beyond this at once. */
const MAX_CONNECTIONS = 64;
/** Waiters held open at once, so that `who` and `stop` always find room. */
const MAX_WAITERS = 32;

export interface HolderAnswers {
  /** The record to show askers (no token). */
  record: PublicLockRecord;
  token: string;
  /** Read at request time, so a handler installed after acquiring is found. */
  stopHandler(): StopRequestHandler | undefined;
}

/**
 * The holder's end of the interlock: a kernel name bound for as long as the lock is held, which
 * answers who holds it, forwards authorised stop requests, and tells waiters when it is released.
 */
export class Interlock {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #answers: HolderAnswers | undefined;
  #waiters = 0;
  #closed = false;

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
   */
  static bind(name: string): Promise<Interlock | 'taken' | 'unavailable'> {
    const server = createServer({ allowHalfOpen: false, pauseOnConnect: false });
    server.maxConnections = MAX_CONNECTIONS;
    return new Promise((resolve) => {
      server.once('error', (error: NodeJS.ErrnoException) => {
        resolve(error.code === 'EADDRINUSE' ? 'taken' : 'unavailable');
      });
      server.listen({ path: name, exclusive: true }, () => {
        server.removeAllListeners('error');
        // A failing client socket must never take the holder down.
        server.on('error', () => {});
        // The lock must not keep its holder's process alive.
        server.unref();
        resolve(new Interlock(server));
      });
    });
  }

  /**
   * Serves a listening socket this process inherited (a lock handed over by `portlock run`); the
   * caller has checked that it is the lock's kernel name. Undefined if it cannot be served.
   */
  static adopt(fd: number): Promise<Interlock | undefined> {
    const server = createServer({ allowHalfOpen: false, pauseOnConnect: false });
    server.maxConnections = MAX_CONNECTIONS;
    return new Promise((resolve) => {
      server.once('error', () => resolve(undefined));
      server.listen({ fd }, () => {
        server.removeAllListeners('error');
        server.on('error', () => {});
        server.unref();
        resolve(new Interlock(server));
      });
    });
  }

  /** What this holder tells whoever asks; to be called in the turn in which `bind` resolved. */
  answerWith(answers: HolderAnswers): void {
    this.#answers = answers;
  }

  #serve(socket: Socket, answers: HolderAnswers): void {
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.unref();
    // An absolute deadline, not an idle timeout: a client trickling bytes is cut off all the same.
    const deadline = setTimeout(() => socket.destroy(), REQUEST_TIMEOUT_MS).unref();
    socket.on('close', () => clearTimeout(deadline));
    let buffered = '';
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const end = buffered.indexOf('\n');
      if (end < 0 && buffered.length <= MAX_REQUEST_BYTES) return;
      socket.off('data', onData);
      clearTimeout(deadline);
      if (end < 0 || end > MAX_REQUEST_BYTES) {
        this.#reply(socket, errorReply('ETOOLARGE', `a request is at most ${MAX_REQUEST_BYTES} bytes`));
        return;
      }
      try {
        this.#answer(socket, buffered.slice(0, end), answers);
      } catch {
        // Whatever a request holds, it must never take the holder down.
        socket.destroy();
      }
    };
    socket.on('data', onData);
  }

  #answer(socket: Socket, line: string, answers: HolderAnswers): void {
    const request = parseRequest(line);
    if ('v' in request) {
      this.#reply(socket, request);
      return;
    }
    switch (request.op) {
      case 'who':
        this.#reply(socket, { v: PROTOCOL_VERSION, ok: true, record: answers.record });
        return;
      case 'wait':
        if (this.#waiters >= MAX_WAITERS) {
          this.#reply(socket, errorReply('EBUSY', 'too many waiters; poll instead'));
          return;
        }
        // Held open until release; the kernel closes it if the holder dies.
        this.#waiters++;
        socket.on('close', () => this.#waiters--);
        socket.write(encode({ v: PROTOCOL_VERSION, ok: true, waiting: true }));
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
    // Closed as soon as the reply is flushed, so the slot is free without waiting on the client.
    socket.end(encode(reply), () => socket.destroy());
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

  /** Frees the name at once (synchronously), and ends every open connection. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#server.close();
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
  }
}
