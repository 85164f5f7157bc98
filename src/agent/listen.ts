import { lookup } from 'node:dns/promises';
import type { Server as HttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { listenOrFail } from '../listen-or-fail.ts';
import { isLoopbackHost } from './request-guard.ts';

/** Where a server listens, and how to stop it listening. */
export interface Listening {
  port: number;
  hosts: string[];
  /** Stops accepting on every address; resolves once the server has closed (its connections too). */
  close(): Promise<void>;
}

interface Candidate {
  host: string;
  /** A loopback address the host may not have (no IPv6, say); skipped when it cannot be bound. */
  optional: boolean;
}

// Errors that mean "this host has no such address", not "someone else holds the port".
const ADDRESS_MISSING = new Set(['EADDRNOTAVAIL', 'EAFNOSUPPORT', 'EPROTONOSUPPORT']);
// With port 0 the OS picks the first address's port, which may be taken on another address.
const PORT_ZERO_ATTEMPTS = 5;
// The caller holds the port's lock, so a port in use is a predecessor whose last sockets the
// kernel is still closing (a killed process frees its lock a moment before its other files), or
// a program that takes no lock. The first clears within milliseconds; give it that long.
const IN_USE_ATTEMPTS = 5;
const IN_USE_DELAY_MS = 20;

/**
 * Every loopback address `localhost` may mean to a client: what the resolver says first, then
 * 127.0.0.1 and ::1, which browsers try for localhost whatever the resolver says.
 */
async function loopbackAddresses(): Promise<string[]> {
  let resolved: string[] = [];
  try {
    resolved = (await lookup('localhost', { all: true })).map((entry) => entry.address).filter(isLoopbackHost);
  } catch {
    // No resolver answer: the fixed addresses below still serve.
  }
  return [...new Set([...resolved, '127.0.0.1', '::1'])];
}

/** The addresses to bind for the `host` option: `localhost` (the default) becomes loopback addresses. */
async function resolveHosts(host: string | string[] | undefined): Promise<Candidate[]> {
  const hosts = host === undefined ? ['localhost'] : Array.isArray(host) ? host : [host];
  const candidates: Candidate[] = [];
  for (const name of hosts) {
    if (name.toLowerCase() === 'localhost') {
      for (const address of await loopbackAddresses()) candidates.push({ host: address, optional: true });
    } else {
      candidates.push({ host: name, optional: false });
    }
  }
  const seen = new Set<string>();
  return candidates.filter((candidate) => !seen.has(candidate.host) && seen.add(candidate.host));
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    // ERR_SERVER_NOT_RUNNING only says it was closed already, which is what is wanted. Only the
    // listener is closed here: an HTTP server's own close() also destroys the connections it
    // thinks idle, and with them a request its client has just sent; the drain closes those.
    // Looked up here, not imported: the bundle loads node:net's functions on first use, not its classes.
    const listenerClose = process.getBuiltinModule('node:net').Server.prototype.close;
    listenerClose.call(server, () => {
      // Now that no connection is left, the HTTP server's close() only stops its timers.
      if (server.close !== listenerClose) server.close(() => {});
      resolve();
    });
  });
}

function boundPort(server: Server): number {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the server has no TCP address');
  return address.port;
}

async function bindAll(server: HttpServer, candidates: Candidate[], port: number): Promise<Listening> {
  const open: Server[] = [];
  const hosts: string[] = [];
  let actual = port;
  const close = () => Promise.all(open.map(closeServer)).then(() => undefined);
  try {
    for (const { host, optional } of candidates) {
      // The first address is served by the application's server itself; the others hand it
      // their connections, so that one server sees, and drains, every connection.
      const target: Server = open.length === 0 ? server : createServer((socket) => server.emit('connection', socket));
      try {
        await listenOrFail(target, { port: actual, host });
      } catch (error) {
        if (optional && ADDRESS_MISSING.has((error as NodeJS.ErrnoException).code ?? '')) continue;
        throw error;
      }
      open.push(target);
      hosts.push(host);
      if (actual === 0) actual = boundPort(target);
    }
  } catch (error) {
    await close();
    throw error;
  }
  if (open.length === 0) {
    // Shaped as the system error it sums up, for callers that tell those apart.
    throw Object.assign(new Error(`none of ${candidates.map((c) => c.host).join(', ')} can be bound here`), {
      code: 'EADDRNOTAVAIL',
      syscall: 'listen',
    });
  }
  return { port: actual, hosts, close };
}

/** Listens on every address of `host` at one port; a port of 0 is chosen by the OS, once for all. */
export async function listenOn(server: HttpServer, host: string | string[] | undefined, port: number) {
  const candidates = await resolveHosts(host);
  for (let attempt = 1; ; attempt++) {
    try {
      return await bindAll(server, candidates, port);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
      if (port === 0 ? attempt >= PORT_ZERO_ATTEMPTS || candidates.length < 2 : attempt >= IN_USE_ATTEMPTS) throw error;
      if (port !== 0) await sleep(IN_USE_DELAY_MS);
    }
  }
}

/** The URL a person would use: `http://localhost:<port>` unless the agent listens elsewhere only. */
export function urlFor(hosts: string[], port: number): string {
  const local = hosts.some((host) => isLoopbackHost(host) || host === '0.0.0.0' || host === '::');
  const host = local ? 'localhost' : (hosts[0] ?? 'localhost');
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}
