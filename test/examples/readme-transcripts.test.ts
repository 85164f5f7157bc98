import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { cli } from '../cli/_support.ts';
import { freePort } from '../helpers/free-port.ts';
import { projectRoot } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

/** What the README shows after `$ <command>` in a console block, up to the block's end. */
function transcript(command: string): string {
  const readme = readFileSync(join(projectRoot, 'README.md'), 'utf8');
  const at = readme.indexOf(`$ ${command}\n`);
  assert.ok(at >= 0, `README shows $ ${command}`);
  const start = at + command.length + 3;
  return readme.slice(start, readme.indexOf('```', start));
}

const sharedTmp = (() => {
  try {
    return (statSync('/tmp').mode & 0o7777) === 0o1777 ? undefined : '/tmp is not mode 1777 here';
  } catch {
    return 'no /tmp';
  }
})();

describe('README transcripts are what the command prints', () => {
  it('portlock run -p 8205 -- /tmp', async () => {
    const port = await freePort();
    const dir = tempDir();
    const result = await cli(['run', '-p', String(port), '--dir', dir, '--', '/tmp']);
    assert.equal(result.stderr, transcript('portlock run -p 8205 -- /tmp').replaceAll('8205', String(port)));
  });

  it('portlock run -p 8230 --dir /tmp -- true', { skip: sharedTmp }, async () => {
    const port = await freePort();
    const result = await cli(['run', '-p', String(port), '--dir', '/tmp', '--', 'true']);
    assert.equal(result.stderr, transcript('portlock run -p 8230 --dir /tmp -- true'));
  });
});
