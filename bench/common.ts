import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// A port's interlock name is host-wide: each contender gets a port nobody else on the host uses.
export { freePort } from '../test/helpers/free-port.ts';

export const repoRoot = fileURLToPath(new URL('..', import.meta.url));

/** Milliseconds on CLOCK_MONOTONIC, which every process on the host reads alike. */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

export interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, n };
  const mid = Math.floor(n / 2);
  const median = n % 2 === 1 ? (sorted[mid] ?? Number.NaN) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
  return { median, min: sorted[0] ?? Number.NaN, max: sorted[n - 1] ?? Number.NaN, n };
}

/** Rotates the order each round, so that no contender always runs first or right after another. */
export function rotated<T>(items: readonly T[], round: number): T[] {
  const k = round % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

const tempDirs: string[] = [];

/** A private directory (mode 0700) for one run of one contender; removed when the bench ends. */
export function tempDir(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `portlock-bench-${label}-`));
  tempDirs.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** How long the scenarios run: `--quick` shrinks every loop for a smoke run. */
export interface Scale {
  quick: boolean;
  log(message: string): void;
}

export function errorText(error: unknown): string {
  if (error instanceof Error) return `${(error as NodeJS.ErrnoException).code ?? error.name}: ${error.message}`;
  return String(error);
}
