// One kernel name per lock, whatever the Node version: Node 20 pads abstract names to the full
// sun_path, Node 22 and later bind exactly the bytes given. Holders and acquirers run under this
// Node and the other one (PORTLOCK_OTHER_NODE), in both directions.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { freePort } from '../helpers/free-port.ts';
import { otherNode, otherNodeUnavailable } from '../helpers/other-node.ts';
import { finished, fixture, lineMatching, spawnTracked } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const linuxOnly = process.platform !== 'linux' ? 'abstract names are Linux' : undefined;

function runTs(node: string, script: string, options: object) {
  return spawnTracked(node, ['--import', 'tsx', fixture(script), JSON.stringify(options)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
}

describe('one kernel name per lock across Node versions', { skip: linuxOnly ?? otherNodeUnavailable() }, () => {
  const here = process.execPath;
  const there = otherNode() ?? '';
  for (const [holderNode, acquirerNode, label] of [
    [there, here, 'the other Node holds, this one acquires'],
    [here, there, 'this Node holds, the other one acquires'],
  ] as const) {
    it(`never two holders, each naming the other: ${label}`, async () => {
      const dir = tempDir();
      for (const target of [{ port: await freePort() }, { key: 'shared-cache' }]) {
        const holder = runTs(holderNode, 'holder.ts', { ...target, dir, name: 'holder-app' });
        await lineMatching(holder, /"ready":true/);
        try {
          const tried = runTs(acquirerNode, 'try-acquire.ts', { ...target, dir });
          const { stdout } = await finished(tried);
          const result = JSON.parse(stdout) as {
            acquired: boolean;
            error?: { code: string; message: string };
            inspection: { state: string; record?: { pid: number } };
          };
          assert.equal(result.acquired, false, `${JSON.stringify(target)}: two holders`);
          assert.equal(result.error?.code, 'ELOCKED');
          assert.match(result.error?.message ?? '', new RegExp(`held by pid ${holder.pid}\\b`));
          assert.equal(result.inspection.state, 'held');
          assert.equal(result.inspection.record?.pid, holder.pid);
        } finally {
          holder.stdin?.end();
          await finished(holder);
        }
      }
    });
  }

  it('takes a holder of the unpadded name (an older portlock under Node 22 or later) for a holder', async () => {
    const exactNode = Number(process.versions.node.split('.')[0]) >= 22 ? here : there;
    const dir = tempDir();
    const port = await freePort();
    const legacy = Buffer.from(`\0portlock/port-${port}`, 'latin1').toString('hex');
    const older = runTs(exactNode, 'squatter.ts', { names: [legacy], answer: { pid: 1, startedAt: 'then' } });
    await lineMatching(older, /"ready":true/);
    try {
      for (const node of [here, there]) {
        const { stdout } = await finished(runTs(node, 'try-acquire.ts', { port, dir }));
        const result = JSON.parse(stdout) as { acquired: boolean; error?: { message: string } };
        assert.equal(result.acquired, false, `${node}: two holders`);
        assert.match(result.error?.message ?? '', new RegExp(`pid ${older.pid}\\b`));
      }
    } finally {
      older.stdin?.end();
      await finished(older);
    }
  });

  it('a holder under Node 22 or later holds the unpadded name too, so an older portlock is refused', async () => {
    const exactNode = Number(process.versions.node.split('.')[0]) >= 22 ? here : there;
    const dir = tempDir();
    const port = await freePort();
    const holder = runTs(exactNode, 'holder.ts', { port, dir, name: 'holder-app' });
    await lineMatching(holder, /"ready":true/);
    try {
      // What an older portlock under that Node binds: the name's bytes, unpadded.
      const legacy = JSON.stringify(`\0portlock/port-${port}`);
      const bind = `require('net').createServer().on('error', (e) => console.log(e.code)).listen({ path: ${legacy}, exclusive: true }, () => { console.log('bound'); process.exit(0); })`;
      const { stdout } = await finished(
        spawnTracked(exactNode, ['-e', bind], { stdio: ['ignore', 'pipe', 'inherit'] }),
      );
      assert.equal(stdout.trim(), 'EADDRINUSE');
    } finally {
      holder.stdin?.end();
      await finished(holder);
    }
  });
});
