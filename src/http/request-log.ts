import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Request, RequestHandler } from 'express';
import { lineWriter, type LineWriter, type Logger } from '../logger.js';
import type { RouteLabel } from '../monitoring/metrics.js';
import { clientAddressOf } from './client-address.js';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** Probes and scrapes: every few seconds from every checker, so their successes are 'debug'. */
const PROBES = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * Access lines are 'info' (on by default, like nginx's access log), except
 * successful probes and scrapes ('debug'); a refusal by policy (507
 * disk/quota, 503 draining) is a 'warn', not an error: it is the node
 * working as designed. Only other 5xx are errors.
 */
function levelOf(status: number, path: string): 'debug' | 'info' | 'warn' | 'error' {
  if (status === 503 || status === 507) return 'warn';
  if (status >= 500) return 'error';
  return status < 400 && PROBES.has(path) ? 'debug' : 'info';
}

/** Where access lines and request durations go, and who the client is (see client-address.ts). */
export interface AccessLog {
  /** The node's logger: its level decides which lines are written. */
  readonly logger: Logger;
  /** Writes a line as the node's `http` module (src/logger.ts: lineWriter, cheap). */
  readonly write: LineWriter;
  readonly clientOf: (req: IncomingMessage) => string | undefined;
  /** The id of the request's token (a scoped token's configured id); never the token. */
  readonly tokenIdOf: (req: IncomingMessage) => string | undefined;
  /** The request duration metric (nanocdn_http_request_duration_seconds), by route label and status. */
  readonly observe: (route: RouteLabel, status: number, seconds: number) => void;
}

export function accessLog(logger: Logger, http: { trustedProxies: readonly string[] }, tokenIdOf: (req: IncomingMessage) => string | undefined,
  observe: AccessLog['observe']): AccessLog {
  return { logger, write: lineWriter(logger, { module: 'http' }), clientOf: clientAddressOf(http.trustedProxies), tokenIdOf, observe };
}

/**
 * One JSON line per request: id, client address, method, path (never the
 * query string: it may hold a signature), name, tenant, status, bytes, ms,
 * user agent, token id. The Authorization header is never logged. And the
 * request's duration, under its route label.
 */
export function requestLog(access: AccessLog): RequestHandler {
  return (req, res, next) => {
    res.locals.requestId = logRequest(access, req, res, req.path, res.locals, routeLabel(req));
    next();
  };
}

/** Maps an Express route's request to one of the fixed route labels (never the path: names would explode cardinality). */
function routeLabel(req: Request): RouteLabel {
  const p = req.path;
  if (p.startsWith('/upload/')) return 'upload';
  if (p === '/usage' || p === '/usage/history') return 'usage';
  if (p === '/status' || p.startsWith('/status/')) return 'status';
  if (p === '/metrics') return 'metrics';
  if (p === '/healthz' || p === '/readyz') return 'health';
  if (p === '/admin' || p.startsWith('/admin/')) return 'admin';
  if (req.method === 'DELETE') return 'delete';
  if (req.method === 'GET' || req.method === 'HEAD') return 'download';
  return 'other';
}

/**
 * Sets X-Request-Id and, once its response is done, observes the request's
 * duration under `route` and logs its line; returns the id. One 'close'
 * listener per request does both. `locals` (name, tenant, errorCode,
 * bytesIn, bytesOut) is read then. Also used by the read path and the
 * upload path in front of Express (src/http/read/read-path.ts,
 * src/http/routes/upload.ts).
 *
 * `idHeader: false`: the caller sends X-Request-Id itself, among the headers
 * it gives writeHead(), and says its body's size in `locals.bytesOut`. A
 * header set earlier with setHeader() sends Node's writeHead() down its slow
 * path (every header set and checked one by one), measured −10 % of small
 * GETs a second (docs/read-path.md).
 */
export function logRequest(access: AccessLog, req: IncomingMessage, res: ServerResponse, path: string, locals: Record<string, unknown>,
  route: RouteLabel, idHeader = true): string {
  const started = process.hrtime.bigint();
  const incoming = req.headers['x-request-id'];
  const id = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
  if (idHeader) res.setHeader('X-Request-Id', id);
  // 'close' follows 'finish' on every response, and fires alone for a client that went away mid-answer.
  res.on('close', () => {
    const ns = Number(process.hrtime.bigint() - started);
    access.observe(route, res.statusCode, ns / 1e9);
    const ms = ns / 1e6;
    const completed = res.writableFinished;
    const level = levelOf(completed ? res.statusCode : 499, path);
    // Skip building a line nobody gets.
    if (!access.logger.isLevelEnabled(level)) return;
    access.write(level, 'request', {
      requestId: id,
      client: access.clientOf(req),
      method: req.method,
      path,
      name: locals.name,
      tenant: locals.tenant,
      status: completed ? res.statusCode : 499,
      error: completed ? locals.errorCode : (locals.errorCode ?? 'client_closed'),
      // undefined is left out of the line: one shape of object for every line (a spread made each a new one).
      aborted: completed ? undefined : true,
      bytesIn: locals.bytesIn ?? 0,
      bytesOut: locals.bytesOut ?? Number(res.getHeader('content-length') ?? 0),
      ms: Math.round(ms * 100) / 100,
      userAgent: req.headers['user-agent'],
      tokenId: access.tokenIdOf(req),
    });
  });
  return id;
}
