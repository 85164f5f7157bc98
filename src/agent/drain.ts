import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** How a drain ended. */
interface DrainOutcome {
  /** True when connections had to be cut: the timeout passed, or `force()` was called. */
  forced: boolean;
  /** Why they were cut: the drain's timeout, or a call to `force()`. */
  cause?: 'timeout' | 'force';
  /** Requests still in flight when the connections were cut. */
  requests: number;
  /** Connections open when they were cut. */
  connections: number;
}

/**
 * How long a keep-alive connection that is idle when a stop begins may still bring a request, which
 * is then answered (with `Connection: close`). A request already on the wire when the stop began
 * reaches the server within the event loop's latency; this covers a loaded machine.
 */
const IDLE_GRACE_MS = 250;

/**
 * The connections of one server and the requests in flight on each, so that a stop loses no
 * request: each keep-alive connection has its request in flight, or the next one arriving within
 * `IDLE_GRACE_MS`, answered with `Connection: close`, and is closed only once it has been idle for
 * that long; whatever is left is cut at a deadline. `server.close()` alone waits forever for a
 * keep-alive or upgraded connection, and an idle connection closed at once would drop (with a
 * reset) a request its client had just sent.
 */
export class Connections {
  readonly #sockets = new Set<Socket>();
  readonly #busy = new Map<Socket, number>();
  readonly #responses = new Set<ServerResponse>();
  /** Idle connections' grace timers, while draining. */
  readonly #graces = new Map<Socket, NodeJS.Timeout>();
  /** Connections closed for good after their grace: a request arriving there is not answered. */
  readonly #closing = new WeakSet<Socket>();
  #grace = IDLE_GRACE_MS;
  #draining = false;
  #forced = false;
  #changed: (() => void) | undefined;
  #cut: ((cause: 'timeout' | 'force') => void) | undefined;

  /** True once a drain has begun: new requests should be turned away. */
  get draining(): boolean {
    return this.#draining;
  }

  /** Counts a connection until it closes; for the server's `connection` event. */
  add = (socket: Socket): void => {
    if (this.#forced) {
      socket.destroy();
      return;
    }
    this.#sockets.add(socket);
    socket.once('close', () => {
      this.#sockets.delete(socket);
      this.#busy.delete(socket);
      clearTimeout(this.#graces.get(socket));
      this.#graces.delete(socket);
      this.#changed?.();
    });
    // Accepted before the listener closed, but after the drain began: it may bring one request.
    if (this.#draining) this.#closeWhenIdle(socket);
  };

  /**
   * Counts a request until its response closes. False when the request came on a connection the
   * drain has already closed: it cannot be answered, so it must not be handled either.
   */
  begin(req: IncomingMessage, res: ServerResponse): boolean {
    const socket = req.socket;
    if (this.#closing.has(socket)) {
      socket.destroy();
      return false;
    }
    clearTimeout(this.#graces.get(socket));
    this.#graces.delete(socket);
    this.#responses.add(res);
    this.#busy.set(socket, (this.#busy.get(socket) ?? 0) + 1);
    if (this.#draining && !res.headersSent) res.setHeader('connection', 'close');
    res.once('close', () => {
      this.#responses.delete(res);
      const left = (this.#busy.get(socket) ?? 1) - 1;
      if (left > 0) this.#busy.set(socket, left);
      else this.#busy.delete(socket);
      // Answered with `Connection: close`: Node ends the connection once the response is out.
      if (this.#draining && left <= 0) this.#closeWhenIdle(socket);
      this.#changed?.();
    });
    return true;
  }

  /** Closes a connection once it has been idle for the grace, unless a request comes first. */
  #closeWhenIdle(socket: Socket): void {
    if (this.#graces.has(socket) || this.#closing.has(socket)) return;
    const timer = setTimeout(() => {
      this.#graces.delete(socket);
      if (this.#busy.has(socket)) return;
      this.#closing.add(socket);
      // A FIN, not a reset: a client's request crossing it is refused by the client's own stack
      // or never handled here, and either way it is plain that it was not served.
      socket.end();
      // Some clients never close their end; the drain's deadline still cuts those.
    }, this.#grace);
    this.#graces.set(socket, timer);
  }

  /**
   * Lets each connection finish its request in flight, or bring one more within the grace, and
   * closes it once it is idle; after `timeoutMs` (or `force()`), cuts the rest. Resolves when every
   * connection has closed.
   */
  drain(timeoutMs: number): Promise<DrainOutcome> {
    this.#draining = true;
    this.#grace = Math.min(IDLE_GRACE_MS, timeoutMs);
    for (const res of this.#responses) if (!res.headersSent) res.setHeader('connection', 'close');
    for (const socket of this.#sockets) if (!this.#busy.has(socket)) this.#closeWhenIdle(socket);
    return new Promise((resolve) => {
      const outcome: DrainOutcome = { forced: false, requests: 0, connections: 0 };
      const timer = setTimeout(() => this.#cutAll('timeout'), timeoutMs);
      this.#cut = (cause) => {
        outcome.forced = true;
        outcome.cause = cause;
        outcome.requests = this.#responses.size;
        outcome.connections = this.#sockets.size;
      };
      this.#changed = () => {
        if (this.#sockets.size > 0) return;
        clearTimeout(timer);
        this.#changed = undefined;
        this.#cut = undefined;
        resolve(outcome);
      };
      if (this.#forced) this.force();
      this.#changed();
    });
  }

  /** Cuts every connection now; a drain under way then resolves as soon as they have closed. */
  force(): void {
    this.#cutAll('force');
  }

  #cutAll(cause: 'timeout' | 'force'): void {
    this.#forced = true;
    for (const timer of this.#graces.values()) clearTimeout(timer);
    this.#graces.clear();
    if (this.#sockets.size === 0) return;
    this.#cut?.(cause);
    for (const socket of this.#sockets) socket.destroy();
  }
}
