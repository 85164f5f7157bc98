import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { once } from 'node:events';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';

export const projectRoot = fileURLToPath(new URL('../../', import.meta.url));
export const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));

const children = new Set<ChildProcess>();
after(() => {
  for (const child of children) child.kill('SIGKILL');
});

/** Every child a test starts is killed after `timeoutMs` and when the test file ends. */
export function spawnTracked(command: string, args: string[], options: SpawnOptions & { timeoutMs?: number } = {}) {
  const { timeoutMs = 60_000, ...rest } = options;
  const child = spawn(command, args, { cwd: projectRoot, ...rest });
  children.add(child);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  child.once('exit', () => {
    clearTimeout(timer);
    children.delete(child);
  });
  return child;
}

/** Runs TypeScript under tsx in a child process. */
export function spawnTs(script: string, args: string[] = [], options: SpawnOptions & { timeoutMs?: number } = {}) {
  return spawnTracked(process.execPath, ['--import', 'tsx', script, ...args], options);
}

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Collects a child's output and waits for it to exit. Call it before the child can have exited.
 * It waits for 'close', not 'exit': 'exit' may come while the last output is still unread in the
 * pipes, and whatever the child printed just before it exited would be missing.
 */
export async function finished(child: ChildProcess): Promise<Finished> {
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  return { code, signal, stdout, stderr };
}

/**
 * Calls `onLine` with each complete line of the child's stdout as it comes (a chunk may hold
 * several lines, or part of one); returns the listener, to be taken off with `child.stdout.off`.
 */
export function onLines(child: ChildProcess, onLine: (line: string) => void): (chunk: Buffer | string) => void {
  let buffer = '';
  const onData = (chunk: Buffer | string) => {
    buffer += chunk.toString();
    const lines = buffer.split('\n');
    // The last piece is a line still being written, or '' after a newline.
    buffer = lines.pop() ?? '';
    for (const line of lines) onLine(line);
  };
  child.stdout?.on('data', onData);
  return onData;
}

/**
 * Resolves with the first complete line of the child's stdout that matches. Rejects once stdout
 * has closed without one: on 'close', not 'exit', because a line printed just before the child
 * exited may still be unread when 'exit' comes.
 */
export function lineMatching(child: ChildProcess, pattern: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let found = false;
    const onData = onLines(child, (line) => {
      if (found || !pattern.test(line)) return;
      found = true;
      child.stdout?.off('data', onData);
      child.off('close', onClose);
      resolve(line);
    });
    const onClose = (code: number | null, signal: NodeJS.Signals | null) =>
      reject(new Error(`exited (${code ?? signal}) before printing a line matching ${pattern}`));
    child.once('close', onClose);
  });
}
