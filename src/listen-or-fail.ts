import { once } from 'node:events';
import type { ListenOptions, Server } from 'node:net';

/**
 * Starts `server` listening (or serving an inherited descriptor, `{ fd }`): resolves once it listens, or rejects with the error that kept it
 * from listening (EADDRINUSE and the like). No listener of its own is left on the server.
 */
export async function listenOrFail(server: Server, options: ListenOptions | { fd: number }): Promise<void> {
  const listening = once(server, 'listening');
  server.listen(options);
  await listening;
}
