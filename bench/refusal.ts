// Loading and refusal: what a process pays to import portlock, and what a second start pays when
// the port is taken, each against a bare `node -e 0` in the same round, on every Node selected.
import { type ChildProcess, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, relative } from 'node:path';
import { spawnTracked } from './children.ts';
import { freePort, nowMs, repoRoot, rotated, type Scale, type Summary, summarize, tempDir } from './common.ts';
import type { Target } from './contenders.ts';

export interface RefusalVariant {
  label: string;
  command: string;
  ms: Summary;
  /** Time over that of the bare `node -e 0` run in the same round, one sample per round. */
  ratio: Summary;
  /** Time minus that of the bare `node -e 0` run in the same round, one sample per round. */
  addedMs: Summary;
  /** Exit codes seen, with counts: a refusal must not exit 0. */
  exitCodes: Record<string, number>;
  /** The first line the process wrote to stderr, to show that a refusal did refuse. */
  sample: string;
}

/** Every variant measured on one Node binary. */
export interface NodeLoading {
  /** `process.version` of that binary, as it reported it. */
  node: string;
  execPath: string;
  variants: Record<string, RefusalVariant>;
  /**
   * The builtin modules (Node's public ones, not its internals) the CLI's refusal loads beyond
   * those loaded when its main module starts, in the order it loads them: each costs a fresh
   * process their compile and setup. Undefined where the Node binary does not list them.
   */
  cliBuiltins?: string[];
}

export interface RefusalResult {
  build: string;
  rounds: number;
  /** One-minute load average when this scenario started and when it ended. */
  loadAverage: [number, number];
  nodes: NodeLoading[];
}

interface Variant {
  key: string;
  label: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
}

const distCli = join(repoRoot, 'dist', 'cli', 'bin.js');
const distIndex = join(repoRoot, 'dist', 'index.js');

/**
 * The Node binaries to measure: the one running the bench, then those named by `--node=PATH[,PATH]`
 * or `PORTLOCK_BENCH_NODE` (same form), without repeats.
 */
export function selectedNodes(argv: readonly string[], env: NodeJS.ProcessEnv): string[] {
  const named = [
    ...argv.filter((arg) => arg.startsWith('--node=')).map((arg) => arg.slice('--node='.length)),
    env.PORTLOCK_BENCH_NODE ?? '',
  ]
    .flatMap((list) => list.split(','))
    .filter((path) => path !== '');
  const seen = new Set<string>();
  const nodes: string[] = [];
  for (const path of [process.execPath, ...named]) {
    if (!existsSync(path)) throw new Error(`--node: no Node binary at ${path}`);
    const real = realpathSync(path);
    if (seen.has(real)) continue;
    seen.add(real);
    nodes.push(real);
  }
  return nodes;
}

function build(): string {
  const result = spawnSync('npm', ['run', 'build', '--silent'], { cwd: repoRoot, encoding: 'utf8', timeout: 180_000 });
  if (result.status === 0) return 'ok';
  const why = (result.stdout + result.stderr).trim().split('\n').slice(0, 3).join(' / ');
  return `failed (${result.error?.message ?? `exit ${result.status}`}): ${why}`;
}

function versionOf(node: string): string {
  return spawnSync(node, ['--version'], { encoding: 'utf8', timeout: 30_000 }).stdout.trim() || 'unknown';
}

/**
 * What a one-line tool that calls `acquireLock` first does when the port is taken. It imports the
 * package by name: run from the repository, Node resolves `portlock` to the package itself through
 * its `exports`, that is to the files `npm pack` ships.
 */
function libraryScript(target: Target, specifier: string): string {
  return [
    `const { acquireLock, LockHeldError } = await import(${JSON.stringify(specifier)});`,
    'try {',
    `  await acquireLock({ port: ${target.port}, dir: ${JSON.stringify(target.dir)} });`,
    '  process.exitCode = 1;',
    '} catch (error) {',
    '  console.error(error.message);',
    '  process.exitCode = error instanceof LockHeldError ? 75 : 2;',
    '}',
  ].join('\n');
}

function variantsFor(target: Target): Variant[] {
  const importing = (specifier: string): string[] => [
    '--input-type=module',
    '-e',
    `await import(${JSON.stringify(specifier)});`,
  ];
  return [
    { key: 'node', label: 'bare Node start (`node -e 0`)', args: ['-e', '0'] },
    { key: 'import-lock', label: "`import('portlock/lock')`", args: importing('portlock/lock') },
    { key: 'import-index', label: "`import('portlock')`", args: importing('portlock') },
    {
      key: 'cli',
      label: '`portlock run` (CLI) refusing a held port',
      // The command after `--` never runs: the port is held.
      args: [distCli, 'run', '--port', String(target.port), '--', 'node', '-e', '0'],
      env: { PORTLOCK_DIR: target.dir },
    },
    {
      key: 'library',
      label: "`import('portlock')`, `acquireLock` refusing",
      args: ['--input-type=module', '-e', libraryScript(target, 'portlock')],
    },
    {
      key: 'lock-only',
      label: "`import('portlock/lock')`, `acquireLock` refusing",
      args: ['--input-type=module', '-e', libraryScript(target, 'portlock/lock')],
    },
  ];
}

async function timeOnce(node: string, variant: Variant): Promise<{ ms: number; code: string; stderr: string }> {
  const start = nowMs();
  const child = spawnTracked(node, variant.args, 15_000, variant.env);
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

// Run with `--import` before a command: at exit, writes the builtins loaded since it ran to the
// file PORTLOCK_BENCH_BUILTINS names. process.moduleLoadList is Node's own record of them.
const LIST_BUILTINS = [
  'const before = new Set(process.moduleLoadList ?? []);',
  "process.on('exit', () => {",
  '  const loaded = (process.moduleLoadList ?? []).filter((entry) => !before.has(entry));',
  "  const builtins = loaded.map((entry) => /^NativeModule (.*)$/.exec(entry)?.[1]).filter((id) => id !== undefined && !id.startsWith('internal/'));",
  "  process.getBuiltinModule('node:fs').writeFileSync(process.env.PORTLOCK_BENCH_BUILTINS, JSON.stringify(builtins));",
  '});',
].join('\n');

/** The builtins a variant loads once its process has started (see {@link LIST_BUILTINS}). */
function builtinsLoaded(node: string, variant: Variant): string[] | undefined {
  const out = join(tempDir('builtins'), 'builtins.json');
  const preload = `data:text/javascript,${encodeURIComponent(LIST_BUILTINS)}`;
  spawnSync(node, ['--import', preload, ...variant.args], {
    env: { ...process.env, ...variant.env, PORTLOCK_BENCH_BUILTINS: out },
    stdio: 'ignore',
    timeout: 15_000,
  });
  try {
    return JSON.parse(readFileSync(out, 'utf8')) as string[];
  } catch {
    return undefined;
  }
}

async function measure(node: string, variants: Variant[], rounds: number): Promise<NodeLoading> {
  const runs = new Map(
    variants.map((v) => [v.key, { ms: [] as number[], codes: {} as Record<string, number>, sample: '' }]),
  );
  // Round 0 warms the page cache (and a compile cache where the CLI keeps one) and is not counted.
  for (let round = 0; round <= rounds; round++) {
    for (const variant of rotated(variants, round)) {
      const run = await timeOnce(node, variant);
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
    result[variant.key] = {
      label: variant.label,
      command: ['node', ...variant.args.map((arg) => (arg.includes('\n') ? '<script>' : arg))].join(' '),
      ms: summarize(entry.ms),
      ratio: summarize(entry.ms.map((t, round) => t / (baseline[round] ?? Number.NaN))),
      addedMs: summarize(entry.ms.map((t, round) => t - (baseline[round] ?? Number.NaN))),
      exitCodes: entry.codes,
      sample: entry.sample,
    };
  }
  // A binary inside the repository (as .ci/run installs Node 24) is named relative to it.
  const execPath = node.startsWith(repoRoot) ? relative(repoRoot, node) : node;
  const cli = variants.find((variant) => variant.key === 'cli');
  const cliBuiltins = cli === undefined ? undefined : builtinsLoaded(node, cli);
  return { node: versionOf(node), execPath, variants: result, ...(cliBuiltins !== undefined && { cliBuiltins }) };
}

/**
 * A process of `node` that holds the lock on `target` until its stdin closes. The holder runs on the
 * Node measured: the interlock's socket name is spelled alike by every process of one Node version,
 * and a refusal is measured as users meet it, from a second start of the same tool.
 */
async function holdOn(node: string, target: Target): Promise<ChildProcess> {
  const script = [
    "const { acquireLock } = await import('portlock');",
    `const lock = await acquireLock({ port: ${target.port}, dir: ${JSON.stringify(target.dir)} });`,
    "process.stdout.write('held\\n');",
    "process.stdin.resume().once('end', () => lock.release());",
  ].join('\n');
  const holder = spawnTracked(node, ['--input-type=module', '-e', script], 600_000);
  let stderr = '';
  holder.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const held = await Promise.race([
    once(holder.stdout ?? holder, 'data').then(() => true),
    once(holder, 'exit').then(() => false),
  ]);
  if (!held) throw new Error(`the holder on ${node} exited before holding: ${stderr.trim()}`);
  return holder;
}

export async function runRefusal(scale: Scale, nodes: readonly string[] = [process.execPath]): Promise<RefusalResult> {
  const loadAtStart = loadavg()[0] ?? Number.NaN;
  const buildOutcome = build();
  scale.log(`  build: ${buildOutcome}`);
  for (const path of [distIndex, distCli]) {
    if (!existsSync(path)) throw new Error(`no ${path} to measure; build ${buildOutcome}`);
  }
  const rounds = scale.quick ? 3 : 40;
  const measured: NodeLoading[] = [];
  for (const node of nodes) {
    scale.log(`  ${versionOf(node)} (${node})`);
    const target: Target = { dir: tempDir('refusal'), port: await freePort() };
    const holder = await holdOn(node, target);
    try {
      measured.push(await measure(node, variantsFor(target), rounds));
    } finally {
      holder.stdin?.end();
      if (holder.exitCode === null) await once(holder, 'exit');
    }
  }
  return { build: buildOutcome, rounds, loadAverage: [loadAtStart, loadavg()[0] ?? Number.NaN], nodes: measured };
}
