import path from 'node:path';
import type { Config } from '../config/schema.js';
import type { DiskGuard, DiskState } from '../disk/disk-guard.js';
import type { Classifier } from '../classes.js';
import type { MetadataIndex } from '../index/index.js';
import type { Storage } from '../storage/storage.js';
import { alertList, DEFAULT_ALERT_POLICY, type Alert, type AlertPolicy } from './alerts.js';
import type { EvictionReport } from '../eviction/report.js';
import { fitFillRate, type FillRate, type FillRateOptions } from './fill-rate.js';
import type { RefusalLog, WriteCounts } from './refusal-log.js';
import type { UsageHistory } from './usage-history.js';
import type { UploadSizes } from './upload-sizes.js';
import { formatBytes } from '../config/units.js';

/** Without upload history (or with tiny uploads), a node with less headroom than this is not writable (one small document). */
export const TYPICAL_UPLOAD_FLOOR = 64 * 1024;

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
  tenants: {
    tenant: string; files: number; bytes: number; growth24hBytes: number | null;
    /** Per class the tenant stores in: files, bytes and the class's maxBytesPerTenant (null: no quota). */
    classes: { class: string; files: number; bytes: number; quotaBytes: number | null }[];
  }[];
  fillRate: FillRate;
  lastEviction: { at: string; files: number; bytes: number; durationMs: number; reason: string; error: string | null } | null;
  /** Uploads and refusals of this process over 15 min and 24 h. */
  writes: { last15m: WriteCounts; last24h: WriteCounts };
  /** The last runs (any process), the next scheduled one, the lock holder. */
  eviction: {
    runs: { at: string; reason: string; files: number; bytes: number; durationMs: number; error: string | null }[];
    nextRunAt: string | null;
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
  /** The index: totals per class and tenant, usage history. */
  index: Pick<MetadataIndex, 'totals' | 'history'>;
  classifier: Classifier;
  history: UsageHistory;
  refusals: RefusalLog;
  uploadSizes: UploadSizes;
  inflightUploads: () => number;
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
    const tenants = await Promise.all((await deps.index.totals.topTenants(deps.config.usage.topTenants)).map(async (row) => ({
      ...row, growth24hBytes: baseline ? row.bytes - baseline.bytesOf(row.tenant) : null,
      classes: (await deps.index.totals.ofTenant(row.tenant)).map((c) => ({
        ...c, quotaBytes: deps.classifier.classes.get(c.class)?.maxBytesPerTenant ?? null,
      })),
    })));
    // All stored bytes are the sum of the per-class rows already read: no second query.
    const storedBytes = [...stored.values()].reduce((sum, row) => sum + row.bytes, 0);
    const totalGrowth24hBytes = baseline ? storedBytes - baseline.totalBytes : null;

    const samples = await deps.history.samplesSince(now - FILL_WINDOW_MS);
    samples.push({ atMs: now, usedBytes: snap.usedBytes });
    const fillRate = fitFillRate(samples, snap.freeBytes - snap.reserveBytes, { windowMs: FILL_WINDOW_MS, ...deps.fillRate });

    const run = (await this.eviction?.lastRun()) ?? null;
    const holder = (await this.eviction?.lockHolder().catch(() => null)) ?? null;
    const alerts = alertList({
      nowMs: now,
      disk: snap,
      highWatermarkPercent: deps.config.disk.highWatermarkPercent,
      lowWatermarkPercent: deps.config.disk.lowWatermarkPercent,
      fillRate, tenants, totalGrowth24hBytes,
      refusals: deps.refusals.recent(),
      tmp,
      tmpMaxAgeMs: deps.config.eviction.tmpMaxAge,
      lastEviction: run,
    }, deps.alertPolicy ?? DEFAULT_ALERT_POLICY);

    const headroomBytes = deps.guard.headroomBytes();
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
      inflight: { uploads: deps.inflightUploads(), reservedBytes: snap.reservedBytes },
      tmp,
      classes,
      tenants,
      fillRate,
      lastEviction: run && {
        at: new Date(run.at).toISOString(), files: run.files, bytes: run.bytes, durationMs: run.durationMs, reason: run.reason, error: run.error,
      },
      writes: { last15m: deps.refusals.writes(15 * MINUTE_MS), last24h: deps.refusals.writes(24 * 60 * MINUTE_MS) },
      eviction: {
        runs: ((await this.eviction?.recentRuns(RECENT_RUNS)) ?? []).map((r) => ({
          at: new Date(r.at).toISOString(), reason: r.reason, files: r.files, bytes: r.bytes, durationMs: r.durationMs, error: r.error,
        })),
        nextRunAt: this.nextScheduledRun()?.toISOString() ?? null,
        lockHolderPid: holder?.pid ?? null,
        lockSinceSeconds: holder && Math.max(0, Math.round((Date.now() - holder.sinceMs) / 1000)),
      },
      alerts: alerts.map((alert) => alert.text),
      alertDetails: alerts,
    };
  }
}
