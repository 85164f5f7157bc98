// The whole library: the lock (also importable alone, as `portlock/lock`), the agent on it, and
// acquirePort, whose `listen` option hands back a net.Server: a Node type portlock/lock's types
// keep out, so that a tool that only locks compiles without @types/node.
export * from './agent/index.ts';
export * from './lock/index.ts';
export { acquirePort } from './port/acquire-port.ts';
export { DEFAULT_HOSTS } from './port/options.ts';
export { DEFAULT_PORT_RANGE } from './port/range.ts';
export type { ListeningPortHandle, PortHandle, PortOptions } from './port/types.ts';
