/**
 * Tokens of the locks and claims this process holds right now. A record that names this process
 * is live only while its token is here: it tells a second acquire in the same process ("held")
 * from a record left by an earlier process that had the same pid ("stale").
 */
const tokens = new Set<string>();

export const ownTokens = {
  add: (token: string): void => void tokens.add(token),
  delete: (token: string): void => void tokens.delete(token),
  has: (token: string): boolean => tokens.has(token),
};
