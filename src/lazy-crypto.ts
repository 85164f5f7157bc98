/**
 * `node:crypto`, loaded on first use. Loading it costs a process several milliseconds of start-up,
 * and the commonest short-lived caller, a second start refused because the port is held, needs
 * none of it: only a process that takes a lock draws a token.
 */
let loaded: typeof import('node:crypto') | undefined;

export function crypto(): typeof import('node:crypto') {
  loaded ??= process.getBuiltinModule('node:crypto');
  return loaded;
}
