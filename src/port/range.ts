import { readFileSync } from 'node:fs';

/**
 * The default range where the kernel's ephemeral range cannot be read (every OS but Linux): below
 * the ephemeral ports of Linux (32768-60999), macOS, the BSDs and Windows (49152-65535), and above
 * the ports well-known services and development servers usually take. The same range as on a
 * usual Linux host, so that a `prefer` string gives the same port everywhere.
 */
export const DEFAULT_PORT_RANGE: readonly [number, number] = Object.freeze([20000, 32767] as const);

// Fewer ports than this left below (or above) the ephemeral range is too few to choose from.
const MIN_RANGE_SIZE = 1000;
const [DEFAULT_LOW, DEFAULT_HIGH] = DEFAULT_PORT_RANGE;

/**
 * The default range given the text of `/proc/sys/net/ipv4/ip_local_port_range` (undefined where
 * there is none): the ports outgoing connections never take, preferring those of
 * {@link DEFAULT_PORT_RANGE}. Pure, for tests.
 */
export function defaultRangeFrom(ephemeral: string | undefined): readonly [number, number] {
  const match = /^\s*(\d+)\s+(\d+)\s*$/.exec(ephemeral ?? '');
  if (match === null) return DEFAULT_PORT_RANGE;
  const low = Number(match[1]);
  const high = Number(match[2]);
  if (!(low >= 1 && low <= high && high <= 65535)) return DEFAULT_PORT_RANGE;
  const below = Math.min(low - 1, DEFAULT_HIGH);
  if (below - DEFAULT_LOW + 1 >= MIN_RANGE_SIZE) return [DEFAULT_LOW, below];
  if (below - 1024 + 1 >= MIN_RANGE_SIZE) return [1024, below];
  if (65535 - high >= MIN_RANGE_SIZE) return [high + 1, 65535];
  // The ephemeral range covers nearly everything: the bind check at the moment of choice must do.
  return DEFAULT_PORT_RANGE;
}

let cached: readonly [number, number] | undefined;

/** The default range on this host; see {@link defaultRangeFrom}. */
export function defaultRange(): readonly [number, number] {
  if (cached !== undefined) return cached;
  let text: string | undefined;
  if (process.platform === 'linux') {
    try {
      text = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8');
    } catch {
      // No /proc (a sandbox): the documented constant.
    }
  }
  cached = defaultRangeFrom(text);
  return cached;
}
