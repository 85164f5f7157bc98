import { isIP } from 'node:net';
import { type ResolvedAcquire, resolveAcquire } from '../options/resolve.ts';
import { assertOptionsObject, describe, isPort, validateWait } from '../options/validate.ts';
import { hashToPort } from './prefer.ts';
import { defaultRange } from './range.ts';
import type { PortOptions } from './types.ts';

/** Every loopback and wildcard address a local server may bind. */
export const DEFAULT_HOSTS: readonly string[] = Object.freeze(['127.0.0.1', '::1', '0.0.0.0', '::']);

export interface ResolvedPortOptions {
  range: readonly [number, number];
  /** The port to try first, if any: `prefer` as given, or hashed into the range. */
  preferred: number | undefined;
  hosts: readonly string[];
  listen: boolean;
  wait: number;
  /** Each port's lock options, checked once, as acquireLock checks them (see `withScope`). */
  lock: ResolvedAcquire;
}

function validateRange(range: unknown): readonly [number, number] {
  if (range === undefined) return defaultRange();
  if (!Array.isArray(range) || range.length !== 2) {
    throw new TypeError(`range must be [low, high], two port numbers, got ${describe(range)}`);
  }
  const [low, high] = range as unknown[];
  if (!isPort(low) || !isPort(high)) {
    throw new RangeError(
      `range must be [low, high] with integer ports from 1 to 65535, got [${describe(low)}, ${describe(high)}]`,
    );
  }
  if (low > high) throw new RangeError(`range [${low}, ${high}] is empty: low must not be above high`);
  return [low, high];
}

function validatePrefer(prefer: unknown, range: readonly [number, number]): number | undefined {
  if (prefer === undefined) return undefined;
  const [low, high] = range;
  if (typeof prefer === 'string') {
    if (prefer.length === 0)
      throw new RangeError('prefer must be a port number or a non-empty string, got an empty string');
    return hashToPort(prefer, range);
  }
  if (typeof prefer !== 'number') {
    throw new TypeError(`prefer must be a port number or a non-empty string, got ${describe(prefer)}`);
  }
  if (!Number.isInteger(prefer) || prefer < low || prefer > high) {
    throw new RangeError(`prefer must be an integer port inside range ${low}-${high}, got ${describe(prefer)}`);
  }
  return prefer;
}

function validateHosts(host: unknown): readonly string[] {
  if (host === undefined) return DEFAULT_HOSTS;
  const hosts: unknown[] = typeof host === 'string' ? [host] : Array.isArray(host) ? host : [undefined];
  if (hosts.length === 0) throw new RangeError('host must name at least one IP address, got an empty array');
  for (const one of hosts) {
    if (typeof one !== 'string' || isIP(one) === 0) {
      throw new TypeError(
        `host must be an IP address (such as '127.0.0.1' or '::1') or a list of them, got ${describe(one)}`,
      );
    }
  }
  return hosts as string[];
}

/** Checks every option before anything is bound or written; throws TypeError or RangeError. */
export function resolvePortOptions(options: PortOptions = {}): ResolvedPortOptions {
  assertOptionsObject(options, 'acquirePort');
  const given = options as PortOptions & { port?: unknown; key?: unknown };
  if (given.port !== undefined || given.key !== undefined) {
    throw new TypeError('acquirePort chooses the port: pass prefer (and range) instead of port or key');
  }
  const { prefer, range, host, listen, wait, ...lock } = options;
  const checkedRange = validateRange(range);
  const preferred = validatePrefer(prefer, checkedRange);
  const hosts = validateHosts(host);
  if (listen !== undefined && typeof listen !== 'boolean') {
    throw new TypeError(`listen must be true or false, got ${describe(listen)}`);
  }
  // The lock's own options are checked as acquireLock checks them, once for every port of the range.
  const resolved = resolveAcquire({ ...lock, port: checkedRange[0] });
  return { range: checkedRange, preferred, hosts, listen: listen ?? false, wait: validateWait(wait), lock: resolved };
}
