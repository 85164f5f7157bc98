import { BIN, place, spawnCli } from '/work/wt-up-13/test/cli/_support.ts';
import { finished } from '/work/wt-up-13/test/helpers/spawn.ts';

const { dir, port } = await place();
const r = await finished(
  spawnCli(['run', '-p', String(port), '--dir', dir, '--', process.execPath, '--import', 'tsx', BIN, 'agent'], {
    timeoutMs: 3000,
  }),
);
console.log(r);
