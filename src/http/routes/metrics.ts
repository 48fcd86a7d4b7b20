import type { Router } from 'express';
import express from 'express';
import type { NodeContext } from '../../context.js';

/** GET /metrics: Prometheus text; gauges from the same report as /usage. Tokens or trusted networks unless monitoring.public. */
export function metricsRoutes(ctx: NodeContext): Router {
  const router = express.Router();
  router.get('/metrics', async (req, res) => {
    if (!ctx.config.monitoring.public) ctx.auth.require(req);
    const { usage, metrics } = ctx.monitoring;
    const body = await metrics.render(await usage.build());
    res.setHeader('Cache-Control', 'no-store');
    res.type(metrics.contentType).send(body);
  });
  return router;
}
