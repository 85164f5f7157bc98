// Takes the lock for a port and holds it until Ctrl-C. Start it twice to see the refusal:
//   npm run example            (port 5338)
//   npm run example -- 5339    (another port)
import { acquireLock, LockHeldError } from '../src/index.ts';

const port = Number(process.argv[2] ?? 5338);

try {
  const lock = await acquireLock({ port });
  // Last chance: whatever ends this process, the lock file goes with it.
  process.on('exit', () => lock.releaseSync());
  const keepAlive = setInterval(() => {}, 60_000);
  const stop = (signal: NodeJS.Signals) => {
    clearInterval(keepAlive);
    void lock.release().then(() => console.log(`${signal}: released ${lock.path}`));
  };
  // Handlers before the announcement: whoever reads it may signal at once, and an unhandled
  // SIGTERM would end the process before the lock could be released.
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  console.log(`Holding the lock for port ${port} as pid ${process.pid}: ${lock.path}`);
  console.log('Run the same command in another terminal to see the refusal. Ctrl-C releases the lock.');
} catch (error) {
  if (!(error instanceof LockHeldError)) throw error;
  console.error(error.message);
  // 75 (EX_TEMPFAIL), as `flock -E` suggests: try again later.
  process.exitCode = 75;
}
