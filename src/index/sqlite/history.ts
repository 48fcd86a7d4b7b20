import type Database from 'better-sqlite3';
import type { HistoryPart, HourlyRollup, TenantBaseline, UsageSample } from '../index.js';

const HOUR_MS = 3_600_000;

/** Used-space samples (`usage_samples`) and each tenant's bytes at the start of each hour (`tenant_hourly`). */
export class SqliteHistory implements HistoryPart {
  private readonly stmts;
  private readonly recordTx: (sample: UsageSample, rollup?: HourlyRollup) => void;

  constructor(db: Database.Database) {
    this.stmts = {
      sample: db.prepare<[number, number]>('INSERT OR REPLACE INTO usage_samples (at_ms, used_bytes) VALUES (?, ?)'),
      samplesSince: db.prepare<[number], { at_ms: number; used_bytes: number }>('SELECT at_ms, used_bytes FROM usage_samples WHERE at_ms >= ? ORDER BY at_ms'),
      pruneSamples: db.prepare<[number]>('DELETE FROM usage_samples WHERE at_ms < ?'),
      // The first reading of an hour wins: the row says what the tenant held when the hour began.
      hourly: db.prepare<[number, string, number]>('INSERT INTO tenant_hourly (hour_ms, tenant, bytes) VALUES (?, ?, ?) ON CONFLICT DO NOTHING'),
      hourlyFromTotals: db.prepare<[number]>(`INSERT INTO tenant_hourly (hour_ms, tenant, bytes)
        SELECT ?, tenant, SUM(bytes) FROM totals GROUP BY tenant ON CONFLICT DO NOTHING`),
      pruneHourly: db.prepare<[number]>('DELETE FROM tenant_hourly WHERE hour_ms < ?'),
      baselineHour: db.prepare<{ at: number }, { hour_ms: number | null }>(`SELECT COALESCE(
        (SELECT MAX(hour_ms) FROM tenant_hourly WHERE hour_ms <= @at AND hour_ms > @at - ${HOUR_MS}),
        (SELECT MIN(hour_ms) FROM tenant_hourly WHERE hour_ms > @at)) AS hour_ms`),
      baselineTenants: db.prepare<[number], { tenant: string; bytes: number }>('SELECT tenant, bytes FROM tenant_hourly WHERE hour_ms = ?'),
    };
    this.recordTx = db.transaction((sample: UsageSample, rollup?: HourlyRollup) => {
      this.stmts.sample.run(sample.atMs, sample.usedBytes);
      if (!rollup) return;
      this.stmts.hourlyFromTotals.run(rollup.hourMs);
      this.stmts.pruneSamples.run(rollup.samplesFromMs);
      this.stmts.pruneHourly.run(rollup.hourlyFromMs);
    });
  }

  async record(sample: UsageSample, rollup?: HourlyRollup): Promise<void> {
    this.recordTx(sample, rollup);
  }

  async recordTenant(hourMs: number, tenant: string, bytes: number): Promise<void> {
    this.stmts.hourly.run(hourMs, tenant, bytes);
  }

  async samplesSince(sinceMs: number): Promise<UsageSample[]> {
    return this.stmts.samplesSince.all(sinceMs).map((row) => ({ atMs: row.at_ms, usedBytes: row.used_bytes }));
  }

  async baselineAt(atMs: number): Promise<TenantBaseline | null> {
    const hourMs = this.stmts.baselineHour.get({ at: atMs })?.hour_ms ?? null;
    if (hourMs === null) return null;
    const bytes = new Map(this.stmts.baselineTenants.all(hourMs).map((row) => [row.tenant, row.bytes]));
    let totalBytes = 0;
    for (const value of bytes.values()) totalBytes += value;
    return { hourMs, totalBytes, bytes };
  }
}
