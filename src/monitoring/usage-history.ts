import type { HistoryPart } from '../index/index.js';
import type { UsedSample } from './fill-rate.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

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
 * Usage history kept in the index (so growth survives restarts): used-space
 * samples for the fill-rate fit, and per-tenant bytes at the start of each
 * hour for 24 h growth. Written by record(), called on a timer; read on
 * every /usage, so what was read is kept here until it changes.
 */
export class UsageHistory {
  private lastHourMs = -1;
  /** Bumped by every write, so a read that overlapped one is not kept. */
  private writes = 0;
  /** Samples since `from`, as in the index (only this object writes them). */
  private recent: { from: number; samples: UsedSample[] } | null = null;
  /** The growth baseline of one baseline hour key, until the history changes. */
  private baseline: { key: number; value: Promise<GrowthBaseline | null> } | null = null;
  private readonly keepSamplesMs: number;
  private readonly keepHourlyMs: number;

  constructor(private readonly history: HistoryPart, options: UsageHistoryOptions = {}) {
    this.keepSamplesMs = options.keepSamplesMs ?? 2 * DAY_MS;
    this.keepHourlyMs = options.keepHourlyMs ?? 2 * DAY_MS;
  }

  /**
   * Records the disk's used bytes at `nowMs`; at the first call of each hour
   * also each tenant's bytes (from the index totals), and prunes.
   */
  async record(nowMs: number, usedBytes: number): Promise<void> {
    const hourMs = Math.floor(nowMs / HOUR_MS) * HOUR_MS;
    const rollup = hourMs === this.lastHourMs ? undefined
      : { hourMs, samplesFromMs: nowMs - this.keepSamplesMs, hourlyFromMs: nowMs - this.keepHourlyMs };
    this.writes++;
    await this.history.record({ atMs: nowMs, usedBytes }, rollup);
    this.lastHourMs = hourMs;
    if (this.recent) this.recent.samples.push({ atMs: nowMs, usedBytes });
    this.baseline = null;
  }

  /** Injects a tenant's bytes at an hour (tests, imports). */
  async recordTenant(hourMs: number, tenant: string, bytes: number): Promise<void> {
    this.writes++;
    await this.history.recordTenant(Math.floor(hourMs / HOUR_MS) * HOUR_MS, tenant, bytes);
    this.baseline = null;
  }

  /** Used-space samples since `sinceMs`, oldest first. */
  async samplesSince(sinceMs: number): Promise<UsedSample[]> {
    // Served from memory after the first read: /usage asks on every request, the index changes once a minute.
    if (!this.recent || sinceMs < this.recent.from) {
      const writes = this.writes;
      const samples = await this.history.samplesSince(sinceMs);
      if (writes !== this.writes) return samples;
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
  growthBaseline(nowMs: number): Promise<GrowthBaseline | null> {
    // Rows are hour-aligned, so the chosen hour only changes when "24 h ago" enters another hour.
    const key = Math.floor((nowMs - DAY_MS) / HOUR_MS);
    if (this.baseline?.key === key) return this.baseline.value;
    const value = this.loadBaseline(nowMs - DAY_MS);
    const entry = { key, value };
    this.baseline = entry;
    // A failed read is not kept: the next /usage asks again.
    value.catch(() => { if (this.baseline === entry) this.baseline = null; });
    return value;
  }

  private async loadBaseline(dayAgo: number): Promise<GrowthBaseline | null> {
    const found = await this.history.baselineAt(dayAgo);
    if (!found) return null;
    return { hourMs: found.hourMs, totalBytes: found.totalBytes, bytesOf: (tenant) => found.bytes.get(tenant) ?? 0 };
  }
}
