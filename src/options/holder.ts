import type { HolderInfo, HolderState } from '../types.ts';

const STATES: readonly HolderState[] = ['starting', 'ready', 'stopping'];

function isText(value: unknown): value is string {
  return typeof value === 'string';
}

/** Checks the `holder` option (and `LockHandle.update`'s changes) before anything is written. */
export function validateHolder(holder: unknown, what = 'holder'): HolderInfo {
  if (holder === undefined) return {};
  if (typeof holder !== 'object' || holder === null || Array.isArray(holder)) {
    throw new TypeError(`${what} must be an object, such as { command: ['node', 'server.js'] }`);
  }
  const { command, cwd, url, log, state } = holder as Record<string, unknown>;
  if (command !== undefined && !(Array.isArray(command) && command.length > 0 && command.every(isText))) {
    throw new TypeError(`${what}.command must be a non-empty array of strings (argv)`);
  }
  for (const [field, value] of Object.entries({ cwd, url, log })) {
    if (value !== undefined && !isText(value)) throw new TypeError(`${what}.${field} must be a string`);
  }
  if (state !== undefined && !STATES.includes(state as HolderState)) {
    throw new TypeError(`${what}.state must be one of ${STATES.join(', ')}`);
  }
  return holder as HolderInfo;
}
