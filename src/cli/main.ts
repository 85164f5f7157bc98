import { parseArgs } from 'node:util';
import { AlreadyRunningError } from '../agent/errors.ts';
import {
  DiskFullError,
  LockDirectoryError,
  LockHeldError,
  LockLostError,
  LockPathError,
  lockDirectoryMessage,
  lockPathMessage,
  PortRangeExhaustedError,
} from '../errors.ts';
import { lockDirOf, lockPathFor } from '../options/resolve.ts';
import { GLOBAL_OPTIONS, optionLines, parse, renderHelp, stringValue, table, toParseArgs, UsageError } from './args.ts';
import type { Command } from './command.ts';
import { EXIT } from './exit-codes.ts';
import { type CliIO, Output } from './output.ts';
import { leadingPort, optionsOf, placePort } from './port-argument.ts';
import { version } from './version.ts';

export type { CliIO } from './output.ts';

// Each command loads only when it runs, so that a refusal costs little more than starting Node.
const COMMANDS: Record<string, () => Promise<Command>> = {
  run: async () => (await import('./commands/run.ts')).run,
  up: async () => (await import('./commands/up.ts')).up,
  down: async () => (await import('./commands/down.ts')).down,
  logs: async () => (await import('./commands/logs.ts')).logs,
  agent: async () => (await import('./commands/agent.ts')).agent,
  status: async () => (await import('./commands/status.ts')).status,
  list: async () => (await import('./commands/list.ts')).list,
  stop: async () => (await import('./commands/stop.ts')).stop,
  clean: async () => (await import('./commands/clean.ts')).clean,
};
const ALIASES: Record<string, string> = { ls: 'list' };

/** Every command, loaded: for the top-level help and for tests. */
export async function allCommands(): Promise<Command[]> {
  return Promise.all(Object.values(COMMANDS).map((load) => load()));
}

async function topHelp(): Promise<string> {
  const commands = await allCommands();
  const width = Math.max(...commands.map((command) => command.name.length));
  return [
    'Usage: portlock <command> [options]',
    '',
    'Exactly one live instance per port: run a command under a port lock; see, stop and clean locks.',
    '',
    'Commands:',
    ...commands.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}`),
    `  ${'help'.padEnd(width)}  show a command's options, environment, exit codes and examples`,
    '',
    'Global options (every command, before or after its name):',
    ...table(optionLines(GLOBAL_OPTIONS)),
    '',
    'Every command that takes a port takes it as -p/--port <port> or as an argument: portlock status 5338.',
    '',
    "Run 'portlock help <command>' (or 'portlock <command> --help') for a command's options, environment,",
    'exit codes and examples.',
    '',
  ].join('\n');
}

const isCommandName = (word: string) => word in COMMANDS || word in ALIASES || word === 'help';

/**
 * Where the command name is: the first argument that names a command, before any `--`, so that a
 * command's own options may come first (`portlock --port 5338 status`). Options this function does
 * not know are the command's to judge, once it is known.
 */
function findCommand(argv: string[]) {
  const { tokens } = parseArgs({
    args: argv,
    options: toParseArgs(GLOBAL_OPTIONS),
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const end = tokens.find((token) => token.kind === 'option-terminator')?.index ?? argv.length;
  const words = tokens.flatMap((token) => (token.kind === 'positional' && token.index < end ? [token] : []));
  const found = words.find((token) => isCommandName(token.value)) ?? words[0];
  if (found === undefined) {
    const unknown = tokens.find((token) => token.kind === 'option' && !(token.name in GLOBAL_OPTIONS));
    if (unknown?.kind === 'option') return { name: undefined, args: argv, unknown: unknown.rawName };
    const flag = (name: string) => tokens.some((token) => token.kind === 'option' && token.name === name);
    return { name: undefined, args: argv, version: flag('version'), help: flag('help') };
  }
  return {
    name: found.value,
    args: [...argv.slice(0, found.index), ...argv.slice(found.index + 1)],
    // `portlock --port 5338`: the word may be an option's value rather than a mistyped command.
    after: isCommandName(found.value) ? undefined : argv[found.index - 1],
  };
}

async function isSomeCommandsOption(rawName: string): Promise<boolean> {
  return (await allCommands()).some((command) =>
    Object.entries(optionsOf(command)).some(
      ([name, spec]) => rawName === `--${name}` || (spec.short !== undefined && rawName === `-${spec.short}`),
    ),
  );
}

function resolveDir(values: Record<string, string | boolean | undefined>, name: string, env: CliIO['env']): string {
  const given = stringValue(values, 'dir');
  if (given === '') throw new UsageError('--dir must not be empty');
  try {
    lockPathFor({ port: 1, name });
  } catch (error) {
    throw new UsageError(`--${(error as Error).message}`);
  }
  return lockDirOf(given, name, env);
}

/** The library's errors name its options (`dir`); here the reader types flags (`--dir`). */
function inCliWords(error: unknown): string | undefined {
  if (error instanceof LockDirectoryError)
    return lockDirectoryMessage(error.dir, error.problem, error.detail, 'cli', error.parent);
  if (error instanceof LockPathError) return lockPathMessage(error.lockPath, error.problem, 'cli');
  return undefined;
}

/** portlock's own errors: each has a stable code and explains itself with a next step. */
const OWN_ERRORS = [
  LockHeldError,
  LockDirectoryError,
  LockPathError,
  LockLostError,
  PortRangeExhaustedError,
  DiskFullError,
  AlreadyRunningError,
];

/**
 * An error whose message is for the user as it stands: one of portlock's own, or the system's
 * (a failed system call, which the user's machine or input caused). Anything else, Node's own
 * `ERR_*` errors included, is a fault of this tool.
 */
function explainsItself(error: unknown): error is Error & { code: string } {
  if (OWN_ERRORS.some((own) => error instanceof own)) return true;
  const { code, syscall } = (error ?? {}) as { code?: unknown; syscall?: unknown };
  return typeof code === 'string' && typeof syscall === 'string';
}

async function failure(out: Output, error: unknown): Promise<number> {
  // Loaded only on this path: a system error the user can cause gets a sentence and a next step.
  const explained = (await import('./system-errors.ts')).explainSystemError(error);
  if (explained !== undefined) {
    out.error(explained.code, explained.message);
    return EXIT.failure;
  }
  const { message } = error as { message?: unknown };
  const text = inCliWords(error) ?? (typeof message === 'string' ? message : String(error));
  if (explainsItself(error)) out.error(error.code, text);
  else out.error('EINTERNAL', `unexpected error: ${text}`);
  return EXIT.failure;
}

function printVersion(out: Output): number {
  if (out.json) out.document({ version: version() });
  else out.out(version());
  return EXIT.ok;
}

/** `portlock help [<command>]`: the same text as `--help`. */
async function help(args: string[], io: CliIO): Promise<number> {
  const { positionals } = parseArgs({
    args,
    options: toParseArgs(GLOBAL_OPTIONS),
    strict: false,
    allowPositionals: true,
  });
  if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
  const [name] = positionals;
  if (name === undefined) {
    io.stdout.write(await topHelp());
    return EXIT.ok;
  }
  const load = COMMANDS[ALIASES[name] ?? name];
  if (load === undefined) throw new UsageError(`unknown command '${name}'`);
  const command = await load();
  io.stdout.write(renderHelp(command, optionsOf(command)));
  return EXIT.ok;
}

/**
 * The `portlock` command line. Resolves with the exit code; never exits the process itself, so
 * that it can run in-process (tests) as well as from the `portlock` binary.
 */
export async function main(argv: string[], io: CliIO): Promise<number> {
  const beforeDashes = argv.includes('--') ? argv.slice(0, argv.indexOf('--')) : argv;
  let out = new Output(io, { json: beforeDashes.includes('--json'), noColor: beforeDashes.includes('--no-color') });
  let commandName: string | undefined;
  try {
    const found = findCommand(argv);
    if (found.name === undefined) {
      if (found.version) return printVersion(out);
      if (found.help) {
        io.stdout.write(await topHelp());
        return EXIT.ok;
      }
      if (argv.length === 0) {
        io.stderr.write(await topHelp());
        return EXIT.usage;
      }
      // A command's option without the command is the missing command's fault, not the option's.
      if (found.unknown !== undefined && !(await isSomeCommandsOption(found.unknown))) {
        throw new UsageError(`unknown option ${found.unknown}`);
      }
      throw new UsageError('missing the command (run, up, down, logs, agent, status, list, stop or clean)');
    }
    if (found.name === 'help') return await help(found.args, io);
    commandName = ALIASES[found.name] ?? found.name;
    const load = COMMANDS[commandName];
    if (load === undefined) {
      const name = found.name;
      commandName = undefined;
      if (found.after?.startsWith('-') && (await isSomeCommandsOption(found.after))) {
        throw new UsageError('missing the command (run, up, down, logs, agent, status, list, stop or clean)');
      }
      throw new UsageError(`unknown command '${name}'`);
    }
    const command = await load();
    const options = optionsOf(command);
    const leading = leadingPort(command, found.args);
    const parsed = placePort(command, parse(leading.args, options, { rest: command.rest === true }), leading.port);
    out = new Output(io, { json: parsed.values.json === true, noColor: parsed.values['no-color'] === true });
    if (parsed.values.version === true) return printVersion(out);
    if (parsed.values.help === true) {
      io.stdout.write(renderHelp(command, options));
      return EXIT.ok;
    }
    const name = stringValue(parsed.values, 'name') ?? 'portlock';
    const dir = resolveDir(parsed.values, name, io.env);
    return await command.run({ ...parsed, out, dir, name, env: io.env });
  } catch (error) {
    if (error instanceof UsageError) {
      const help = commandName === undefined ? 'portlock --help' : `portlock ${commandName} --help`;
      const where = commandName === undefined ? '' : `${commandName}: `;
      out.error(error.code, `${where}${error.message}`, {}, `Try '${help}'.`);
      return EXIT.usage;
    }
    return await failure(out, error);
  }
}
