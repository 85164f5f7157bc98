import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { interlockName } from '../../src/interlock/name.ts';
import { cli } from '../cli/_support.ts';
import { nobodyUnavailable, spawnTsAsNobody } from '../helpers/as-nobody.ts';
import { freePort } from '../helpers/free-port.ts';
import { interlockMode } from '../helpers/interlock-mode.ts';
import { refusalOf } from '../helpers/refusal.ts';
import { fixture, lineMatching } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

// The kernel vouches for the process that answers `who`, not for the lock file it names: another
// user's holder of a port's kernel name may name any path, and a refusal must not send the asker there.
// The squatter holds the port's abstract name: run where the lock takes that name (the default run).
const skip =
  nobodyUnavailable() ||
  (interlockMode !== 'auto' &&
    `the squatter holds the abstract name; this run uses PORTLOCK_INTERLOCK=${interlockMode}`);

describe('a holder naming a lock file that is not its own', { skip }, () => {
  it('is not believed: the refusal names the asked file and offers no --dir to the named one', async () => {
    const port = await freePort();
    const dir = tempDir('portlock-told-');
    const named = `/root/.alpha/agent-${port}.lock`;
    const name = interlockName({ kind: 'port', port }, dir) as string;
    const squatter = spawnTsAsNobody(fixture('squatter.ts'), [
      JSON.stringify({
        names: [Buffer.from(name, 'latin1').toString('hex')],
        answer: {
          portlock: 1,
          pid: 'self',
          startedAt: new Date().toISOString(),
          user: 'nobody',
          name: 'alpha',
          port,
          lockFile: named,
        },
      }),
    ]);
    try {
      await lineMatching(squatter, /"ready":true/);
      const error = await refusalOf({ port, dir, wait: 0 });
      assert.notEqual(error.lockPath, named);
      assert.equal(error.meta?.lockFile, undefined);
      const refused = await cli(['run', '-p', String(port), '--dir', dir, '--', 'true']);
      assert.doesNotMatch(refused.stderr, /\/root\/\.alpha/, refused.stderr);
    } finally {
      squatter.stdin?.end();
    }
  });
});
