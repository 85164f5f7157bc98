// What every bench worker shares: one JSON line per message on stdout, and commands read from stdin
// one line at a time until the bench closes it.
import { createInterface } from 'node:readline';
import { errorText } from '../common.ts';

/** Sends the bench one message, as one line of JSON. */
export function reply(message: object): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

/**
 * Says it is ready, then hands each command to `handle` in turn (an error is sent back, and the
 * worker goes on); exits once the bench closes stdin, being done with this worker.
 */
export async function serveCommands<Command>(handle: (command: Command) => Promise<void>): Promise<never> {
  reply({ type: 'ready', pid: process.pid });
  for await (const line of createInterface({ input: process.stdin })) {
    try {
      await handle(JSON.parse(line) as Command);
    } catch (error) {
      reply({ type: 'error', error: errorText(error) });
    }
  }
  process.exit(0);
}
