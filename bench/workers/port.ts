// A process asking for a port, driven by the bench over stdin: at the barrier it calls one
// finder, then binds the port it got with a plain server, as the caller's own server would, and
// holds it until told to let go.
import { createServer, type Server } from 'node:net';
import { errorText, nowMs, sleep } from '../common.ts';
import { type FinderId, type Found, finders, type PortQuery } from '../port-finders.ts';
import { reply, serveCommands } from './serve.ts';

type Command = { op: 'get'; finder: FinderId; query: PortQuery; startAt: number } | { op: 'release' };

function bind(port: number): Promise<{ server?: Server; error?: string }> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? errorText(error) }));
    server.listen({ port, host: '127.0.0.1' }, () => resolve({ server }));
  });
}

let held: { found: Found; server: Server | undefined } | undefined;

async function get(command: Command & { op: 'get' }): Promise<object> {
  await sleep(command.startAt - nowMs());
  const started = nowMs();
  let found: Found;
  try {
    found = await finders[command.finder].find(command.query);
  } catch (error) {
    return { type: 'got', error: errorText(error) };
  }
  const ms = nowMs() - started;
  const bound = await bind(found.port);
  held = { found, server: bound.server };
  return { type: 'got', port: found.port, ms, bindError: bound.error };
}

async function release(): Promise<object> {
  if (held !== undefined) {
    const { found, server } = held;
    held = undefined;
    if (server !== undefined) await new Promise((resolve) => server.close(resolve));
    await found.release();
  }
  return { type: 'released' };
}

await serveCommands<Command>(async (command) => {
  reply(command.op === 'get' ? await get(command) : await release());
});
