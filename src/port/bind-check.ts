import { createServer, type Server } from 'node:net';
import { listenOrFail } from '../listen-or-fail.ts';

/** What binding a port on one address showed. */
type BindOutcome =
  | { kind: 'bound'; server: Server }
  /** Another socket has it (EADDRINUSE), or this process may not bind it (EACCES). */
  | { kind: 'in-use' }
  /** This host has no such address, or not its family (no IPv6): nothing to check there. */
  | { kind: 'unavailable' };

const UNAVAILABLE = new Set(['EADDRNOTAVAIL', 'EAFNOSUPPORT', 'EPROTONOSUPPORT']);
const IN_USE = new Set(['EADDRINUSE', 'EACCES']);

/** Listens on `port` at `host`; any other error than in-use or unavailable is thrown. */
async function bindOn(port: number, host: string): Promise<BindOutcome> {
  const server = createServer();
  try {
    // exclusive: a cluster worker must bind for itself, not share its primary's socket.
    await listenOrFail(server, { port, host, exclusive: true });
    return { kind: 'bound', server };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? '';
    if (IN_USE.has(code)) return { kind: 'in-use' };
    if (UNAVAILABLE.has(code)) return { kind: 'unavailable' };
    throw error;
  }
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/**
 * Whether `port` can be bound on every address of `hosts` now, binding and closing each in turn
 * (one at a time: a wildcard bind conflicts with our own bind on a loopback address). With
 * `keep`, the port is then bound again on the first available address, and that server returned.
 * `unavailable`: not one of the addresses exists here.
 */
export async function checkPort(
  port: number,
  hosts: readonly string[],
  keep: boolean,
): Promise<{ kind: 'free'; server: Server | undefined } | { kind: 'in-use' } | { kind: 'unavailable' }> {
  let first: string | undefined;
  for (const host of hosts) {
    const outcome = await bindOn(port, host);
    if (outcome.kind === 'in-use') return outcome;
    if (outcome.kind === 'unavailable') continue;
    first ??= host;
    await close(outcome.server);
  }
  if (first === undefined) return { kind: 'unavailable' };
  if (!keep) return { kind: 'free', server: undefined };
  const kept = await bindOn(port, first);
  // Taken by another program in the moment between the check and this bind.
  if (kept.kind !== 'bound') return { kind: 'in-use' };
  return { kind: 'free', server: kept.server };
}
