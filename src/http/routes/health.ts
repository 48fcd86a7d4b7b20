import type { Router } from 'express';
import express from 'express';
import type { NodeContext } from '../../context.js';
import { HttpError } from '../../errors.js';
import { readinessOf } from '../readiness.js';

/** /healthz: the process answers. /readyz: index open, data writable, disk not critical, not shutting down. */
export function healthRoutes(ctx: NodeContext, isShuttingDown: () => boolean): Router {
  const router = express.Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const { ready, checks, failing } = await readinessOf(ctx, isShuttingDown);
    if (ready) {
      res.json({ ready: true, checks });
      return;
    }
    throw new HttpError('not_ready', `Not ready: ${failing.join(', ')} check failed.`, { checks });
  });
  return router;
}
