import type { Router } from 'express';
import express from 'express';
import { HttpError } from '../../errors.js';
import type { NodeContext } from '../../context.js';
import { LockHeldError } from '../../eviction/lock.js';

/** Victim names listed in the answer; the counts stay exact. */
const LIST_LIMIT = 1000;

/**
 * POST /admin/evict: one eviction run now (the scheduled pass: expiry, age,
 * idle, size limits), or with ?dryRun=1 only what it would remove. Optional
 * ?tenant= and ?class= narrow it. Needs a token that may admin, or a trusted address.
 */
export function adminRoutes(ctx: NodeContext): Router {
  const router = express.Router();
  router.post('/admin/evict', async (req, res) => {
    ctx.auth.require(req, { op: 'admin' });
    const query = req.query as Record<string, string | undefined>;
    const dryRun = query.dryRun === '1' || query.dryRun === 'true';
    const cls = query.class;
    if (cls !== undefined && !ctx.classifier.classes.has(cls)) {
      throw new HttpError('invalid_request', `Unknown storage class "${cls}".`, { known: [...ctx.classifier.classes.keys()] });
    }
    try {
      const summary = await ctx.evictor.run({ reason: 'admin', dryRun, scope: { tenant: query.tenant || undefined, class: cls } });
      res.json({
        ...summary, durationMs: Math.round(summary.durationMs),
        victims: summary.victims.slice(0, LIST_LIMIT), victimsTruncated: summary.victims.length > LIST_LIMIT,
      });
    } catch (err) {
      if (err instanceof LockHeldError) throw new HttpError('eviction_running', undefined, { holderPid: err.holderPid });
      throw err;
    }
  });
  return router;
}
