import type { AgentLogger, LoggerOptions, LogLevel } from './types.ts';

const SEVERITY: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** A leveled logger that writes `[name] message` lines, by default to stderr. */
export function createLogger(options: LoggerOptions = {}): AgentLogger {
  const { name = 'portlock', level = 'info', stream = process.stderr } = options;
  const least = SEVERITY[level];
  const write = (at: LogLevel, message: string) => {
    if (SEVERITY[at] < least) return;
    // Info is the normal case; other levels say what they are, for people grepping a log.
    const tag = at === 'info' ? '' : `${at}: `;
    stream.write(`[${name}] ${tag}${message}\n`);
  };
  return {
    debug: (message) => write('debug', message),
    info: (message) => write('info', message),
    warn: (message) => write('warn', message),
    error: (message) => write('error', message),
  };
}
