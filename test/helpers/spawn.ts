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

/** Collects a child's output and waits for it to exit. */
export async function finished(child: ChildProcess): Promise<Finished> {
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  return { code, signal, stdout, stderr };
}

/** Resolves with the first line of the child's stdout that matches. */
export function lineMatching(child: ChildProcess, pattern: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    const onData = (chunk: Buffer | string) => {
      buffer += chunk.toString();
      for (const line of buffer.split('\n')) {
        if (pattern.test(line)) {
          child.stdout?.off('data', onData);
          resolve(line);
          return;
        }
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`exited with ${code} before printing ${pattern}`)));
  });
}
