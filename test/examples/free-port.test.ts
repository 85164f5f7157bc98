import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { hashToPort } from '../../src/port/prefer.ts';
import { defaultRange } from '../../src/port/range.ts';
import { claimBlockOf } from '../helpers/port-range.ts';
import { finished, lineMatching, projectRoot, spawnTracked } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const example = join(projectRoot, 'examples', 'free-port.ts');
// By its full address: the example runs in a directory of its own, where `tsx` alone resolves to nothing.
const tsx = import.meta.resolve('tsx');

/** A working directory whose preferred port lies in a block no other test uses. */
async function placeToRunIn(): Promise<{ cwd: string; preferred: number }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const cwd = tempDir();
    const preferred = hashToPort(cwd, defaultRange());
    if (await claimBlockOf(preferred)) return { cwd, preferred };
  }
  throw new Error('no unclaimed block for the example in 20 tries');
}

describe('examples/free-port.ts ("A free port for each process" in the README)', () => {
  it('is the README example, as it is', () => {
    const code = readFileSync(example, 'utf8')
      .replace(/^(\/\/.*\n)+/, '')
      .replace("from '../src/index.ts'", "from 'portlock'");
    const readme = readFileSync(join(projectRoot, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('\n## A free port for each process\n'));
    assert.equal(/```ts\n([\s\S]*?)```/.exec(section)?.[1], code);
  });

  it('serves on its preferred port, and a second run from the same place on another one', async () => {
    const { cwd, preferred } = await placeToRunIn();
    const env = { ...process.env, PORTLOCK_DIR: tempDir() };
    const runs = [0, 1].map(() =>
      spawnTracked(process.execPath, ['--import', tsx, example], {
        cwd,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
        timeoutMs: 60_000,
      }),
    );
    const done = runs.map((run) => finished(run));
    const ports = await Promise.all(
      runs.map(async (run) =>
        Number(/:(\d+)$/.exec(await lineMatching(run, /^Listening on http:\/\/127\.0\.0\.1:\d+$/))?.[1]),
      ),
    );
    assert.equal(new Set(ports).size, 2, ports.join());
    assert.ok(ports.includes(preferred), `${ports.join()} should include ${preferred}`);
    for (const port of ports) {
      assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), `hello from port ${port}\n`);
    }
    for (const run of runs) run.kill('SIGINT');
    for (const result of await Promise.all(done)) assert.equal(result.code, 0, result.stderr);
  });
});
