import type { Router } from 'express';
import express from 'express';
import type { NodeContext } from '../../context.js';
import { monitoringAccess } from '../monitoring-access.js';

/** GET /metrics: Prometheus text; gauges from the same report as /usage. Under the monitoring access rule. */
export function metricsRoutes(ctx: NodeContext): Router {
  const router = express.Router();
  router.get('/metrics', monitoringAccess(ctx), async (_req, res) => {
    const { usage, metrics } = ctx.monitoring;
    const body = await metrics.render(await usage.build());
    res.setHeader('Cache-Control', 'no-store');
    res.type(metrics.contentType).send(body);
  });
  return router;
}
