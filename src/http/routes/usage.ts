import type { Router } from 'express';
import express from 'express';
import type { NodeContext } from '../../context.js';
import { monitoringAccess } from '../monitoring-access.js';

/** GET /usage: the one answer that says what is wrong (docs/design.md §8), under the monitoring access rule. */
export function usageRoutes(ctx: NodeContext): Router {
  const router = express.Router();
  router.get('/usage', monitoringAccess(ctx), async (_req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    res.json(await ctx.monitoring.usageReport());
  });
  return router;
}
