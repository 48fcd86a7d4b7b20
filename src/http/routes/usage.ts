import type { Router } from 'express';
import express from 'express';
import type { NodeContext } from '../../context.js';

/** GET /usage: the one answer that says what is wrong (docs/design.md §8). Tokens or trusted networks unless monitoring.public. */
export function usageRoutes(ctx: NodeContext): Router {
  const router = express.Router();
  router.get('/usage', async (req, res) => {
    if (!ctx.config.monitoring.public) ctx.auth.require(req);
    res.setHeader('Cache-Control', 'no-store');
    res.json(await ctx.monitoring.usage.build());
  });
  return router;
}
