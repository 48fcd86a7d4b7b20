import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import { HttpError } from '../errors.js';
import { parseEncodedName } from '../names.js';
import type { NodeContext } from '../context.js';
import { errorHandler } from './error-handler.js';
import { accessLog, requestLog } from './request-log.js';
import { healthRoutes } from './routes/health.js';
import { usageRoutes } from './routes/usage.js';
import { usageHistoryRoutes } from './routes/usage-history.js';
import { statusRoutes } from './routes/status.js';
import { metricsRoutes } from './routes/metrics.js';
import { uploadPath, uploadRoutes } from './routes/upload.js';
import { deleteRoutes } from './routes/delete.js';
import { readPath } from './read/read-path.js';
import { adminRoutes } from './routes/admin.js';
import { onlyChunkedTransferCoding } from './transfer-coding.js';

export interface AppOptions {
  /** True once the server began shutting down (readyz fails). */
  isShuttingDown?: () => boolean;
}

/** The node's HTTP handler: `http.createServer(app)`, or supertest's `request(app)`. */
export type NodeApp = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * The HTTP API of docs/design.md §3 on a NodeContext; no listen(), so
 * supertest can drive it. Reads of stored names are answered by the read
 * path (src/http/read/read-path.ts) and raw uploads (PUT /upload/<name>)
 * by the upload path (src/http/routes/upload.ts) before Express, whose
 * per-request work was much of their cost; Express has the rest.
 */
export function createApp(ctx: NodeContext, options: AppOptions = {}): NodeApp {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', 'simple');

  const metrics = ctx.monitoring.metrics;
  const access = accessLog(ctx.logger, ctx.config.http, (req) => ctx.auth.tokenIdOf(req), (route, status, seconds) => metrics.observeRequest(route, status, seconds));
  app.use(requestLog(access));
  app.use(onlyChunkedTransferCoding);
  const isShuttingDown = options.isShuttingDown ?? (() => false);
  app.use(healthRoutes(ctx, isShuttingDown));
  app.use(usageRoutes(ctx));
  app.use(usageHistoryRoutes(ctx));
  app.use(statusRoutes(ctx));
  app.use(metricsRoutes(ctx, isShuttingDown));
  app.use(adminRoutes(ctx));
  app.use(uploadRoutes(ctx));
  app.use(deleteRoutes(ctx));

  app.use((req, _res, next) => {
    // A GET of no endpoint and outside /pub/ and /priv/ (which the read path has) is a name that is not valid: 400 invalid_name.
    if ((req.method === 'GET' || req.method === 'HEAD') && req.path !== '/') parseEncodedName(req.path.slice(1));
    const allowed = ['GET', 'HEAD', 'PUT', 'POST', 'DELETE'];
    next(allowed.includes(req.method)
      ? new HttpError('not_found', 'No such endpoint; files are read at /<name> and written at /upload/<name>.')
      : new HttpError('method_not_allowed', undefined, { method: req.method }, { Allow: allowed.join(', ') }));
  });
  app.use(errorHandler(ctx.logger.child({ module: 'http' })));

  const reads = readPath(ctx, access);
  const uploads = uploadPath(ctx, access);
  return (req, res) => {
    if (!reads(req, res) && !uploads(req, res)) app(req, res);
  };
}
