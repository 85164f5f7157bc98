// A small HTTP service embedding a portlock agent: one live instance per port, /healthcheck and
// /stop beside the service's own routes, and a clean stop on Ctrl-C or a crash.
//   npx tsx examples/embed-agent.ts            (port 5338)
//   PORT=5339 npx tsx examples/embed-agent.ts  (another port)
// Start it twice on one port to see the refusal; stop it with Ctrl-C, or with
//   curl -X POST -H "Authorization: Bearer <token from the lock file>" http://localhost:5338/stop
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AlreadyRunningError, createAgent, handleShutdown } from '../src/index.ts';

const port = Number(process.env.PORT ?? 5338);
const snapshots: unknown[] = [];

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

async function handler(req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.url === '/snapshots' && req.method === 'POST') {
    let body = '';
    for await (const chunk of req) body += chunk;
    try {
      snapshots.push(JSON.parse(body));
    } catch {
      return sendJson(res, 400, { error: 'send a JSON body' });
    }
    return sendJson(res, 201, { queued: snapshots.length });
  }
  if (req.url === '/snapshots' && req.method === 'GET') return sendJson(res, 200, snapshots);
  sendJson(res, 404, { error: `no route ${req.method} ${req.url}` });
}

const agent = createAgent({
  name: 'percy',
  version: '1.0.0',
  port,
  handler,
  drainTimeout: 10_000,
  // Runs only once this process holds the port's lock, so a second instance never gets this far.
  // What it returns runs on stop, after the last request has finished.
  setup: ({ logger }) => {
    const report = setInterval(() => logger.info(`${snapshots.length} snapshot(s) queued`), 60_000);
    return () => {
      clearInterval(report);
      logger.info(`uploaded ${snapshots.length} snapshot(s) before exiting`);
    };
  },
});

// Ctrl-C drains, a second Ctrl-C forces; crashes are logged with secrets redacted. Either way the
// lock is released and the exit code says why the run ended.
handleShutdown(agent);

try {
  await agent.start();
  console.log(`Ready on ${agent.address?.url} (pid ${process.pid})`);
} catch (error) {
  if (error instanceof AlreadyRunningError) {
    // The holder, its pid and the lock file have been logged above.
    console.error(error.message);
    process.exitCode = 75;
  } else if (!(error instanceof Error && error.name === 'AbortError')) {
    throw error;
  }
  // An AbortError is a Ctrl-C during the start: handleShutdown has undone it and set the exit code.
}
