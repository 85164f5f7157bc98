import type { HelpSpec, Parsed } from './args.ts';
import type { Output } from './output.ts';

/** What every command is given once its arguments are parsed. */
interface Context extends Parsed {
  out: Output;
  /** The lock directory: --dir, else $PORTLOCK_DIR, else ~/.<name>. */
  dir: string;
  /** The application name (--name). */
  name: string;
  env: Record<string, string | undefined>;
}

/** A command: its help (options included) and what it does; `run` resolves with the exit code. */
export interface Command extends HelpSpec {
  /** `run` takes a command to start after its own options. */
  rest?: boolean;
  run(context: Context): Promise<number>;
}
