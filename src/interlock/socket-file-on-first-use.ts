/**
 * The socket-file interlock (binding, knocking, sweeping), loaded where a lock first has a socket
 * file, as a chunk of its own, and kept: every later caller awaits the same promise, not another
 * `import()`, which costs a resolution each time (and under a loader hook, a round trip to it).
 */
let loaded: Promise<typeof import('./socket-file.ts')> | undefined;

export function socketFileInterlock(): Promise<typeof import('./socket-file.ts')> {
  loaded ??= import('./socket-file.ts');
  return loaded;
}
