import type { NodeContext } from '../context.js';

export interface Readiness {
  ready: boolean;
  checks: { index: boolean; storage: boolean; disk: boolean; accepting: boolean };
  failing: string[];
}

/** What /readyz answers and nanocdn_ready exports: index open, storage answers, disk not critical, not shutting down. */
export async function readinessOf(ctx: NodeContext, isShuttingDown: () => boolean): Promise<Readiness> {
  const storageOk = await ctx.storage.check().then(() => true, () => false);
  const checks = {
    index: await ctx.index.isOpen().catch(() => false),
    storage: storageOk,
    disk: ctx.guard.currentState !== 'critical',
    accepting: !isShuttingDown(),
  };
  const failing = Object.entries(checks).filter(([, ok]) => !ok).map(([name]) => name);
  return { ready: failing.length === 0, checks, failing };
}
