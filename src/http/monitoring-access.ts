import type { RequestHandler } from 'express';
import type { NodeContext } from '../context.js';

/**
 * The one access rule of /usage, /usage/history, /metrics and /status: they
 * name tenants, so a token (Bearer, or Basic with the token as the password)
 * or a trusted network, unless `monitoring.public` (docs/monitoring.md).
 */
export function monitoringAccess(ctx: NodeContext): RequestHandler {
  return (req, _res, next) => {
    if (!ctx.config.monitoring.public) ctx.auth.requireMonitoring(req);
    next();
  };
}
