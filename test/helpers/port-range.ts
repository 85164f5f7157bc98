import { createServer, type Server } from 'node:net';
import { replayHint, seed, seeded } from './seed.ts';

/**
 * Ranges of ports for acquirePort's tests: blocks below the kernel's ephemeral range (where
 * `freePort()` and the OS's port 0 never go), at a seeded random place, each claimed for this
 * process's lifetime through an abstract socket name, so that two test files, or two test runs
 * on one host, never share a block. The seed is printed; PORTLOCK_TEST_SEED replays it.
 */
const BLOCK = 64;
const FIRST_BLOCK = 20000 / BLOCK;
const BLOCKS = Math.floor((32767 - 20000 + 1) / BLOCK) - 1;

console.log(`port ranges: seed ${seed} (${replayHint})`);

const random = seeded(seed);
const claims: Server[] = [];

function claim(block: number): Promise<boolean> {
  if (process.platform !== 'linux') return Promise.resolve(true);
  const server = createServer();
  return new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') resolve(false);
      else reject(error);
    });
    server.listen({ path: `\0portlock-test-port-block/${block}` }, () => {
      server.unref();
      claims.push(server);
      resolve(true);
    });
  });
}

/** Claims the block that holds `port` (below 32768), as portRange would; false when someone has it. */
export function claimBlockOf(port: number): Promise<boolean> {
  return claim(Math.floor(port / BLOCK));
}

/** A block of `size` (at most 64) consecutive ports nobody else's test uses: `[low, high]`. */
export async function portRange(size = BLOCK): Promise<[number, number]> {
  if (size > BLOCK) throw new Error(`portRange: at most ${BLOCK} ports`);
  for (let attempt = 0; attempt < 100; attempt++) {
    const block = FIRST_BLOCK + Math.floor(random() * BLOCKS);
    if (await claim(block)) return [block * BLOCK, block * BLOCK + size - 1];
  }
  throw new Error('portRange: no unclaimed block in 100 tries');
}
