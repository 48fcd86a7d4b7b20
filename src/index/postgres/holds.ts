import type { HeldTotals, HoldLimits, HoldsPart, HoldVerdict } from '../index.js';
import { ADVISORY, type Db } from './db.js';

interface Figures {
  stored_all: number;
  held_all: number;
  stored_class: number;
  held_class: number;
  held_tenant: number;
  uploads_tenant: number;
  exists: boolean;
}

/**
 * Holds in `holds`, counted while their node's lease (`nodes`) runs. take()
 * is one transaction under one advisory lock: the sums it checks cannot
 * change under it, so N nodes admitting at once never overshoot together.
 * Stored bytes come from `totals` (kept by the files trigger), so a check
 * reads a few rows, never the files.
 */
export class PgHolds implements HoldsPart {
  constructor(private readonly db: Db) {}

  async renewLease(nodeId: string, nowMs: number, leaseMs: number): Promise<void> {
    await this.db.run(`INSERT INTO nodes (id, started_ms, lease_until_ms) VALUES ($1, $2, $3)
      ON CONFLICT (id) DO UPDATE SET lease_until_ms = EXCLUDED.lease_until_ms`, [nodeId, nowMs, nowMs + leaseMs]);
  }

  async leave(nodeId: string): Promise<void> {
    await this.db.tx(async (client) => {
      await this.db.run('DELETE FROM holds WHERE node_id = $1', [nodeId], client);
      await this.db.run('DELETE FROM nodes WHERE id = $1', [nodeId], client);
    });
  }

  async take(hold: { id: string; nodeId: string; tenant: string; cls: string; bytes: number }, limits: HoldLimits, nowMs: number): Promise<HoldVerdict> {
    return this.db.tx(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1)', [ADVISORY.holds]);
      const f = (await this.db.row<Figures>(`
        WITH live AS (SELECT h.id, h.tenant, h.class, h.bytes FROM holds h JOIN nodes n ON n.id = h.node_id WHERE n.lease_until_ms > $1)
        SELECT
          (SELECT COALESCE(SUM(bytes), 0) FROM totals)::bigint AS stored_all,
          (SELECT COALESCE(SUM(bytes), 0) FROM live)::bigint AS held_all,
          (SELECT COALESCE(SUM(bytes), 0) FROM totals WHERE tenant = $2 AND class = $3)::bigint AS stored_class,
          (SELECT COALESCE(SUM(bytes), 0) FROM live WHERE tenant = $2 AND class = $3)::bigint AS held_class,
          (SELECT COALESCE(SUM(bytes), 0) FROM live WHERE tenant = $2)::bigint AS held_tenant,
          (SELECT COUNT(*) FROM live WHERE tenant = $2)::bigint AS uploads_tenant,
          EXISTS (SELECT 1 FROM holds WHERE id = $4) AS exists`, [nowMs, hold.tenant, hold.cls, hold.id], client))!;
      const adding = hold.bytes;
      const refuse = (limit: 'room' | 'quota' | 'inflightUploads' | 'inflightBytes', usedBytes: number, heldBytes: number): HoldVerdict =>
        ({ ok: false, limit, usedBytes, heldBytes, uploads: f.uploads_tenant });
      if (limits.roomBytes !== null && f.stored_all + f.held_all + adding > limits.roomBytes) return refuse('room', f.stored_all, f.held_all);
      if (limits.quotaBytes !== null && f.stored_class + f.held_class + adding > limits.quotaBytes) return refuse('quota', f.stored_class + f.held_class, f.held_class);
      if (!f.exists && limits.inflightUploads !== null && f.uploads_tenant + 1 > limits.inflightUploads) return refuse('inflightUploads', f.held_tenant, f.held_tenant);
      if (limits.inflightBytes !== null && f.held_tenant + adding > limits.inflightBytes) return refuse('inflightBytes', f.held_tenant, f.held_tenant);
      await this.db.run(`INSERT INTO holds (id, node_id, tenant, class, bytes) VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (id) DO UPDATE SET bytes = holds.bytes + EXCLUDED.bytes`, [hold.id, hold.nodeId, hold.tenant, hold.cls, adding], client);
      return { ok: true };
    });
  }

  async release(id: string): Promise<void> {
    await this.db.run('DELETE FROM holds WHERE id = $1', [id]);
  }

  async held(nowMs: number, tenant?: string): Promise<HeldTotals> {
    const rows = await this.db.rows<{ class: string; uploads: number; bytes: number }>(`SELECT h.class, COUNT(*)::bigint AS uploads, COALESCE(SUM(h.bytes), 0)::bigint AS bytes
      FROM holds h JOIN nodes n ON n.id = h.node_id WHERE n.lease_until_ms > $1 AND ($2::text IS NULL OR h.tenant = $2::text)
      GROUP BY h.class`, [nowMs, tenant ?? null]);
    const totals: HeldTotals = { uploads: 0, bytes: 0, byClass: {} };
    for (const row of rows) {
      totals.uploads += row.uploads;
      totals.bytes += row.bytes;
      totals.byClass[row.class] = row.bytes;
    }
    return totals;
  }

  async expire(nowMs: number): Promise<number> {
    return this.db.tx(async (client) => {
      await this.db.run('DELETE FROM holds WHERE node_id IN (SELECT id FROM nodes WHERE lease_until_ms <= $1)', [nowMs], client);
      return this.db.run('DELETE FROM nodes WHERE lease_until_ms <= $1', [nowMs], client);
    });
  }
}
