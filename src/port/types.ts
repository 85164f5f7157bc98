import type { Server } from 'node:net';
import type { AcquireOptions, LockHandle } from '../types.ts';

/** Options of {@link acquirePort}: those of `acquireLock` without `port` and `key`, plus these. */
export interface PortOptions extends Omit<AcquireOptions, 'port' | 'key'> {
  /**
   * The port to try first: a port number inside `range`, or any non-empty string (a project path,
   * a worktree, a service name) that is hashed to a port inside `range`. The same string gives
   * the same port on every run and every machine (for the same `range`) while that port is free.
   */
  prefer?: number | string;
  /**
   * The ports to choose from, `[low, high]`, inclusive, within 1-65535. The default lies below
   * the kernel's ephemeral range, so that an outgoing connection never takes a port between its
   * choice and its use: `DEFAULT_PORT_RANGE` (20000-32767), on Linux cut short below the start of
   * `/proc/sys/net/ipv4/ip_local_port_range` (nothing to cut with the usual 32768-60999); where that
   * leaves fewer than 1000 ports, from 1024 up to that start, or else above the ephemeral range.
   */
  range?: readonly [number, number];
  /**
   * Where the port must be free, checked by binding it on each address in turn: an IP address or
   * a list of them. An address whose family this host lacks (`::1` and `::` without IPv6) is
   * skipped. With `listen`, `server` listens on the first address of the list.
   * @default ['127.0.0.1', '::1', '0.0.0.0', '::']
   */
  host?: string | readonly string[];
  /**
   * Also return `server`, a `net.Server` already listening on the port, to hand to your own server
   * (`http.createServer(app).listen(handle.server)`): no moment at all between choosing the port
   * and serving on it. It is yours: `release()` does not close it.
   * @default false
   */
  listen?: boolean;
  /**
   * When every port of `range` is held, keep looking for this many milliseconds before rejecting
   * with `PortRangeExhaustedError`. `Infinity` looks until a port frees up or `signal` aborts.
   * @default 0
   */
  wait?: number;
}

/** A port held by this process: its lock, and the port itself. */
export interface PortHandle extends LockHandle {
  /** The port: its lock is held, and it could be bound on every address of `host` when chosen. */
  readonly port: number;
  /** With `listen: true`, a server listening on the port (on the first address of `host`). */
  readonly server?: Server;
}

/** The handle `acquirePort({ listen: true })` resolves with. */
export interface ListeningPortHandle extends PortHandle {
  readonly server: Server;
}
