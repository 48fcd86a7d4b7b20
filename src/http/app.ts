import express, { type Express } from 'express';
import { HttpError } from '../errors.js';
import type { NodeContext } from '../context.js';
import { errorHandler } from './error-handler.js';
import { accessLog, requestLog } from './request-log.js';
import { healthRoutes } from './routes/health.js';
import { usageRoutes } from './routes/usage.js';
import { usageHistoryRoutes } from './routes/usage-history.js';
import { statusRoutes } from './routes/status.js';
import { metricsRoutes } from './routes/metrics.js';
import { httpDuration } from './http-duration.js';
import { uploadRoutes } from './routes/upload.js';
import { deleteRoutes } from './routes/delete.js';
import { downloadRoutes } from './routes/download.js';
import { withFastReads } from './fast-read.js';
import { adminRoutes } from './routes/admin.js';
import { onlyChunkedTransferCoding } from './transfer-coding.js';

export interface AppOptions {
  /** True once the server began shutting down (readyz fails). */
  isShuttingDown?: () => boolean;
}

/** The HTTP API of docs/design.md §3 on a NodeContext; no listen(), so supertest can drive it. */
export function createApp(ctx: NodeContext, options: AppOptions = {}): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', 'simple');

  const downloads = downloadRoutes(ctx);
  app.use(requestLog(accessLog(ctx.logger.child({ module: 'http' }), ctx.config.http)));
  app.use(httpDuration(ctx.monitoring.metrics));
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
  app.use(downloads.routes);

  app.use((req, _res, next) => {
    const allowed = ['GET', 'HEAD', 'PUT', 'POST', 'DELETE'];
    next(allowed.includes(req.method)
      ? new HttpError('not_found', 'No such endpoint; files are read at /<name> and written at /upload/<name>.')
      : new HttpError('method_not_allowed', undefined, { method: req.method }, { Allow: allowed.join(', ') }));
  });
  app.use(errorHandler(ctx.logger.child({ module: 'http' })));
  // The common read is answered in front of Express (src/http/fast-read.ts); Express gets what it declines.
  return withFastReads(app, downloads.fast);
}
