import { parseArgs } from 'node:util';
import { GLOBAL_OPTIONS, type OptionSpecs, type Parsed, toParseArgs, UsageError } from './args.ts';
import type { Command } from './command.ts';

// One convention for every command that takes a port: `--port <port>`, `-p <port>`, or `<port>`
// as an argument. A command declares whichever form it reads; the other is translated to it here.

function readsPositional(command: Command): boolean {
  return command.arguments?.some(([name]) => name === '<port>') === true && !('port' in command.options);
}

/** The command's options, with `--port/-p` added for a command that reads the port as `<port>`. */
export function optionsOf(command: Command): OptionSpecs {
  if (!readsPositional(command)) return command.options;
  return {
    port: { type: 'string', short: 'p', value: '<port>', description: 'the port, as an option instead of <port>' },
    ...command.options,
  };
}

/**
 * For a command that runs a command of its own (`run 8080 -- node server.js`): a port given as the
 * first argument, taken out so that the options after it still parse as options.
 */
export function leadingPort(command: Command, args: string[]): { args: string[]; port: string | undefined } {
  if (command.rest !== true || !('port' in command.options)) return { args, port: undefined };
  const options = toParseArgs({ ...GLOBAL_OPTIONS, ...command.options });
  const { tokens } = parseArgs({ args, options, strict: false, allowPositionals: true, tokens: true });
  const first = tokens.find((token) => token.kind === 'positional' || token.kind === 'option-terminator');
  // A port, and a command after it: a lone number is the command itself.
  if (first?.kind !== 'positional' || !/^\d+$/.test(first.value) || first.index === args.length - 1) {
    return { args, port: undefined };
  }
  const rest = [...args.slice(0, first.index), ...args.slice(first.index + 1)];
  return { args: rest, port: first.value };
}

/** Puts the port where the command reads it; a port given both ways must be given once. */
export function placePort(command: Command, parsed: Parsed, leading: string | undefined): Parsed {
  const { values, positionals } = parsed;
  const option = typeof values.port === 'string' ? values.port : undefined;
  const given = leading ?? (readsPositional(command) || command.rest === true ? undefined : positionals[0]);
  if (readsPositional(command)) {
    if (option === undefined) return parsed;
    if (positionals.length > 0) throw new UsageError(`the port is given twice ('${option}' and '${positionals[0]}')`);
    const { port: _, ...others } = values;
    return { ...parsed, values: others, positionals: [option] };
  }
  if (given === undefined || !('port' in command.options)) return parsed;
  if (option !== undefined) throw new UsageError(`the port is given twice ('${option}' and '${given}')`);
  return {
    ...parsed,
    values: { ...values, port: given },
    positionals: leading === undefined ? positionals.slice(1) : positionals,
  };
}
