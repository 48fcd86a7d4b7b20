import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseQuery } from 'node:querystring';
import type { Express } from 'express';
import type { NodeContext } from '../context.js';
import { parseEncodedName } from '../names.js';
import { accessLog, logRequest } from './request-log.js';
import { isPlainRequest, preparePlainRead, sendPlainRead, type PlainRead } from './plain-read.js';
import type { ReadCache } from './read-cache.js';
import { accelTarget, authorizeRead, PRIVATE_CACHE, PUBLIC_CACHE } from './routes/download.js';

/** Answers a request completely and returns true, or returns false having written nothing and changed nothing. */
export type FastRead = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

/**
 * The read fast path, in front of Express. Express's own per-request work
 * (prototype swaps, router layers, middleware closures) was most of the
 * cost of a small read (docs/read-path.md), so the common read skips it:
 * a plain GET/HEAD (no Range, no If-*) of an indexed /pub/ or /priv/ name
 * that is authorized, from the read cache or a file that opens. Anything
 * else, and any failure (bad name, no row, refused auth, file gone), is
 * declined before a header or an access time is written, and the Express
 * routes answer it as always (JSON errors, `send` for Range and
 * conditionals). What it serves it logs (one request line) and times (the
 * "download" duration metric) like the Express path does.
 */
export function fastReads(ctx: NodeContext, cache: ReadCache): FastRead {
  const accel = ctx.config.download.accelRedirect;
  const logger = ctx.logger.child({ module: 'http' });
  const access = accessLog(logger, ctx.config.http);
  const metrics = ctx.monitoring.metrics;
  const localPath = ctx.storage.localPath?.bind(ctx.storage);

  return async (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const started = process.hrtime.bigint();
    const url = req.url ?? '';
    if (!url.startsWith('/pub/') && !url.startsWith('/priv/')) return false;
    if (!accel && (localPath === undefined || !isPlainRequest(req.headers))) return false;

    const q = url.indexOf('?');
    const target = q === -1 ? url : url.slice(0, q);
    let stored;
    try {
      stored = parseEncodedName(target.slice(1));
      if (stored.visibility === 'priv') authorizeRead(ctx, req, stored, q === -1 ? {} : parseQuery(url.slice(q + 1)));
    } catch {
      return false;
    }
    const record = await ctx.index.files.get(stored.name);
    if (record === undefined) return false;

    let plain: PlainRead | undefined;
    if (!accel) {
      try {
        plain = await preparePlainRead(cache, req.method, localPath!(stored), stored, record);
      } catch {
        return false;
      }
    }

    try {
      res.once('close', () => metrics.observeRequest('download', res.statusCode, Number(process.hrtime.bigint() - started) / 1e9));
      logRequest(access, req, res, target, { name: stored.name, tenant: stored.tenant }, started);
      ctx.access.touch(stored.name, ctx.now());
      res.setHeader('Cache-Control', stored.visibility === 'pub' ? PUBLIC_CACHE : PRIVATE_CACHE);
      if (plain !== undefined) {
        sendPlainRead(res, plain);
      } else {
        res.writeHead(200, { ETag: `"${record.sha256}"`, 'X-Accel-Redirect': accelTarget(accel!, stored), 'Content-Length': 0 });
        res.end();
      }
    } catch (err) {
      // Committed: the request is ours. Nothing is expected to throw here; if it does, say so and cut the response.
      logger.error('read fast path failed', { name: stored.name, error: (err as Error)?.stack ?? String(err) });
      res.destroy();
    }
    return true;
  };
}

/**
 * Puts `fast` in front of the app: Express sees only the requests it
 * declines. (An Express app is `(req, res) => app.handle(req, res)`; that is
 * Express's internals, not its API, so test/unit/framework-contracts.test.ts
 * fails if a release stops dispatching through app.handle.)
 */
export function withFastReads(app: Express, fast: FastRead): Express {
  const express = app as unknown as { handle(req: IncomingMessage, res: ServerResponse, next?: unknown): void };
  const handle = express.handle.bind(app);
  express.handle = (req, res, next) => {
    // fast() rejects only before it wrote anything (e.g. the index failed): Express then answers, with its JSON error.
    fast(req, res).then((served) => { if (!served) handle(req, res, next); }, () => handle(req, res, next));
  };
  return app;
}
