export { createAgent } from './agent.ts';
export { AlreadyRunningError } from './errors.ts';
export { createLogger } from './logger.ts';
export { type RedactOptions, redact } from './redact.ts';
export { isLoopbackHost } from './request-guard.ts';
export { handleShutdown } from './shutdown.ts';
export type {
  Agent,
  AgentAddress,
  AgentLockOptions,
  AgentLogger,
  AgentOptions,
  AgentReadyState,
  AlreadyRunningInfo,
  LoggerOptions,
  LogLevel,
  SetupContext,
  SetupHook,
  ShutdownOptions,
  StopOptions,
  Teardown,
} from './types.ts';
