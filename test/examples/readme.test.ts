import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { projectRoot } from '../helpers/spawn.ts';

/** The first TypeScript block of a README section. */
function codeUnder(heading: string): string {
  const readme = readFileSync(join(projectRoot, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf(`\n${heading}\n`));
  const block = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(block, `README has a ts block under ${heading}`);
  return block;
}

describe('README', () => {
  it('shows examples/embed-agent.ts as it is (the example a test runs)', () => {
    const example = readFileSync(join(projectRoot, 'examples', 'embed-agent.ts'), 'utf8')
      .replace(/^(\/\/.*\n)+/, '')
      .replace("from '../src/index.ts'", "from 'portlock'");
    assert.equal(codeUnder('## Embedding in your server'), example);
  });
});
