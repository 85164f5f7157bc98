// Holds key locks `bench-<from>` to `bench-<to>` in one directory until the bench closes stdin:
// the records a listLocks run finds held. argv: dir, from, to. Says ready once it holds them all.
import { acquireLock, type LockHandle } from '../../src/index.ts';
import { serveCommands } from './serve.ts';

const [dir = '', from = '1', to = '0'] = process.argv.slice(2);
const handles: LockHandle[] = [];
for (let i = Number(from); i <= Number(to); i++) handles.push(await acquireLock({ key: `bench-${i}`, dir }));
await serveCommands(async () => {});
