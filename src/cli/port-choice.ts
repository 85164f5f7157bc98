import { resolvePortOptions } from '../port/options.ts';
import { parsePort, parseRange, stringValue, UsageError, type Values } from './args.ts';

/** The port `run` locks: the one given, or one `acquirePort` chooses (`--port auto`). */
export type PortChoice =
  | { kind: 'fixed'; port: number }
  | { kind: 'auto'; prefer: number | string | undefined; range: [number, number] | undefined };

/** Reads --port, --prefer and --range, and checks them as acquirePort would, before anything runs. */
export function portChoice(values: Values): PortChoice {
  const port = stringValue(values, 'port');
  const prefer = stringValue(values, 'prefer');
  const range = stringValue(values, 'range');
  if (port !== 'auto') {
    if (prefer !== undefined || range !== undefined) throw new UsageError('--prefer and --range go with --port auto');
    return { kind: 'fixed', port: parsePort(port, '--port') };
  }
  const choice: PortChoice = {
    kind: 'auto',
    // Digits are a port number; anything else (a path, a name) is hashed to one.
    prefer: prefer === undefined || !/^\d+$/.test(prefer) ? prefer : Number(prefer),
    range: range === undefined ? undefined : parseRange(range, '--range'),
  };
  try {
    resolvePortOptions({
      ...(choice.prefer !== undefined && { prefer: choice.prefer }),
      ...(choice.range !== undefined && { range: choice.range }),
    });
  } catch (error) {
    if (error instanceof TypeError || error instanceof RangeError) throw new UsageError(`--${error.message}`);
    throw error;
  }
  return choice;
}
