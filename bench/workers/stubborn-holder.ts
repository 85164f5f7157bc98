// Holds a port's lock and ignores SIGTERM, so that only SIGKILL ends it: what a forced stop
// escalates to. argv[2]: { port, dir }. Prints {"type":"ready"} once it holds the lock.
import { acquireLock } from '../../src/index.ts';

const { port, dir } = JSON.parse(process.argv[2] ?? '{}') as { port: number; dir: string };
await acquireLock({ port, dir });
process.on('SIGTERM', () => {});
process.stdout.write(`${JSON.stringify({ type: 'ready' })}\n`);
// Alive until killed (the bench's own timer kills it at the latest).
setInterval(() => {}, 60_000);
