// A server on a port of its own: start it twice, or in two worktrees, and each gets its own port.
//   node --import tsx examples/free-port.ts
import { createServer } from 'node:http';
import { acquirePort } from '../src/index.ts';

// This project's port, the same one run after run while it is free; another free one when a
// parallel run has it. Never a port another caller holds, never one another program has bound.
const handle = await acquirePort({ prefer: process.cwd(), listen: true });

const server = createServer((_request, response) => response.end(`hello from port ${handle.port}\n`));
// The socket acquirePort already bound: no moment in which anything else could take the port.
server.listen(handle.server, () => console.log(`Listening on http://127.0.0.1:${handle.port}`));

process.once('SIGINT', () => server.close(() => handle.release()));
