/**
 * Tokens of the locks and claims this process holds right now. A record that names this process
 * is live only while its token is here: it tells a second acquire in the same process ("held")
 * from a record left by an earlier process that had the same pid ("stale").
 */
// Kept on globalThis, so that two copies of portlock loaded in one process (two versions in
// node_modules) see each other's locks; worker threads, with their own globals, do not.
const registry = Symbol.for('portlock.ownTokens');
const shared = globalThis as { [registry]?: Set<string> };
shared[registry] ??= new Set<string>();
const tokens = shared[registry];

export const ownTokens = {
  add: (token: string): void => void tokens.add(token),
  delete: (token: string): void => void tokens.delete(token),
  has: (token: string): boolean => tokens.has(token),
};
