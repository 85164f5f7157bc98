import type { IncomingMessage, ServerResponse } from 'node:http';
import { sameToken } from '../same-token.ts';
import { controlRequestRefusal } from './request-guard.ts';
import type { AgentLogger, AgentReadyState } from './types.ts';

/** What `GET /healthcheck` reports. Never the token. */
export interface HealthReport {
  name: string;
  version: string | null;
  pid: number;
  port: number;
  startedAt: string;
  instanceId: string;
  readyState: AgentReadyState;
}

interface ControlContext {
  /** `''` or a path such as `/percy`, without a trailing slash. */
  prefix: string;
  port(): number;
  health(): HealthReport;
  /** The token of the lock record, which only the lock's owner can read; undefined when none is held. */
  token(): string | undefined;
  /** Called once the `POST /stop` answer has gone out. */
  stop(): void;
  logger: AgentLogger;
}

export type ControlRoutes = (req: IncomingMessage, res: ServerResponse) => boolean;

function send(res: ServerResponse, status: number, body: object, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  res.end(text);
}

function bearer(header: string | undefined): string | undefined {
  const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

/** Normalizes a mount point to `''` or `/a/b`. */
export function normalizePrefix(prefix: string): string {
  const trimmed = prefix.replace(/\/+$/, '');
  if (trimmed === '') return '';
  return trimmed.startsWith('/') ? trimmed : `/${trimmed}`;
}

/** The path of a request's target; undefined for a target no URL can be made of (`//[`). */
function pathOf(req: IncomingMessage): string | undefined {
  try {
    return new URL(req.url ?? '/', 'http://localhost').pathname;
  } catch {
    return undefined;
  }
}

/** `GET /healthcheck`: the agent's health report, to anyone on this host. */
function answerHealth(req: IncomingMessage, res: ServerResponse, pathname: string, context: ControlContext): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    send(res, 405, { error: `${pathname} answers GET` }, { allow: 'GET, HEAD' });
  } else {
    send(res, 200, context.health());
  }
}

/** `POST /stop`: stops the agent for whoever proves, with the lock record's token, that they may. */
function answerStop(req: IncomingMessage, res: ServerResponse, pathname: string, context: ControlContext): void {
  if (req.method !== 'POST') {
    send(res, 405, { error: `${pathname} answers POST` }, { allow: 'POST' });
    return;
  }
  const expected = context.token();
  if (expected === undefined) {
    send(res, 503, { error: 'not holding the lock' });
    return;
  }
  const given = bearer(req.headers.authorization);
  if (given === undefined) {
    send(
      res,
      401,
      { error: 'send the token of the lock record as "Authorization: Bearer <token>"' },
      { 'www-authenticate': 'Bearer' },
    );
    return;
  }
  if (!sameToken(given, expected)) {
    context.logger.warn(`refused ${req.method} ${pathname}: wrong token`);
    send(res, 403, { error: 'wrong token' });
    return;
  }
  context.logger.info('stop requested over HTTP');
  // The stop drains in-flight requests, this one included, so it starts once the answer is out.
  res.once('close', () => context.stop());
  send(res, 202, { stopping: true }, { connection: 'close' });
}

/**
 * `GET /healthcheck` and `POST /stop` under a prefix. Returns a function that answers a request
 * and returns true when it is a control route, false when it belongs to the application.
 */
export function createControlRoutes(context: ControlContext): ControlRoutes {
  const { prefix, logger } = context;
  const routes = new Map([
    [`${prefix}/healthcheck`, answerHealth],
    [`${prefix}/stop`, answerStop],
  ]);
  return (req, res) => {
    // A target no URL can be made of names no control route; the application decides.
    const pathname = pathOf(req);
    const answer = pathname === undefined ? undefined : routes.get(pathname);
    if (pathname === undefined || answer === undefined) return false;
    req.resume();
    const refusal = controlRequestRefusal(req.headers, context.port());
    if (refusal !== undefined) {
      logger.warn(`refused ${req.method} ${pathname}: ${refusal}`);
      send(res, 403, { error: refusal });
    } else {
      answer(req, res, pathname, context);
    }
    return true;
  };
}
