import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { parse as parseQuery } from 'node:querystring';
import type { NodeContext } from '../../context.js';
import { HttpError, isHttpError } from '../../errors.js';
import { parseEncodedName } from '../../names.js';
import { sendError } from '../error-handler.js';
import { logRequest, type AccessLog } from '../request-log.js';
import { authorizeRead, authorizeReadClass } from './authorize.js';
import { decide } from './conditions.js';
import { accelTarget, addBodyHeaders, fileHeaders, sandboxRule } from './headers.js';
import { ReadCache } from './read-cache.js';
import { cutWhenStalled, isFlushed } from './send-timeout.js';
import { sourceOf, type Body } from './source.js';

/**
 * Takes a request and returns true when it is a read and now answered by the
 * read path (asynchronously), false when it is not a read (nothing written).
 */
export type ReadPath = (req: IncomingMessage, res: ServerResponse) => boolean;

/**
 * The one read path (docs/read-path.md): every GET/HEAD of `/pub/…` and
 * `/priv/…` on every engine, in front of Express (whose per-request work was
 * most of the cost of a small read). In order: the name (src/names.ts), who
 * may read it (authorize.ts), the index row (no row: 404), the entity and
 * where its bytes come from (source.ts: local files or a ranged stream),
 * X-Accel-Redirect when configured, the conditions and Range
 * (conditions.ts), the headers (headers.ts), the access time for eviction,
 * then the bytes. Every error is the JSON of src/http/error-handler.ts. It
 * logs its one request line and times the "download" route like the Express
 * routes do.
 */
export function readPath(ctx: NodeContext, access: AccessLog, cache = new ReadCache()): ReadPath {
  const { accelRedirect: accel, sendTimeout } = ctx.config.download;
  const sandboxed = sandboxRule(ctx.config.download.sandboxExtensions);
  const logger = ctx.logger.child({ module: 'http' });
  const metrics = ctx.monitoring.metrics;
  const open = sourceOf(ctx.storage, cache);

  const answer = async (req: IncomingMessage, res: ServerResponse, path: string, query: string | undefined, locals: Record<string, unknown>, requestId: string): Promise<void> => {
    const stored = parseEncodedName(path.slice(1));
    locals.name = stored.name;
    locals.tenant = stored.tenant;
    const classScoped = authorizeRead(ctx, req, stored, query === undefined ? {} : parseQuery(query));
    const record = await ctx.index.files.get(stored.name);
    if (record === undefined) throw new HttpError('not_found', undefined, { name: stored.name });
    if (classScoped !== undefined) authorizeReadClass(ctx, classScoped, stored, record.class);
    const source = await open(stored, record);
    const headers = fileHeaders(source.entity, stored, sandboxed(stored.name));
    headers['X-Request-Id'] = requestId;

    if (accel !== null) {
      // The front sends the bytes (and decides Range and conditions on the file it sends).
      source.release();
      ctx.access.touch(stored.name, ctx.now());
      headers['X-Accel-Redirect'] = accelTarget(accel, stored);
      headers['Content-Length'] = 0;
      writeHead(res, 200, headers, locals);
      res.end();
      return;
    }
    const decision = decide(req.headers, source.entity);
    if (decision.status !== 200 && decision.status !== 206) {
      source.release();
      if (decision.status === 412) throw new HttpError('precondition_failed');
      if (decision.status === 416) {
        throw new HttpError('range_not_satisfiable', undefined, { size: source.entity.size }, { 'Content-Range': `bytes */${source.entity.size}` });
      }
      ctx.access.touch(stored.name, ctx.now());
      writeHead(res, 304, headers, locals);
      res.end();
      return;
    }
    const { status, range } = decision;
    let body: Body | undefined;
    if (req.method === 'HEAD' || range.end < range.start) source.release();
    else body = await source.body(range);
    ctx.access.touch(stored.name, ctx.now());
    addBodyHeaders(headers, source.entity, status, range.start, range.end);
    writeHead(res, status, headers, locals);
    if (body === undefined) {
      res.end();
      return;
    }
    body(res);
    // A body handed over whole (in memory) with nothing left queued is done; anything else is watched.
    if (res.writableEnded && isFlushed(res)) return;
    cutWhenStalled(res, sendTimeout, () => {
      locals.errorCode = 'send_timeout';
      metrics.sendTimedOut();
      logger.warn('send timeout: the client took no byte for download.sendTimeout; cut', { name: stored.name, sendTimeoutMs: sendTimeout });
    });
  };

  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (!isNameTarget(path)) return false;

    const locals: Record<string, unknown> = {};
    // X-Request-Id goes out with the answer's headers (one writeHead, Node's fast path); an error answer sets it below.
    const requestId = logRequest(access, req, res, path, locals, 'download', false);
    answer(req, res, path, q === -1 ? undefined : url.slice(q + 1), locals, requestId).catch((err: unknown) => {
      if (!isHttpError(err)) logger.error('read failed', { requestId, error: (err as Error)?.stack ?? String(err) });
      const error = isHttpError(err) ? err : new HttpError('internal');
      locals.errorCode = error.code;
      if (res.headersSent) res.destroy();
      else {
        res.setHeader('X-Request-Id', requestId);
        sendError(req, res, error);
      }
    });
    return true;
  };
}

/** Sends the answer's head, and notes its body's size for the access line (headers given to writeHead() are not readable with getHeader()). */
function writeHead(res: ServerResponse, status: number, headers: OutgoingHttpHeaders, locals: Record<string, unknown>): void {
  locals.bytesOut = headers['Content-Length'] ?? 0;
  res.writeHead(status, headers);
}

/**
 * Whether a request target is in the namespace of stored names: its first
 * segment (however percent-encoded) is `pub` or `priv`. Every other GET is
 * an Express route's (/healthz, /usage, …, and its JSON 404/400).
 */
function isNameTarget(path: string): boolean {
  if (path.startsWith('/pub/') || path.startsWith('/priv/')) return true;
  if (!path.startsWith('/')) return false;
  const slash = path.indexOf('/', 1);
  let first = path.slice(1, slash === -1 ? undefined : slash);
  try {
    first = decodeURIComponent(first);
  } catch {
    return false;
  }
  return first === 'pub' || first === 'priv';
}
