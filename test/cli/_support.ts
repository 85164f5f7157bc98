import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.ts';
import { freePort } from '../helpers/free-port.ts';
import { deadPid, writeRecord } from '../helpers/records.ts';
import { fixture, projectRoot, spawnTs } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

export const BIN = join(projectRoot, 'src/cli/bin.ts');
export const CHILD = fixture('cli-child.mjs');

export interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  env?: Record<string, string | undefined>;
  isTTY?: boolean;
  /** Called with the text so far after every write. */
  onStderr?: (text: string) => void;
  onStdout?: (text: string) => void;
}

/** Runs the command line in this process, as the binary would, and captures what it writes. */
export async function cli(argv: string[], options: CliOptions = {}): Promise<Captured> {
  const captured = { stdout: '', stderr: '' };
  const code = await main(argv, {
    stdout: {
      write: (text: string) => {
        captured.stdout += text;
        options.onStdout?.(captured.stdout);
      },
    },
    stderr: {
      write: (text: string) => {
        captured.stderr += text;
        options.onStderr?.(captured.stderr);
      },
    },
    env: options.env ?? {},
    ...(options.isTTY !== undefined && { isTTY: options.isTTY }),
  });
  return { code, ...captured };
}

/** A fresh lock directory and a port nobody uses. */
export async function place(): Promise<{ dir: string; port: number }> {
  return { dir: tempDir(), port: await freePort() };
}

/** Runs `portlock` as a real process, through tsx. */
export function spawnCli(args: string[], options: SpawnOptions & { timeoutMs?: number } = {}): ChildProcess {
  return spawnTs(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
}

/**
 * Resolves with the first JSON line of a child's stdout that passes the test. Rejects once stdout
 * has closed without one: on 'close', not 'exit', because a line printed just before the child
 * exited may still be unread when 'exit' comes.
 */
export function jsonLine<T = Record<string, unknown>>(child: ChildProcess, test: (value: T) => boolean): Promise<T> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop() ?? '';
      for (const line of lines) {
        let value: T;
        try {
          value = JSON.parse(line) as T;
        } catch {
          continue;
        }
        if (test(value)) {
          child.stdout?.off('data', onData);
          child.off('close', onClose);
          resolve(value);
          return;
        }
      }
    };
    const onClose = (code: number | null, signal: NodeJS.Signals | null) =>
      reject(new Error(`exited (${code ?? signal}) before the expected line`));
    child.stdout?.on('data', onData);
    child.once('close', onClose);
  });
}

/** A record left by a process that is gone. */
export async function staleRecord(path: string, fields: Record<string, unknown> = {}): Promise<number> {
  const pid = await deadPid();
  writeRecord(path, {
    portlock: 1,
    name: 'ghost',
    pid,
    startedAt: new Date(Date.now() - 3_600_000).toISOString(),
    hostname: hostname(),
    user: 'someone',
    token: 'cd'.repeat(16),
    ...fields,
  });
  return pid;
}

/** A record from another host, which portlock never judges from here. */
export function foreignRecord(path: string, pid = 4242): void {
  writeRecord(path, {
    portlock: 1,
    name: 'remote',
    pid,
    startedAt: new Date().toISOString(),
    hostname: 'another-host.invalid',
    token: 'ef'.repeat(16),
  });
}

/**
 * Resolves when the child has exited (at once if it has already). Its pipes may still hold output
 * then: a test that reads what the child printed waits with `finished` instead.
 */
export async function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, signal: child.signalCode };
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  return { code, signal };
}
