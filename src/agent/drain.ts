import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** How a drain ended. */
export interface DrainOutcome {
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
 * The connections of one server and the requests in flight on each, so that a stop can close idle
 * connections at once, let busy ones finish their requests, and cut whatever is left at a deadline.
 * `server.close()` alone waits forever for a keep-alive or upgraded connection.
 */
export class Connections {
  readonly #sockets = new Set<Socket>();
  readonly #busy = new Map<Socket, number>();
  readonly #responses = new Set<ServerResponse>();
  #draining = false;
  #forced = false;
  #changed: (() => void) | undefined;
  #cut: ((cause: 'timeout' | 'force') => void) | undefined;

  /** True once a drain has begun: new requests should be turned away. */
  get draining(): boolean {
    return this.#draining;
  }

  /** Requests whose responses have not closed yet. */
  get requestsInFlight(): number {
    return this.#responses.size;
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
      this.#changed?.();
    });
  };

  /** Counts a request until its response closes. */
  begin(req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket;
    this.#responses.add(res);
    this.#busy.set(socket, (this.#busy.get(socket) ?? 0) + 1);
    if (this.#draining && !res.headersSent) res.setHeader('connection', 'close');
    res.once('close', () => {
      this.#responses.delete(res);
      const left = (this.#busy.get(socket) ?? 1) - 1;
      if (left > 0) this.#busy.set(socket, left);
      else this.#busy.delete(socket);
      // A keep-alive connection would otherwise stay open, idle, until the deadline.
      if (this.#draining && left <= 0) socket.end();
      this.#changed?.();
    });
  }

  /**
   * Closes idle connections now and each busy one once its requests are done; after `timeoutMs`
   * (or `force()`), cuts the rest. Resolves when every connection has closed.
   */
  drain(timeoutMs: number): Promise<DrainOutcome> {
    this.#draining = true;
    for (const res of this.#responses) if (!res.headersSent) res.setHeader('connection', 'close');
    for (const socket of this.#sockets) if (!this.#busy.has(socket)) socket.destroy();
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
    if (this.#sockets.size === 0) return;
    this.#cut?.(cause);
    for (const socket of this.#sockets) socket.destroy();
  }
}
