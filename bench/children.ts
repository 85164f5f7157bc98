import { type ChildProcess, spawn } from 'node:child_process';
import { isAbsolute, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { nowMs, repoRoot, tempDir } from './common.ts';

/** A line a worker writes to stdout: one JSON object with a `type`. */
export interface Message {
  type: string;
  [field: string]: unknown;
}

const live = new Set<ChildProcess>();

/** Kills every child the bench started that is still running. Safe inside an exit handler. */
export function killAll(): void {
  for (const child of live) child.kill('SIGKILL');
}

/** Spawns a child that is killed after `timeoutMs` whatever happens, and by `killAll`. */
export function spawnTracked(command: string, args: string[], timeoutMs: number, env?: NodeJS.ProcessEnv) {
  const child = spawn(command, args, {
    cwd: repoRoot,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  live.add(child);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  child.once('exit', () => {
    clearTimeout(timer);
    live.delete(child);
  });
  return child;
}

export const workerPath = (name: string): string =>
  isAbsolute(name) ? name : fileURLToPath(new URL(`./workers/${name}`, import.meta.url));

/** A TypeScript worker under tsx that takes JSON commands on stdin and answers on stdout. */
export class Worker {
  readonly child: ChildProcess;
  readonly #queue: Message[] = [];
  #wake: (() => void) | undefined;
  #stderr = '';
  #exit: string | undefined;
  /** When this process saw the worker exit (CLOCK_MONOTONIC ms), once it has. */
  exitedAt: number | undefined;

  /**
   * `script`: a worker's file name under workers/, run through tsx, or the absolute path of one
   * bundled to JavaScript (see `bundledWorker`), run by Node alone.
   */
  constructor(script: string, args: string[], timeoutMs: number, nodeFlags: string[] = [], node = process.execPath) {
    const loader = script.endsWith('.ts') ? ['--import', 'tsx'] : [];
    this.child = spawnTracked(node, [...nodeFlags, ...loader, workerPath(script), ...args], timeoutMs);
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.#stderr = (this.#stderr + chunk).slice(-4000);
    });
    // A worker killed on purpose closes its stdin pipe; the write error that follows is expected.
    this.child.stdin?.on('error', () => {});
    if (this.child.stdout) {
      createInterface({ input: this.child.stdout }).on('line', (line) => {
        try {
          this.#queue.push(JSON.parse(line) as Message);
        } catch {
          this.#stderr += `\n(stdout) ${line}`;
        }
        this.#wake?.();
      });
    }
    this.child.once('exit', (code, signal) => {
      this.exitedAt = nowMs();
      this.#exit = `exited with ${signal ?? `code ${code}`}`;
      this.#wake?.();
    });
  }

  /**
   * Starts a worker and waits for its `ready` line, so start-up is never inside a measurement.
   * `node`: the Node binary that runs it (a bundled worker, see `bundledWorker`, runs on any).
   */
  static async start(
    script: string,
    args: string[],
    timeoutMs: number,
    nodeFlags: string[] = [],
    node = process.execPath,
  ): Promise<Worker> {
    const worker = new Worker(script, args, timeoutMs, nodeFlags, node);
    await worker.expect('ready', 30_000);
    return worker;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get alive(): boolean {
    return this.#exit === undefined;
  }

  send(command: object): void {
    this.child.stdin?.write(`${JSON.stringify(command)}\n`);
  }

  /** A message already received, without waiting. */
  poll(): Message | undefined {
    return this.#queue.shift();
  }

  /** The next message; rejects when the worker exits first or `timeoutMs` passes. */
  async next(timeoutMs: number): Promise<Message> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const message = this.#queue.shift();
      if (message !== undefined) return message;
      if (this.#exit !== undefined) throw new Error(`worker ${this.pid} ${this.#exit}: ${this.#stderr.trim()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`worker ${this.pid} sent nothing for ${timeoutMs} ms: ${this.#stderr.trim()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  /** The next message, which must be of `type`. */
  async expect(type: string, timeoutMs: number): Promise<Message> {
    const message = await this.next(timeoutMs);
    if (message.type !== type) {
      throw new Error(`worker ${this.pid}: expected ${type}, got ${JSON.stringify(message)} ${this.#stderr.trim()}`);
    }
    return message;
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.child.kill(signal);
  }

  /** Closes stdin (the worker exits when it ends) and kills it if it lingers. */
  /** Resolves once the worker has exited. */
  async exited(): Promise<void> {
    if (!this.alive) return;
    await new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
  }

  async stop(): Promise<void> {
    if (!this.alive) return;
    this.child.stdin?.end();
    const timer = setTimeout(() => this.kill(), 2000);
    await new Promise<void>((resolve) => {
      if (!this.alive) resolve();
      else this.child.once('exit', () => resolve());
    });
    clearTimeout(timer);
  }
}

/**
 * A worker bundled with the library's code into one JavaScript file (in a temp directory), which
 * Node runs without tsx, as users run the built package: tsx compiles modules on a thread of its
 * own, with a V8 heap of its own, whose collections would count as the worker's CPU.
 */
export async function bundledWorker(name: string): Promise<string> {
  const { build } = await import('esbuild');
  const outfile = join(tempDir('worker-bundle'), name.replace(/\.ts$/, '.mjs'));
  await build({
    entryPoints: [workerPath(name)],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: `node${process.versions.node.split('.')[0]}`,
    logLevel: 'error',
  });
  return outfile;
}
