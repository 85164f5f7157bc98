// The "Loading and refusal" part of BENCHMARKS.md: its goals, its tables, and its own block in the
// file, so that a run of that scenario alone (`--only=refusal`) can renew it and leave the rest.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { NodeLoading, RefusalResult, RefusalVariant } from './refusal.ts';
import type { Environment, GoalRow, Outcome } from './report.ts';

const START = '<!-- bench:loading:start -->';
const END = '<!-- bench:loading:end -->';

/** The loading goals, checked on every Node measured; the issue sets them for Node 24. */
const GOALS = [
  { key: 'import-lock', limit: 5, unit: 'ms' },
  { key: 'import-index', limit: 8, unit: 'ms' },
  { key: 'cli', limit: 1.2, unit: 'x' },
] as const;

const ms = (value: number): string => (Number.isFinite(value) ? `${value.toFixed(value < 100 ? 1 : 0)} ms` : 'n/a');
const signedMs = (value: number): string => (Number.isFinite(value) && value >= 0 ? `+${ms(value)}` : ms(value));
const times = (value: number): string => (Number.isFinite(value) ? `${value.toFixed(2)}x` : 'n/a');

function ok(outcome: Outcome<RefusalResult> | undefined): RefusalResult | undefined {
  return outcome === undefined || 'error' in outcome ? undefined : outcome;
}

function refused(variant: RefusalVariant): boolean {
  return variant.exitCodes['0'] === undefined;
}

function goalText(goal: (typeof GOALS)[number], label: string, node: string): string {
  const bound = goal.unit === 'ms' ? `adds at most ${goal.limit} ms to` : `takes at most ${goal.limit}x`;
  return `${label} ${bound} a bare Node start, Node ${node}`;
}

export function loadingGoals(outcome: Outcome<RefusalResult> | undefined): GoalRow[] {
  const result = ok(outcome);
  if (result === undefined) return [];
  return result.nodes.flatMap((loading) =>
    GOALS.map((goal): GoalRow => {
      const variant = loading.variants[goal.key];
      const bare = loading.variants.node?.ms.median ?? Number.NaN;
      if (variant === undefined) return { goal: goalText(goal, goal.key, loading.node), measured: 'n/a', met: 'n/a' };
      const exitedWell = goal.key === 'cli' ? refused(variant) : variant.exitCodes['0'] === variant.ms.n;
      const value = goal.unit === 'ms' ? variant.addedMs.median : variant.ratio.median;
      const shown =
        goal.unit === 'ms'
          ? `${signedMs(value)} (median of per-round differences; medians ${ms(variant.ms.median)} vs ${ms(bare)})`
          : `${times(value)} (median of per-round ratios; medians ${ms(variant.ms.median)} vs ${ms(bare)})`;
      return {
        goal: goalText(goal, variant.label, loading.node),
        measured: `${shown}${exitedWell ? '' : `, but exit codes were ${JSON.stringify(variant.exitCodes)}`}`,
        met: exitedWell && value <= goal.limit ? 'yes' : 'no',
      };
    }),
  );
}

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]): string => `| ${cells.map((cell) => cell.replaceAll('|', '\\|')).join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

function summaryTable(nodes: NodeLoading[]): string {
  const cell = (loading: NodeLoading, key: string): string => {
    const variant = loading.variants[key];
    if (variant === undefined) return 'n/a';
    return key === 'cli' ? times(variant.ratio.median) : signedMs(variant.addedMs.median);
  };
  return table(
    ['Node', '`node -e 0`', "`import('portlock/lock')`", "`import('portlock')`", '`portlock run` refusing'],
    nodes.map((loading) => [
      loading.node,
      ms(loading.variants.node?.ms.median ?? Number.NaN),
      cell(loading, 'import-lock'),
      cell(loading, 'import-index'),
      cell(loading, 'cli'),
    ]),
  );
}

function nodeTable(loading: NodeLoading): string {
  const rows = Object.values(loading.variants).map((v) => [
    v.label,
    ms(v.ms.median),
    `${ms(v.ms.min)} – ${ms(v.ms.max)}`,
    `${signedMs(v.addedMs.median)} (${signedMs(v.addedMs.min)} – ${signedMs(v.addedMs.max)})`,
    `${times(v.ratio.median)} (${times(v.ratio.min)} – ${times(v.ratio.max)})`,
    Object.entries(v.exitCodes)
      .map(([code, count]) => `${code} ×${count}`)
      .join(', '),
  ]);
  return table(
    ['Command', 'median', 'range', 'over bare Node, same round (range)', 'ratio to bare Node (range)', 'exit codes'],
    rows,
  );
}

export function renderLoading(result: RefusalResult, env: Environment, command: string): string {
  const goals = loadingGoals(result);
  const sample = result.nodes.flatMap((n) => Object.values(n.variants)).find((v) => v.sample !== '')?.sample;
  const [loadStart, loadEnd] = result.loadAverage;
  const busy = loadStart > env.cores || loadEnd > env.cores;
  return [
    START,
    '## Loading and refusal',
    '',
    `Run on ${env.date} at commit ${env.commit} with \`${command}\`, on ${env.cpu} (${env.cores} cores), ${env.os}; the one-minute load average was ${loadStart.toFixed(1)} when this part started and ${loadEnd.toFixed(1)} when it ended${busy ? ', so other work shared the cores and every number carries its noise' : ''}. Build: ${result.build}. Raw numbers: [bench/loading.json](bench/loading.json).`,
    '',
    `Each command is a fresh process of the Node named, timed from spawn to exit, ${result.rounds} runs each; the commands take turns, the order rotating each round, and each is compared with the bare \`node -e 0\` of its own round (the median of those per-round differences and ratios is shown). The imports name the package (\`portlock\`, \`portlock/lock\`) from the repository, which Node resolves through the package's \`exports\` to the built files that \`npm pack\` ships. The refusals run against a port another process holds.`,
    '',
    summaryTable(result.nodes),
    '',
    '### Goals',
    '',
    'Set for Node 24, the active LTS; checked on every Node measured.',
    '',
    table(
      ['Goal', 'Measured', 'Met'],
      goals.map((row) => [row.goal, row.measured, row.met]),
    ),
    ...result.nodes.flatMap((loading) => [
      '',
      `### Node ${loading.node}`,
      '',
      nodeTable(loading),
      ...(loading.cliBuiltins === undefined
        ? []
        : [
            '',
            `Builtin modules the CLI's refusal loads after its start (Node's internal ones not shown): ${loading.cliBuiltins.map((id) => `\`${id}\``).join(', ') || 'none'}.`,
          ]),
    ]),
    ...(sample === undefined ? [] : ['', `First line of a refusal: \`${sample.replaceAll('`', "'")}\``]),
    END,
  ].join('\n');
}

/** Replaces the loading block of `path`, or adds it at the end, keeping everything else. */
export function writeLoadingMarkdown(path: string, result: RefusalResult, env: Environment, command: string): void {
  const generated = renderLoading(result, env, command);
  const current = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n';
  const start = current.indexOf(START);
  const end = current.indexOf(END);
  const next =
    start >= 0 && end > start
      ? `${current.slice(0, start)}${generated}${current.slice(end + END.length)}`
      : `${current.trimEnd()}\n\n${generated}\n`;
  writeFileSync(path, next);
}
