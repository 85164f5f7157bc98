import { createServer, type Server } from 'node:net';

/**
 * Ports this process has handed out, each with its claim. A port's interlock name is host-wide
 * (every lock directory and user shares it), and the OS hands a port out again as soon as it is
 * closed, so a port given to one test must never be given to another while this process lives:
 * not in this process, and not in any other that uses this helper at the same time (another test
 * run, a bench). On Linux the claim is an abstract socket name, which the kernel frees when this
 * process exits, however it ends.
 */
const claimed = new Map<number, Server | undefined>();

function listen(server: Server, options: { port: number; host: string } | { path: string }): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') resolve(false);
      else reject(error);
    };
    server.once('error', onError);
    server.listen(options, () => {
      server.off('error', onError);
      resolve(true);
    });
  });
}

/** A port the OS just handed out on loopback, closed again. */
async function osPort(): Promise<number> {
  const server = createServer();
  await listen(server, { port: 0, host: '127.0.0.1' });
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port from listen(0)');
  return address.port;
}

/** Claims `port` for this process's lifetime; false when another process has claimed it. */
async function claim(port: number): Promise<boolean> {
  if (process.platform !== 'linux') {
    claimed.set(port, undefined);
    return true;
  }
  const server = createServer();
  if (!(await listen(server, { path: `\0portlock-test-port/${port}` }))) return false;
  // A claim must not keep this process alive.
  server.unref();
  claimed.set(port, server);
  return true;
}

/**
 * A port number nobody uses: the OS just handed it out on loopback, and no other test has it.
 * Tests never name a fixed port.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = await osPort();
    if (!claimed.has(port) && (await claim(port))) return port;
  }
  throw new Error('no unclaimed port in 100 tries');
}
