import type { Router } from 'express';
import express from 'express';
import type { NodeContext } from '../../context.js';
import { monitoringAccess } from '../monitoring-access.js';
import { readinessOf } from '../readiness.js';

/** GET /metrics: Prometheus text; gauges from the same report as /usage. Under the monitoring access rule. */
export function metricsRoutes(ctx: NodeContext, isShuttingDown: () => boolean = () => false): Router {
  const router = express.Router();
  router.get('/metrics', monitoringAccess(ctx), async (_req, res) => {
    const { ready } = await readinessOf(ctx, isShuttingDown);
    const body = await ctx.monitoring.renderMetrics({ ready });
    res.setHeader('Cache-Control', 'no-store');
    res.type(ctx.monitoring.metrics.contentType).send(body);
  });
  return router;
}
