// The next step `portlock stop` prints where it cannot stop the holder: one the reader can take,
// naming only files that exist, and never one that would let a second instance start.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { freePort } from '../helpers/free-port.ts';
import { holdInside, unshareUnavailable } from '../helpers/namespaces.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { cli } from './_support.ts';

const PID_NS = ['--pid', '--fork', '--mount-proc'];

describe('portlock stop: the next step where the holder cannot be stopped from here', () => {
  it('a holder in another pid namespace, through another directory: stop it through that directory, no absent file named', {
    skip: unshareUnavailable(PID_NS),
    timeout: 60_000,
  }, async () => {
    const root = tempDir();
    const holding = join(root, 'pc');
    const other = join(root, 'e2');
    const port = await freePort();
    const holder = await holdInside(PID_NS, { port, dir: holding });
    try {
      const stop = await cli(['stop', String(port), '--dir', other]);
      assert.notEqual(stop.code, 0, stop.stderr);
      assert.ok(!existsSync(join(other, `agent-${port}.lock`)));
      assert.doesNotMatch(stop.stderr, /remove /, stop.stderr);
      assert.match(stop.stderr, new RegExp(`^Next step: portlock stop ${port} --dir ${holding}$`, 'm'), stop.stderr);
    } finally {
      await holder.kill();
    }
  });
});
