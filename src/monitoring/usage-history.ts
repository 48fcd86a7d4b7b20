import type Database from 'better-sqlite3';
import type { UsedSample } from './fill-rate.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS usage_samples (
  at_ms INTEGER PRIMARY KEY,
  used_bytes INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tenant_hourly (
  hour_ms INTEGER NOT NULL,
  tenant TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  PRIMARY KEY (hour_ms, tenant)
) WITHOUT ROWID;
`;

export interface UsageHistoryOptions {
  /** Used-space samples older than this are pruned. Default 2 days. */
  keepSamplesMs?: number;
  /** Hourly tenant totals older than this are pruned (one row per tenant and hour). Default 2 days. */
  keepHourlyMs?: number;
}

/** Bytes a tenant held at the start of the 24 h baseline hour, and the baseline's total. */
export interface GrowthBaseline {
  hourMs: number;
  /** Sum over all tenants at that hour. */
  totalBytes: number;
  bytesOf(tenant: string): number;
}

/**
 * Usage history in the index database (so growth survives restarts):
 * used-space samples for the fill-rate fit, and per-tenant bytes at the start
 * of each hour for 24 h growth. Written by record(), called on a timer.
 */
export class UsageHistory {
  private readonly stmts;
  private lastHourMs = -1;
  /** Samples since `recentFrom`, as in the table (only this object writes them). */
  private recent: { from: number; samples: UsedSample[] } | null = null;
  /** The growth baseline of one baseline hour key, until the table changes. */
  private baseline: { key: number; value: GrowthBaseline | null } | null = null;
  private readonly keepSamplesMs: number;
  private readonly keepHourlyMs: number;

  constructor(private readonly db: Database.Database, options: UsageHistoryOptions = {}) {
    this.keepSamplesMs = options.keepSamplesMs ?? 2 * DAY_MS;
    this.keepHourlyMs = options.keepHourlyMs ?? 2 * DAY_MS;
    db.exec(SCHEMA);
    this.stmts = {
      sample: db.prepare<[number, number]>('INSERT OR REPLACE INTO usage_samples (at_ms, used_bytes) VALUES (?, ?)'),
      samplesSince: db.prepare<[number], { at_ms: number; used_bytes: number }>('SELECT at_ms, used_bytes FROM usage_samples WHERE at_ms >= ? ORDER BY at_ms'),
      pruneSamples: db.prepare<[number]>('DELETE FROM usage_samples WHERE at_ms < ?'),
      // The first reading of an hour wins: the row says what the tenant held when the hour began.
      hourly: db.prepare<[number, string, number]>('INSERT INTO tenant_hourly (hour_ms, tenant, bytes) VALUES (?, ?, ?) ON CONFLICT DO NOTHING'),
      hourlyFromTotals: db.prepare<[number]>(`INSERT INTO tenant_hourly (hour_ms, tenant, bytes)
        SELECT ?, tenant, SUM(bytes) FROM totals GROUP BY tenant ON CONFLICT DO NOTHING`),
      pruneHourly: db.prepare<[number]>('DELETE FROM tenant_hourly WHERE hour_ms < ?'),
      // The hour that began 24 h ago (within an hour), else the earliest hour since.
      baselineHour: db.prepare<{ dayAgo: number }, { hour_ms: number | null }>(`SELECT COALESCE(
        (SELECT MAX(hour_ms) FROM tenant_hourly WHERE hour_ms <= @dayAgo AND hour_ms > @dayAgo - ${HOUR_MS}),
        (SELECT MIN(hour_ms) FROM tenant_hourly WHERE hour_ms > @dayAgo)) AS hour_ms`),
      baselineTotal: db.prepare<[number], { bytes: number }>('SELECT COALESCE(SUM(bytes), 0) AS bytes FROM tenant_hourly WHERE hour_ms = ?'),
      baselineTenants: db.prepare<[number], { tenant: string; bytes: number }>('SELECT tenant, bytes FROM tenant_hourly WHERE hour_ms = ?'),
    };
  }

  /**
   * Records the disk's used bytes at `nowMs`; at the first call of each hour
   * also each tenant's bytes (from the trigger-kept totals), and prunes.
   */
  record(nowMs: number, usedBytes: number): void {
    const hourMs = Math.floor(nowMs / HOUR_MS) * HOUR_MS;
    this.db.transaction(() => {
      this.stmts.sample.run(nowMs, usedBytes);
      if (hourMs !== this.lastHourMs) {
        this.stmts.hourlyFromTotals.run(hourMs);
        this.stmts.pruneSamples.run(nowMs - this.keepSamplesMs);
        this.stmts.pruneHourly.run(nowMs - this.keepHourlyMs);
      }
    })();
    this.lastHourMs = hourMs;
    if (this.recent) this.recent.samples.push({ atMs: nowMs, usedBytes });
    this.baseline = null;
  }

  /** Injects a tenant's bytes at an hour (tests, imports). */
  recordTenant(hourMs: number, tenant: string, bytes: number): void {
    this.stmts.hourly.run(Math.floor(hourMs / HOUR_MS) * HOUR_MS, tenant, bytes);
    this.baseline = null;
  }

  /** Used-space samples since `sinceMs`, oldest first. */
  samplesSince(sinceMs: number): UsedSample[] {
    // Served from memory after the first read: /usage asks on every request, the table changes once a minute.
    if (!this.recent || sinceMs < this.recent.from) {
      const samples = this.stmts.samplesSince.all(sinceMs).map((row) => ({ atMs: row.at_ms, usedBytes: row.used_bytes }));
      this.recent = { from: sinceMs, samples };
    } else {
      const firstKept = this.recent.samples.findIndex((s) => s.atMs >= sinceMs);
      this.recent.samples.splice(0, firstKept === -1 ? this.recent.samples.length : firstKept);
      this.recent.from = sinceMs;
    }
    return this.recent.samples.filter((s) => s.atMs >= sinceMs).sort((a, b) => a.atMs - b.atMs);
  }

  /**
   * The baseline for 24 h growth: the hour that began 24 h ago, or the
   * earliest recorded hour since (a node younger than a day). Null without history.
   */
  growthBaseline(nowMs: number): GrowthBaseline | null {
    // Rows are hour-aligned, so the chosen hour only changes when "24 h ago" enters another hour.
    const key = Math.floor((nowMs - DAY_MS) / HOUR_MS);
    if (this.baseline?.key !== key) this.baseline = { key, value: this.loadBaseline(nowMs - DAY_MS) };
    return this.baseline.value;
  }

  private loadBaseline(dayAgo: number): GrowthBaseline | null {
    const hourMs = this.stmts.baselineHour.get({ dayAgo })?.hour_ms ?? null;
    if (hourMs === null) return null;
    const totalBytes = this.stmts.baselineTotal.get(hourMs)!.bytes;
    const bytes = new Map(this.stmts.baselineTenants.all(hourMs).map((row) => [row.tenant, row.bytes]));
    // A tenant without a row at that hour held nothing then.
    return { hourMs, totalBytes, bytesOf: (tenant) => bytes.get(tenant) ?? 0 };
  }
}
