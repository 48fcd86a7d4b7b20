import type { HistoryPart, HourlyRollup, TenantBaseline, UsageSample } from '../index.js';
import type { Db } from './db.js';

const HOUR_MS = 3_600_000;

/** Used-space samples (`usage_samples`) and each tenant's bytes at the start of each hour (`tenant_hourly`). */
export class PgHistory implements HistoryPart {
  constructor(private readonly db: Db) {}

  async record(sample: UsageSample, rollup?: HourlyRollup): Promise<void> {
    await this.db.tx(async (client) => {
      await client.query(`INSERT INTO usage_samples (at_ms, used_bytes) VALUES ($1, $2)
        ON CONFLICT (at_ms) DO UPDATE SET used_bytes = EXCLUDED.used_bytes`, [sample.atMs, sample.usedBytes]);
      if (!rollup) return;
      // The first reading of an hour wins: the row says what the tenant held when the hour began.
      await client.query(`INSERT INTO tenant_hourly (hour_ms, tenant, bytes)
        SELECT $1, tenant, SUM(bytes) FROM totals GROUP BY tenant ON CONFLICT DO NOTHING`, [rollup.hourMs]);
      await client.query('DELETE FROM usage_samples WHERE at_ms < $1', [rollup.samplesFromMs]);
      await client.query('DELETE FROM tenant_hourly WHERE hour_ms < $1', [rollup.hourlyFromMs]);
    });
  }

  async recordTenant(hourMs: number, tenant: string, bytes: number): Promise<void> {
    await this.db.run('INSERT INTO tenant_hourly (hour_ms, tenant, bytes) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [hourMs, tenant, bytes]);
  }

  async samplesSince(sinceMs: number): Promise<UsageSample[]> {
    const rows = await this.db.rows<{ at_ms: number; used_bytes: number }>(
      'SELECT at_ms, used_bytes FROM usage_samples WHERE at_ms >= $1 ORDER BY at_ms', [sinceMs]);
    return rows.map((row) => ({ atMs: row.at_ms, usedBytes: row.used_bytes }));
  }

  async baselineAt(atMs: number): Promise<TenantBaseline | null> {
    const hourMs = (await this.db.row<{ hour_ms: number | null }>(`SELECT COALESCE(
      (SELECT MAX(hour_ms) FROM tenant_hourly WHERE hour_ms <= $1 AND hour_ms > $1 - ${HOUR_MS}),
      (SELECT MIN(hour_ms) FROM tenant_hourly WHERE hour_ms > $1)) AS hour_ms`, [atMs]))?.hour_ms ?? null;
    if (hourMs === null) return null;
    const rows = await this.db.rows<{ tenant: string; bytes: number }>('SELECT tenant, bytes FROM tenant_hourly WHERE hour_ms = $1', [hourMs]);
    const bytes = new Map(rows.map((row) => [row.tenant, row.bytes]));
    let totalBytes = 0;
    for (const value of bytes.values()) totalBytes += value;
    return { hourMs, totalBytes, bytes };
  }
}
