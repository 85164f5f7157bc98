// The whole library: the lock (also importable alone, as `portlock/lock`) and the agent on it.
export * from './agent/index.ts';
export * from './lock/index.ts';
