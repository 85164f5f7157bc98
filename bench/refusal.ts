import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { spawnTracked, Worker } from './children.ts';
import { freePort, nowMs, repoRoot, rotated, type Scale, type Summary, summarize, tempDir } from './common.ts';
import type { Target } from './contenders.ts';

export interface RefusalVariant {
  label: string;
  command: string;
  ms: Summary;
  /** Time over that of the bare `node -e 0` run in the same round, one sample per round. */
  ratio: Summary;
  /** Exit codes seen, with counts: a refusal must not exit 0. */
  exitCodes: Record<string, number>;
  /** The first line the refusing process wrote to stderr, to show it did refuse. */
  sample: string;
}

export interface RefusalResult {
  /** `cli`: `portlock run` was measured; `library`: the CLI is not built, so `acquireLock` from `dist/` was. */
  mode: 'cli' | 'library';
  build: string;
  rounds: number;
  variants: Record<string, RefusalVariant>;
}

interface Variant {
  key: string;
  label: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
}

const distIndex = join(repoRoot, 'dist', 'index.js');
const distCli = join(repoRoot, 'dist', 'cli', 'bin.js');
const distLock = join(repoRoot, 'dist', 'lock', 'index.js');

function build(): string {
  const result = spawnSync('npm', ['run', 'build', '--silent'], { cwd: repoRoot, encoding: 'utf8', timeout: 180_000 });
  if (result.status === 0) return 'ok';
  const why = (result.stdout + result.stderr).trim().split('\n').slice(0, 3).join(' / ');
  return `failed (${result.error?.message ?? `exit ${result.status}`}): ${why}`;
}

/** What a one-line tool that calls `acquireLock` first does when the port is taken. */
function libraryScript(target: Target, interlock: 'auto' | 'off', entry = distIndex): string {
  return [
    `const { acquireLock, LockHeldError } = await import(${JSON.stringify(pathToFileURL(entry).href)});`,
    'try {',
    `  await acquireLock({ port: ${target.port}, dir: ${JSON.stringify(target.dir)}, interlock: '${interlock}' });`,
    '  process.exitCode = 1;',
    '} catch (error) {',
    '  console.error(error.message);',
    '  process.exitCode = error instanceof LockHeldError ? 75 : 2;',
    '}',
  ].join('\n');
}

async function timeOnce(variant: Variant): Promise<{ ms: number; code: string; stderr: string }> {
  const start = nowMs();
  const child = spawnTracked(process.execPath, variant.args, 15_000, variant.env);
  child.stdin?.end();
  child.stdout?.resume();
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const code = await new Promise<string>((resolve) => {
    child.once('exit', (status, signal) => resolve(signal ?? String(status)));
  });
  return { ms: nowMs() - start, code, stderr };
}

export async function runRefusal(scale: Scale): Promise<RefusalResult> {
  const buildOutcome = build();
  scale.log(`  build: ${buildOutcome}`);
  const mode = existsSync(distCli) ? 'cli' : 'library';
  if (!existsSync(distIndex)) throw new Error(`no ${distIndex} to measure; build ${buildOutcome}`);
  const target: Target = { dir: tempDir('refusal'), port: await freePort() };
  const holder = await Worker.start('agent.ts', [], 120_000);
  const rounds = scale.quick ? 3 : 30;
  try {
    holder.send({ op: 'hold', contender: 'portlock-auto', target });
    await holder.expect('held', 10_000);
    const variants: Variant[] = [{ key: 'node', label: 'bare Node start', args: ['-e', '0'] }];
    if (mode === 'cli') {
      variants.push({
        key: 'cli',
        label: 'portlock run (CLI) refusing',
        args: [distCli, 'run', '--port', String(target.port), '--', process.execPath, '-e', '0'],
        env: { PORTLOCK_DIR: target.dir },
      });
    }
    for (const interlock of ['auto', 'off'] as const) {
      variants.push({
        key: `library-${interlock}`,
        label: `node importing dist/index.js, acquireLock refusing (interlock ${interlock})`,
        args: ['--input-type=module', '-e', libraryScript(target, interlock)],
      });
    }
    variants.push({
      key: 'lock-only',
      label: 'node importing dist/lock/index.js (portlock/lock), acquireLock refusing (interlock auto)',
      args: ['--input-type=module', '-e', libraryScript(target, 'auto', distLock)],
    });
    const runs = new Map(
      variants.map((v) => [v.key, { ms: [] as number[], codes: {} as Record<string, number>, sample: '' }]),
    );
    // Round 0 warms the page cache for node and the built library and is not counted.
    for (let round = 0; round <= rounds; round++) {
      for (const variant of rotated(variants, round)) {
        const run = await timeOnce(variant);
        const entry = runs.get(variant.key);
        if (entry === undefined || round === 0) continue;
        entry.ms.push(run.ms);
        entry.codes[run.code] = (entry.codes[run.code] ?? 0) + 1;
        if (entry.sample === '') entry.sample = run.stderr.trim().split('\n')[0] ?? '';
      }
    }
    const baseline = runs.get('node')?.ms ?? [];
    const result: Record<string, RefusalVariant> = {};
    for (const variant of variants) {
      const entry = runs.get(variant.key);
      if (entry === undefined) continue;
      const ms = summarize(entry.ms);
      result[variant.key] = {
        label: variant.label,
        command: ['node', ...variant.args.map((arg) => (arg.includes('\n') ? '<script>' : arg))].join(' '),
        ms,
        ratio: summarize(entry.ms.map((t, round) => t / (baseline[round] ?? Number.NaN))),
        exitCodes: entry.codes,
        sample: entry.sample,
      };
    }
    return { mode, build: buildOutcome, rounds, variants: result };
  } finally {
    await holder.stop();
  }
}
