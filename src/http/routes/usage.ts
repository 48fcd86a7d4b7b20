import type { Router } from 'express';
import express from 'express';
import type { NodeContext } from '../../context.js';

/** GET /usage: the one answer that says what is wrong (DESIGN §5). */
export function usageRoutes(ctx: NodeContext): Router {
  const router = express.Router();
  router.get('/usage', async (req, res) => {
    if (!ctx.config.monitoring.public) ctx.auth.require(req);
    const snap = await ctx.guard.refresh();
    const now = ctx.now();
    const tmp = await ctx.storage.tmpStats(now);
    const totals = ctx.index.totals();
    const byClass = new Map<string, { files: number; bytes: number }>();
    const byTenant = new Map<string, { files: number; bytes: number }>();
    for (const t of totals) {
      const c = byClass.get(t.class) ?? { files: 0, bytes: 0 };
      c.files += t.files; c.bytes += t.bytes; byClass.set(t.class, c);
      const n = byTenant.get(t.tenant) ?? { files: 0, bytes: 0 };
      n.files += t.files; n.bytes += t.bytes; byTenant.set(t.tenant, n);
    }
    res.json({
      disk: {
        path: ctx.config.dataDir, totalBytes: snap.totalBytes, freeBytes: snap.freeBytes, usedBytes: snap.usedBytes,
        usedPercent: Number(snap.usedPercent.toFixed(2)), reserveBytes: snap.reserveBytes,
      },
      status: snap.state,
      writable: snap.state !== 'critical',
      inflight: { uploads: ctx.uploader.inflight, reservedBytes: snap.reservedBytes },
      tmp: { files: tmp.files, bytes: tmp.bytes, oldestSeconds: tmp.oldestAgeMs === null ? null : Math.round(tmp.oldestAgeMs / 1000) },
      classes: [...ctx.classifier.classes.values()].map((cls) => ({
        class: cls.name, files: byClass.get(cls.name)?.files ?? 0, bytes: byClass.get(cls.name)?.bytes ?? 0, quotaBytes: cls.maxBytes,
      })),
      tenants: [...byTenant.entries()].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, ctx.config.usage.topTenants)
        .map(([tenant, t]) => ({ tenant, files: t.files, bytes: t.bytes, growth24hBytes: null })),
      fillRate: { bytesPerHour: null, hoursToFull: null },
      lastEviction: null,
      alerts: [],
    });
  });
  return router;
}
