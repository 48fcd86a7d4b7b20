import path from 'node:path';
import type { Config } from '../config/schema.js';
import type { DiskGuard, DiskState } from '../disk/disk-guard.js';
import type { Classifier } from '../classes.js';
import type { MetadataIndex } from '../index/index.js';
import type { Storage } from '../storage/storage.js';
import { alertList, DEFAULT_ALERT_POLICY, type Alert, type AlertPolicy } from './alerts.js';
import type { EvictionReport, EvictionRun } from '../eviction/report.js';
import { fitFillRate, type FillRate, type FillRateOptions } from './fill-rate.js';
import type { RefusalLog, WriteCounts } from './refusal-log.js';
import type { UsageHistory } from './usage-history.js';
import type { UploadSizes } from './upload-sizes.js';
import type { TenantRefusals, TenantRefusalCounts } from './tenant-refusals.js';
import type { TenantInflight } from '../accounting/ledger.js';
import { formatBytes } from '../config/units.js';

/** Without upload history (or with tiny uploads), a node with less headroom than this is not writable (one small document). */
export const TYPICAL_UPLOAD_FLOOR = 64 * 1024;

/** One eviction run as /usage shows it. */
export interface RunView { at: string; files: number; bytes: number; durationMs: number; reason: string; error: string | null }

/** The GET /usage document (docs/design.md §8). */
export interface UsageReport {
  disk: {
    path: string; totalBytes: number; freeBytes: number; usedBytes: number; usedPercent: number; reserveBytes: number;
    highWatermarkPercent: number; lowWatermarkPercent: number;
  };
  status: DiskState;
  /** What one more upload may use now: free − reserve − what uploads in flight hold. */
  headroomBytes: number;
  /** False when an upload of typical size would be refused now (disk critical, or headroom below it). */
  writable: boolean;
  /** Why not writable; null when writable. */
  writableReason: string | null;
  /** The median declared size of the last hour's uploads, at least TYPICAL_UPLOAD_FLOOR; what "writable" tests. */
  typicalUploadBytes: number;
  inflight: { uploads: number; reservedBytes: number };
  tmp: { files: number; bytes: number; oldestSeconds: number | null };
  classes: { class: string; files: number; bytes: number; quotaBytes: number | null }[];
  /**
   * The top usage.topTenants tenants by stored bytes, then (up to as many
   * again) tenants throttled or refused by their quota in the last 24 h.
   */
  tenants: {
    tenant: string; files: number; bytes: number; growth24hBytes: number | null;
    /**
     * Per class the tenant stores in or uploads to: files, bytes, bytes held
     * by its uploads in flight, and the class's maxBytesPerTenant (null: no quota).
     */
    classes: { class: string; files: number; bytes: number; inflightBytes: number; quotaBytes: number | null }[];
    /** Uploads in flight and the disk bytes they hold. */
    inflight: { uploads: number; bytes: number };
    /** 429 rate_limited by a limits.tenant limit. */
    throttled: { last15m: number; last24h: number };
    /** 507 quota_exceeded. */
    quotaRefused: { last15m: number; last24h: number };
    /** The limit of its last throttling, e.g. "limits.tenant.uploadsPerMinute: 100 uploads per minute". */
    lastLimit: string | null;
  }[];
  fillRate: FillRate;
  /** The last eviction run that removed files (any process): an empty scheduled run after it does not hide it. */
  lastEviction: RunView | null;
  /** The last eviction run of any kind (any process), also one that removed nothing or failed. */
  lastRun: RunView | null;
  /** The last `nanocdn scrub` run (recorded in the index), null before the first. */
  scrub: { at: string; durationMs: number; files: number; bytes: number; corrupt: number; missing: number; quarantined: number } | null;
  /** Uploads and refusals of this process over 15 min and 24 h. */
  writes: { last15m: WriteCounts; last24h: WriteCounts };
  /** The last runs (any process), the next scheduled one, the lock holder. */
  eviction: {
    runs: RunView[];
    nextRunAt: string | null;
    /** When the last run without an error started (any process); null before the first. */
    lastSuccessAt: string | null;
    /** The process holding the eviction lock (a run in progress, here or in another process), null when free. */
    lockHolderPid: number | null;
    /** How long it has held it. */
    lockSinceSeconds: number | null;
  };
  alerts: string[];
  /** The alerts with their severity, in the same order: critical first. */
  alertDetails: Alert[];
}

export interface UsageReporterDeps {
  config: Config;
  guard: DiskGuard;
  storage: Storage;
  /** The index: totals per class and tenant, usage history, the eviction and scrub run logs. */
  index: Pick<MetadataIndex, 'totals' | 'history' | 'runs' | 'scrubs'>;
  classifier: Classifier;
  history: UsageHistory;
  refusals: RefusalLog;
  uploadSizes: UploadSizes;
  tenantRefusals: TenantRefusals;
  /** A tenant's uploads in flight (the ledger). */
  inflightOf?: (tenant: string) => TenantInflight;
  inflightUploads: () => number;
  /** Disk bytes of spare holds (a clustered node's primary): free for any upload, so shown as headroom, not as held. */
  spareBytes?: () => number;
  /**
   * On an index several nodes share: the uploads in flight of the cluster
   * (the holds of live nodes), so /usage reads the same on every node
   * (docs/design.md §15); they replace inflightUploads and inflightOf.
   */
  clusterInflight?: (nowMs: number, tenant?: string) => Promise<TenantInflight>;
  now: () => number;
  fillRate?: FillRateOptions;
  alertPolicy?: AlertPolicy;
}

const FILL_WINDOW_MS = 6 * 3_600_000;
const MINUTE_MS = 60_000;
/** Eviction runs listed in /usage `eviction.runs`. */
const RECENT_RUNS = 5;

/**
 * Builds /usage from what is already counted: the disk guard's snapshot, the
 * tmp dir (small), the index totals and the usage history.
 * Never walks files/, so it is cheap at any file count.
 */
export class UsageReporter {
  private eviction: EvictionReport | null = null;

  private nextScheduledRun: () => Date | null = () => null;

  constructor(private readonly deps: UsageReporterDeps) {}

  /** Eviction reports its runs here once the engine exists. */
  attachEviction(eviction: EvictionReport): void {
    this.eviction = eviction;
  }

  /** The eviction schedule tells when it fires next. */
  attachSchedule(nextRun: () => Date | null): void {
    this.nextScheduledRun = nextRun;
  }

  async build(): Promise<UsageReport> {
    const { deps } = this;
    const snap = await deps.guard.refresh();
    // Read with the snapshot: spares come and go while the rest is gathered.
    const snapSpareBytes = deps.spareBytes?.() ?? 0;
    const now = deps.now();
    const tmpStats = await deps.storage.tmpStats(now);
    const tmp = { files: tmpStats.files, bytes: tmpStats.bytes, oldestSeconds: tmpStats.oldestAgeMs === null ? null : Math.round(tmpStats.oldestAgeMs / 1000) };

    const stored = new Map((await deps.index.totals.byClass()).map((row) => [row.class, row]));
    const classNames = new Set([...deps.classifier.classes.keys(), ...stored.keys()]);
    const classes = [...classNames].map((name) => ({
      class: name, files: stored.get(name)?.files ?? 0, bytes: stored.get(name)?.bytes ?? 0,
      quotaBytes: deps.classifier.classes.get(name)?.maxBytes ?? null,
    }));

    const baseline = await deps.history.growthBaseline(now);
    const top = await deps.index.totals.topTenants(deps.config.usage.topTenants);
    const refusals = new Map(deps.tenantRefusals.rows().map((row) => [row.tenant, row]));
    const listed = new Set(top.map((row) => row.tenant));
    // Throttled or refused tenants are named even when they store little: a retry storm of refusals stores nothing.
    const extra = [...refusals.keys()].filter((tenant) => !listed.has(tenant)).slice(0, deps.config.usage.topTenants);
    const rows = [...top, ...extra.map((tenant) => ({ tenant, files: 0, bytes: 0, fromRefusals: true }))];
    const tenants = await Promise.all(rows.map(async (row) => {
      const stored = await deps.index.totals.ofTenant(row.tenant);
      const inflight = deps.clusterInflight ? await deps.clusterInflight(now, row.tenant) : deps.inflightOf?.(row.tenant) ?? { uploads: 0, bytes: 0, byClass: {} };
      const classNames = new Set([...stored.map((c) => c.class), ...Object.keys(inflight.byClass)]);
      const counts = refusals.get(row.tenant) ?? deps.tenantRefusals.row(row.tenant);
      const files = 'fromRefusals' in row ? stored.reduce((sum, c) => sum + c.files, 0) : row.files;
      const bytes = 'fromRefusals' in row ? stored.reduce((sum, c) => sum + c.bytes, 0) : row.bytes;
      return {
        tenant: row.tenant, files, bytes, growth24hBytes: baseline ? bytes - baseline.bytesOf(row.tenant) : null,
        classes: [...classNames].map((name) => {
          const c = stored.find((s) => s.class === name);
          return {
            class: name, files: c?.files ?? 0, bytes: c?.bytes ?? 0, inflightBytes: inflight.byClass[name] ?? 0,
            quotaBytes: deps.classifier.classes.get(name)?.maxBytesPerTenant ?? null,
          };
        }),
        inflight: { uploads: inflight.uploads, bytes: inflight.bytes },
        throttled: pick(counts.last15m, counts.last24h, 'throttled'),
        quotaRefused: pick(counts.last15m, counts.last24h, 'refused'),
        lastLimit: counts.lastLimit,
      };
    }));
    // All stored bytes are the sum of the per-class rows already read: no second query.
    const storedBytes = [...stored.values()].reduce((sum, row) => sum + row.bytes, 0);
    const totalGrowth24hBytes = baseline ? storedBytes - baseline.totalBytes : null;

    const samples = await deps.history.samplesSince(now - FILL_WINDOW_MS);
    samples.push({ atMs: now, usedBytes: snap.usedBytes });
    const fillRate = fitFillRate(samples, snap.freeBytes - snap.reserveBytes, { windowMs: FILL_WINDOW_MS, ...deps.fillRate });

    const run = (await this.eviction?.lastRun('any')) ?? null;
    const removing = (await this.eviction?.lastRun('removed')) ?? null;
    const success = (await this.eviction?.lastRun('succeeded')) ?? null;
    const scrub = await deps.index.scrubs.last().catch(() => null);
    const holder = (await this.eviction?.lockHolder().catch(() => null)) ?? null;
    const alerts = alertList({
      nowMs: now,
      disk: snap,
      highWatermarkPercent: deps.config.disk.highWatermarkPercent,
      lowWatermarkPercent: deps.config.disk.lowWatermarkPercent,
      fillRate, tenants, totalGrowth24hBytes,
      throttledTenants: [...refusals.values()].map((r) => ({ tenant: r.tenant, throttled15m: r.last15m.throttled, limit: r.lastLimit })),
      refusals: deps.refusals.recent(),
      tmp,
      tmpMaxAgeMs: deps.config.eviction.tmpMaxAge,
      lastEviction: run,
      scrub: scrub && { at: scrub.atMs, bad: scrub.corrupt + scrub.missing, quarantined: scrub.quarantined },
    }, deps.alertPolicy ?? DEFAULT_ALERT_POLICY);

    const cluster = deps.clusterInflight ? await deps.clusterInflight(now) : null;
    const headroomBytes = deps.guard.headroomBytes() + (deps.spareBytes?.() ?? 0);
    const median = deps.uploadSizes.median();
    const typicalUploadBytes = Math.max(median ?? 0, TYPICAL_UPLOAD_FLOOR);
    const writableReason = snap.state === 'critical'
      ? `disk critical: ${formatBytes(snap.freeBytes)} free is inside the ${formatBytes(snap.reserveBytes)} reserve; uploads are refused`
      : headroomBytes < typicalUploadBytes
        ? `${formatBytes(headroomBytes)} of headroom above the ${formatBytes(snap.reserveBytes)} reserve is less than a typical upload ` +
          `(${formatBytes(typicalUploadBytes)}, ${median === null || median < TYPICAL_UPLOAD_FLOOR ? 'the floor' : "the median of the last hour's uploads"}): most uploads get 507`
        : null;

    if (writableReason !== null && snap.state !== 'critical') alerts.unshift({ severity: 'critical', text: `not writable: ${writableReason}` });

    return {
      disk: {
        path: deps.guard.path ?? path.resolve(deps.config.dataDir), totalBytes: snap.totalBytes, freeBytes: snap.freeBytes, usedBytes: snap.usedBytes,
        usedPercent: Number(snap.usedPercent.toFixed(2)), reserveBytes: snap.reserveBytes,
        highWatermarkPercent: deps.config.disk.highWatermarkPercent, lowWatermarkPercent: deps.config.disk.lowWatermarkPercent,
      },
      status: snap.state,
      headroomBytes,
      writable: writableReason === null,
      writableReason,
      typicalUploadBytes,
      inflight: cluster ? { uploads: cluster.uploads, reservedBytes: cluster.bytes } : { uploads: deps.inflightUploads(), reservedBytes: snap.reservedBytes - snapSpareBytes },
      tmp,
      classes,
      tenants,
      fillRate,
      lastEviction: removing && runView(removing),
      lastRun: run && runView(run),
      scrub: scrub && {
        at: new Date(scrub.atMs).toISOString(), durationMs: scrub.durationMs, files: scrub.files, bytes: scrub.bytes,
        corrupt: scrub.corrupt, missing: scrub.missing, quarantined: scrub.quarantined,
      },
      writes: { last15m: deps.refusals.writes(15 * MINUTE_MS), last24h: deps.refusals.writes(24 * 60 * MINUTE_MS) },
      eviction: {
        runs: ((await this.eviction?.recentRuns(RECENT_RUNS)) ?? []).map(runView),
        nextRunAt: this.nextScheduledRun()?.toISOString() ?? null,
        lastSuccessAt: success && new Date(success.at).toISOString(),
        lockHolderPid: holder?.pid ?? null,
        lockSinceSeconds: holder && Math.max(0, Math.round((Date.now() - holder.sinceMs) / 1000)),
      },
      alerts: alerts.map((alert) => alert.text),
      alertDetails: alerts,
    };
  }
}

function pick(last15m: TenantRefusalCounts, last24h: TenantRefusalCounts, kind: keyof TenantRefusalCounts): { last15m: number; last24h: number } {
  return { last15m: last15m[kind], last24h: last24h[kind] };
}

function runView(run: EvictionRun): RunView {
  return { at: new Date(run.at).toISOString(), files: run.files, bytes: run.bytes, durationMs: run.durationMs, reason: run.reason, error: run.error };
}
