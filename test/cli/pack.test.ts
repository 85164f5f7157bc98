import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { finished, projectRoot, spawnTracked } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { place } from './_support.ts';

const { version } = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { version: string };
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

describe('the published package', () => {
  it('installs from its tarball and works as a binary, an ESM import and a CommonJS require', async (t) => {
    const packDir = tempDir('portlock-pack-');
    // `npm pack` builds first (prepack), exactly as a publish would.
    const pack = await finished(
      spawnTracked(npm, ['pack', '--pack-destination', packDir, '--json'], { timeoutMs: 240_000 }),
    );
    assert.equal(pack.code, 0, pack.stderr);
    const [packed] = JSON.parse(pack.stdout) as [{ filename: string; files: { path: string }[] }];
    const paths = packed.files.map((file) => file.path);
    for (const path of ['package.json', 'README.md', 'dist/index.js', 'dist/index.d.ts', 'dist/cli/bin.js']) {
      assert.ok(paths.includes(path), `${path} is in the package`);
    }
    assert.deepEqual(
      paths.filter((path) => !path.startsWith('dist/') && !['package.json', 'README.md', 'LICENSE'].includes(path)),
      [],
      'nothing but the build, the manifest and the README',
    );
    assert.ok(!paths.some((path) => /\.test\.|^dist\/test\//.test(path)));
    // A source map would point at src/, which the package does not ship.
    assert.deepEqual(
      paths.filter((path) => path.endsWith('.map')),
      [],
      'no source maps',
    );

    const project = tempDir('portlock-consumer-');
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
    const install = await finished(
      spawnTracked(npm, ['install', '--offline', '--no-audit', '--no-fund', join(packDir, packed.filename)], {
        cwd: project,
        timeoutMs: 120_000,
      }),
    );
    assert.equal(install.code, 0, install.stderr);
    assert.ok(existsSync(join(project, 'node_modules/portlock/dist/index.d.ts')));
    // One copy of the library: the entries and the command all import the same file.
    const installed = join(project, 'node_modules/portlock');
    const defining = paths.filter(
      (path) =>
        path.endsWith('.js') &&
        /\bclass LockHeldError\b|\bLockHeldError = class\b/.test(readFileSync(join(installed, path), 'utf8')),
    );
    assert.deepEqual(defining, ['dist/chunks/lock.js'], 'LockHeldError is defined once, in the lock bundle');

    const bin = join(project, 'node_modules/.bin/portlock');
    const shown = await finished(spawnTracked(bin, ['--version'], { cwd: project }));
    assert.deepEqual([shown.code, shown.stdout], [0, `${version}\n`]);
    const { dir, port } = await place();
    const status = await finished(spawnTracked(bin, ['status', String(port), '--dir', dir], { cwd: project }));
    assert.deepEqual([status.code, status.stdout], [3, `port ${port}: not running (there is no lock file)\n`]);
    // `up` starts the installed bin again, as its supervisor: it must find it from the bundle.
    const server = ['-e', "require('node:net').createServer().listen(process.env.PORT)"];
    const up = await finished(
      spawnTracked(bin, ['up', '--port', String(port), '--dir', dir, '--', process.execPath, ...server], {
        cwd: project,
      }),
    );
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stdout, new RegExp(`^up: http://localhost:${port} \\(pid \\d+`));
    const down = await finished(spawnTracked(bin, ['down', String(port), '--dir', dir], { cwd: project }));
    assert.equal(down.code, 0, down.stderr);

    writeFileSync(
      join(project, 'esm.mjs'),
      `import { acquireLock, createAgent, stopLock } from 'portlock';
import * as lockOnly from 'portlock/lock';
const lock = await acquireLock({ port: ${port}, dir: ${JSON.stringify(dir)} });
console.log(JSON.stringify({
  held: lock.record.port,
  functions: [typeof createAgent, typeof stopLock],
  lockOnly: [lockOnly.acquireLock === acquireLock, 'createAgent' in lockOnly],
}));
await lock.release();
`,
    );
    const esm = await finished(spawnTracked(process.execPath, ['esm.mjs'], { cwd: project }));
    assert.equal(esm.code, 0, esm.stderr);
    assert.deepEqual(JSON.parse(esm.stdout), {
      held: port,
      functions: ['function', 'function'],
      // The same module as the main entry's, without the agent.
      lockOnly: [true, false],
    });

    // Each entry loads no more of Node than it needs at once: the agent loads node:http when it
    // starts, and the lock loads node:net when it first asks or answers a holder.
    const builtinsOf = async (specifier: string) => {
      const script = [
        'const before = new Set(process.moduleLoadList);',
        `await import(${JSON.stringify(specifier)});`,
        'const loaded = process.moduleLoadList.filter((entry) => !before.has(entry));',
        'console.log(JSON.stringify(loaded.flatMap((entry) => /^NativeModule ([\\w/]+)$/.exec(entry)?.[1] ?? [])));',
      ].join('\n');
      const run = await finished(
        spawnTracked(process.execPath, ['--input-type=module', '-e', script], { cwd: project }),
      );
      assert.equal(run.code, 0, run.stderr);
      return JSON.parse(run.stdout) as string[];
    };
    // And no more of the package: what `portlock/lock` imports, file after file, holds neither the
    // agent nor the operations it loads on first use.
    const reached = new Set<string>();
    const visit = (file: string) => {
      if (reached.has(file)) return;
      reached.add(file);
      for (const [, from] of readFileSync(file, 'utf8').matchAll(/^(?:import|export) [^;]*? from "(\.[^"]+)";$/gms)) {
        visit(join(dirname(file), from as string));
      }
    };
    visit(join(installed, 'dist/lock/index.js'));
    const lockCode = [...reached].map((file) => readFileSync(file, 'utf8')).join('\n');
    for (const name of ['createAgent', 'stopLock', 'cleanLocks', 'listLocks']) {
      assert.ok(!new RegExp(`^(?:async )?function ${name}\\(`, 'm').test(lockCode), `portlock/lock loads ${name}`);
    }
    assert.match(lockCode, /^(?:async )?function acquireLock\(/m);
    for (const specifier of ['portlock/lock', 'portlock']) {
      const loaded = await builtinsOf(specifier);
      for (const heavy of ['http', 'net', 'child_process', 'dns']) {
        assert.ok(!loaded.includes(heavy), `import('${specifier}') loads node:${heavy} (${loaded.join(', ')})`);
      }
    }

    // The package is ESM only; Node 20.19 and later load it with require() all the same.
    writeFileSync(
      join(project, 'cjs.cjs'),
      `const { acquireLock, listLocks, LockHeldError } = require('portlock');
console.log(JSON.stringify([typeof acquireLock, typeof listLocks, typeof LockHeldError]));
`,
    );
    const cjs = await finished(spawnTracked(process.execPath, ['cjs.cjs'], { cwd: project }));
    assert.equal(cjs.code, 0, cjs.stderr);
    assert.deepEqual(JSON.parse(cjs.stdout), ['function', 'function', 'function']);
    if (cjs.stderr !== '') t.diagnostic(`require('portlock') printed: ${cjs.stderr.trim()}`);

    // portlock/lock's types need no @types/node: AbortSignal, which they name, is in the DOM lib
    // too. Every declaration file they reach is checked (skipLibCheck off).
    writeFileSync(
      join(project, 'lock-types.mts'),
      `import { acquireLock, LockHeldError, type AcquireOptions } from 'portlock/lock';
const options: AcquireOptions = { port: 5338, wait: 100 };
export const held = acquireLock(options).catch((error: unknown) => error instanceof LockHeldError);
`,
    );
    const compilerOptions = {
      strict: true,
      noEmit: true,
      skipLibCheck: false,
      target: 'ES2023',
      module: 'nodenext',
      lib: ['ES2023', 'DOM'],
      types: [],
    };
    writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['lock-types.mts'] }));
    const tsc = join(projectRoot, 'node_modules/typescript/bin/tsc');
    const types = await finished(spawnTracked(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: project }));
    assert.equal(types.code, 0, `tsc on portlock/lock without @types/node:\n${types.stdout}${types.stderr}`);
  });
});
