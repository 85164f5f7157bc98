import { parseArgs } from 'node:util';
import { isPort, MAX_TIMER_MS } from '../options/validate.ts';

/** One command-line option: what `parseArgs` needs, and what its help line says. */
interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** The value's placeholder in help, such as `<port>`. */
  value?: string;
  description: string;
  /** The default, as typed on the command line; parsing applies it and help shows it. */
  default?: string;
  /** A default that is not a literal value, shown in help only (for example `$PORTLOCK_DIR`). */
  defaultText?: string;
}

export type OptionSpecs = Record<string, OptionSpec>;

/** Raised for anything the user typed wrong: exit 2, with a one-line hint. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly code = 'EUSAGE';
}

/** Options every command takes. */
export const GLOBAL_OPTIONS: OptionSpecs = {
  dir: {
    type: 'string',
    value: '<dir>',
    description: 'the directory that holds the lock files',
    defaultText: '$PORTLOCK_DIR, else ~/.<name>',
  },
  name: {
    type: 'string',
    value: '<name>',
    description: "the application's name, shown in messages and naming the default directory",
    default: 'portlock',
  },
  json: { type: 'boolean', description: 'print one JSON document on stdout; errors as {"error":{"code","message"}}' },
  'no-color': { type: 'boolean', description: 'never colour the output (colour is used on a terminal only)' },
  help: { type: 'boolean', short: 'h', description: "show the command's help (portlock help <command> does too)" },
  version: { type: 'boolean', short: 'V', description: "print portlock's version" },
};

/** Environment variables every command reads. */
export const GLOBAL_ENV: [string, string][] = [
  ['PORTLOCK_DIR', 'the lock directory when --dir is not given'],
  ['NO_COLOR', 'when set (to anything but the empty string), never colour the output'],
];

export type Values = Record<string, string | boolean | undefined>;

export interface Parsed {
  values: Values;
  positionals: string[];
  /** For `run`: everything from the command on, as typed. */
  rest: string[];
}

export function toParseArgs(specs: OptionSpecs) {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; default?: string }> = {};
  for (const [name, spec] of Object.entries(specs)) {
    options[name] = {
      type: spec.type,
      ...(spec.short !== undefined && { short: spec.short }),
      ...(spec.default !== undefined && { default: spec.default }),
    };
  }
  return options;
}

/**
 * Parses a command's arguments against its options and the global ones. Everything is checked
 * here, with messages in this tool's words: unknown options, missing values, values given to
 * switches. With `rest`, parsing stops at `--` or at the first positional, which starts a command.
 */
export function parse(args: string[], specs: OptionSpecs, mode: { rest?: boolean } = {}): Parsed {
  const all = { ...GLOBAL_OPTIONS, ...specs };
  const options = toParseArgs(all);
  let own = args;
  let rest: string[] = [];
  if (mode.rest) {
    const { tokens } = parseArgs({ args, options, strict: false, allowPositionals: true, tokens: true });
    const start = tokens.find((token) => token.kind === 'positional' || token.kind === 'option-terminator');
    if (start !== undefined) {
      own = args.slice(0, start.index);
      rest = args.slice(start.kind === 'option-terminator' ? start.index + 1 : start.index);
    }
  }
  const { values, positionals, tokens } = parseArgs({
    args: own,
    options,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    const spec = all[token.name];
    if (spec === undefined) throw new UsageError(`unknown option ${token.rawName}`);
    if (spec.type === 'string' && token.value === undefined) {
      throw new UsageError(`${token.rawName} needs a value${spec.value ? ` ${spec.value}` : ''}`);
    }
    if (spec.type === 'boolean' && token.value !== undefined) {
      throw new UsageError(`${token.rawName} takes no value`);
    }
  }
  return { values: values as Values, positionals, rest };
}

export function stringValue(values: Values, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

export function parsePort(text: string | undefined, what: string, options: { allowZero?: boolean } = {}): number {
  if (text === undefined) throw new UsageError(`${what} is required`);
  const port = /^\d{1,5}$/.test(text) ? Number(text) : Number.NaN;
  if (!(isPort(port) || (options.allowZero && port === 0))) {
    throw new UsageError(`${what} must be a port number from ${options.allowZero ? 0 : 1} to 65535, got '${text}'`);
  }
  return port;
}

/** A range of ports as typed, `<low>-<high>`; whether it is a usable range is the library's to say. */
export function parseRange(text: string, what: string): [number, number] {
  const match = /^(\d{1,5})-(\d{1,5})$/.exec(text);
  if (match === null) throw new UsageError(`${what} must be <low>-<high>, two port numbers, got '${text}'`);
  return [Number(match[1]), Number(match[2])];
}

/** Seconds as typed (`2`, `0.5`, or `forever` where allowed), in milliseconds. */
export function parseSeconds(text: string, what: string, options: { forever?: boolean } = {}): number {
  if (options.forever && text === 'forever') return Number.POSITIVE_INFINITY;
  const seconds = /^\d+(\.\d+)?$/.test(text) ? Number(text) : Number.NaN;
  // Node fires timers set beyond about 24.8 days at once.
  if (!Number.isFinite(seconds) || seconds * 1000 > MAX_TIMER_MS) {
    throw new UsageError(
      `${what} must be a number of seconds (at most ${Math.floor(MAX_TIMER_MS / 1000)})${options.forever ? " or 'forever'" : ''}, got '${text}'`,
    );
  }
  return seconds * 1000;
}

export function parseExitCode(text: string, what: string): number {
  const code = /^\d{1,3}$/.test(text) ? Number(text) : Number.NaN;
  if (!(code >= 0 && code <= 255)) throw new UsageError(`${what} must be an exit code from 0 to 255, got '${text}'`);
  return code;
}

/** What a command's help is made of; everything about options comes from their specs. */
export interface HelpSpec {
  name: string;
  aliases?: string[];
  usage: string;
  summary: string;
  description?: string;
  options: OptionSpecs;
  arguments?: [string, string][];
  env?: [string, string][];
  /** The code, or a word for a range of them (the command's own exit code under `run`). */
  exitCodes: [number | string, string][];
  examples: [string, string][];
}

export function optionLines(specs: OptionSpecs): [string, string][] {
  return Object.entries(specs).map(([name, spec]) => {
    const flag = `${spec.short ? `-${spec.short}, ` : '    '}--${name}${spec.value ? ` ${spec.value}` : ''}`;
    const shown = spec.default ?? spec.defaultText;
    return [flag, `${spec.description}${shown === undefined ? '' : ` (default: ${shown})`}`];
  });
}

export function table(rows: [string, string][]): string[] {
  const width = Math.max(...rows.map(([left]) => left.length));
  return rows.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`);
}

/** A command's help; `options` may add to the command's own (the `--port` every port-taking command accepts). */
export function renderHelp(spec: HelpSpec, options: OptionSpecs = spec.options): string {
  const lines = [`Usage: ${spec.usage}`, '', spec.summary];
  if (spec.description) lines.push('', spec.description);
  if (spec.aliases?.length) lines.push('', `Alias: ${spec.aliases.map((alias) => `portlock ${alias}`).join(', ')}`);
  if (spec.arguments?.length) lines.push('', 'Arguments:', ...table(spec.arguments));
  if (Object.keys(options).length > 0) lines.push('', 'Options:', ...table(optionLines(options)));
  lines.push('', 'Global options:', ...table(optionLines(GLOBAL_OPTIONS)));
  lines.push('', 'Environment:', ...table([...GLOBAL_ENV, ...(spec.env ?? [])]));
  lines.push('', 'Exit codes:', ...table(spec.exitCodes.map(([code, meaning]) => [String(code), meaning])));
  lines.push('', 'Examples:');
  for (const [example, meaning] of spec.examples) lines.push(`  ${example}`, `      ${meaning}`);
  return `${lines.join('\n')}\n`;
}
