import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { lockPathFor } from '../options/resolve.ts';
import { GLOBAL_OPTIONS, parse, renderHelp, stringValue, toParseArgs, UsageError } from './args.ts';
import type { Command } from './command.ts';
import { EXIT } from './exit-codes.ts';
import { type CliIO, Output } from './output.ts';
import { version } from './version.ts';

export type { CliIO } from './output.ts';

// Each command loads only when it runs, so that a refusal costs little more than starting Node.
const COMMANDS: Record<string, () => Promise<Command>> = {
  run: async () => (await import('./commands/run.ts')).run,
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
    '',
    'Global options (every command):',
    ...Object.entries(GLOBAL_OPTIONS).map(
      ([name, spec]) => `  ${spec.short ? `-${spec.short}, ` : '    '}--${name}${spec.value ? ` ${spec.value}` : ''}`,
    ),
    '      --version',
    '',
    "Run 'portlock <command> --help' for a command's options, environment, exit codes and examples.",
    '',
  ].join('\n');
}

/** Where the command name is: the first positional, after any global options. */
function findCommand(argv: string[]) {
  const options = { ...toParseArgs(GLOBAL_OPTIONS), version: { type: 'boolean' as const } };
  const { tokens } = parseArgs({ args: argv, options, strict: false, allowPositionals: true, tokens: true });
  const first = tokens.find((token) => token.kind === 'positional' || token.kind === 'option-terminator');
  const before = tokens.filter((token) => first === undefined || token.index < first.index);
  const flag = (name: string) => before.some((token) => token.kind === 'option' && token.name === name);
  if (first?.kind !== 'positional')
    return { name: undefined, args: argv, version: flag('version'), help: flag('help') };
  return {
    name: first.value,
    args: [...argv.slice(0, first.index), ...argv.slice(first.index + 1)],
    version: flag('version'),
    help: flag('help'),
  };
}

function resolveDir(values: Record<string, string | boolean | undefined>, name: string, env: CliIO['env']): string {
  const given = stringValue(values, 'dir');
  if (given === '') throw new UsageError('--dir must not be empty');
  try {
    lockPathFor({ port: 1, name });
  } catch (error) {
    throw new UsageError(`--${(error as Error).message}`);
  }
  return resolve(given ?? (env.PORTLOCK_DIR || join(env.HOME || homedir(), `.${name}`)));
}

function failure(out: Output, error: unknown): number {
  const { code, message } = error as { code?: unknown; message?: unknown };
  const text = typeof message === 'string' ? message : String(error);
  // The library's own errors explain themselves; anything else is a fault of this tool.
  const known = typeof code === 'string' && code.startsWith('E');
  out.error(known ? code : 'EINTERNAL', known ? text : `unexpected error: ${text}`);
  return EXIT.failure;
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
      if (found.version) {
        if (out.json) out.document({ version: version() });
        else out.out(version());
        return EXIT.ok;
      }
      if (found.help) {
        io.stdout.write(await topHelp());
        return EXIT.ok;
      }
      if (argv.length === 0) {
        io.stderr.write(await topHelp());
        return EXIT.usage;
      }
      throw new UsageError('missing the command (run, agent, status, list, stop or clean)');
    }
    commandName = ALIASES[found.name] ?? found.name;
    const load = COMMANDS[commandName];
    if (load === undefined) {
      const name = found.name;
      commandName = undefined;
      throw new UsageError(`unknown command '${name}'`);
    }
    const command = await load();
    const parsed = parse(found.args, command.options, { rest: command.rest === true });
    out = new Output(io, { json: parsed.values.json === true, noColor: parsed.values['no-color'] === true });
    if (parsed.values.help === true || found.help) {
      io.stdout.write(renderHelp(command));
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
    return failure(out, error);
  }
}
