import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { UploadObserver, UploadOutcome } from '../upload/uploader.js';
import type { EvictionRun } from '../eviction/report.js';
import type { LoggedRun } from '../index/index.js';
import type { RefusalLog } from './refusal-log.js';
import type { UsageReport } from './usage-report.js';
import { VERSION } from '../package-root.js';

/** The disk guard's states, one nanocdn_disk_state series each. */
const DISK_STATES = ['ok', 'warning', 'critical'] as const;

/** Route labels of the HTTP duration histogram: a fixed, small set. */
export const ROUTE_LABELS = ['upload', 'download', 'delete', 'usage', 'status', 'metrics', 'health', 'admin', 'other'] as const;
export type RouteLabel = (typeof ROUTE_LABELS)[number];

/** Upload refusals that count as "writes refused" (capacity and limits, not client mistakes). */
const REFUSAL_REASONS = ['insufficient_storage', 'quota_exceeded', 'upload_too_large', 'rate_limited'] as const;

/** The limits of limits.tenant: the one label of nanocdn_tenant_throttled_total (no tenant label: tenant names are unbounded). */
const TENANT_LIMITS = ['uploadsPerMinute', 'bytesPerMinute', 'inflightUploads', 'inflightBytes'] as const;

/**
 * Default process metrics that are gauges with a counter's `_total` suffix: `promtool check metrics`
 * rejects them. The same figures remain, per type, in nodejs_active_handles / _requests / _resources.
 */
const MISNAMED_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/**
 * The /metrics registry (its own, not prom-client's global one). Counters
 * are fed by events (uploads, eviction runs, requests); gauges are set at
 * scrape time from the same UsageReport that /usage answers with.
 */
export class NodeMetrics implements UploadObserver {
  readonly registry = new Registry();
  private readonly gauges;
  private readonly uploads;
  private readonly refused;
  private readonly evictedFiles;
  private readonly evictedBytes;
  private readonly evictionRuns;
  private readonly sendTimeouts;
  private readonly http;
  private readonly connectionsRefused;
  private readonly throttled;
  private readonly quotaRefusals;
  private readonly workerRestarts;
  private readonly spareAdmissions;
  private readonly spareRecalls;

  /** Labels of the gauges that are the cluster's totals on a shared index (`scope="cluster"`), none otherwise. */
  private readonly scope: Record<string, string>;

  /**
   * @param options.clusterScope the node shares its index and store with
   *   other nodes (docs/design.md §15): the gauges of stored, held and free
   *   bytes, tenants, runs and scrubs are the cluster's totals, the same on
   *   every node, and carry `scope="cluster"` so that dashboards take one
   *   node's value (max) instead of summing over instances.
   */
  constructor(private readonly refusals: RefusalLog, options: { clusterScope?: boolean } = {}) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    for (const name of MISNAMED_DEFAULTS) this.registry.removeSingleMetric(name);
    this.scope = options.clusterScope ? { scope: 'cluster' } : {};
    const scopeLabels = Object.keys(this.scope);
    // A clustered node's gauges are set by the primary only (workers export 0 or nothing): the largest is the node's.
    const gauge = (name: string, help: string, labelNames: string[] = []) => new Gauge({ name, help, labelNames, registers, aggregator: 'max' });
    // A gauge whose value is the cluster's on a shared index.
    const total = (name: string, help: string, labelNames: string[] = []) => gauge(name, help, [...labelNames, ...scopeLabels]);
    this.gauges = {
      size: total('nanocdn_disk_size_bytes', 'Size of the filesystem holding the data dir (statfs blocks × bsize).'),
      free: total('nanocdn_disk_free_bytes', 'Bytes a writer can use on the data dir filesystem (statfs bavail × bsize).'),
      reserve: total('nanocdn_disk_reserve_bytes', 'Free space kept in reserve: writes are refused inside it.'),
      reservedInflight: total('nanocdn_disk_reserved_inflight_bytes', 'Bytes reserved by uploads in flight and not yet written.'),
      secondsToFull: total('nanocdn_disk_seconds_to_full', 'Seconds until free space reaches the reserve at the fitted fill rate; +Inf when not filling.'),
      storedBytes: total('nanocdn_stored_bytes', 'Bytes of stored files per storage class.', ['class']),
      storedFiles: total('nanocdn_stored_files', 'Stored files per storage class.', ['class']),
      tenantBytes: total('nanocdn_tenant_stored_bytes', 'Bytes stored per tenant, for the top usage.topTenants tenants only.', ['tenant']),
      tmpFiles: total('nanocdn_tmp_files', 'Entries in the upload spool <data>/tmp.'),
      tmpBytes: gauge('nanocdn_tmp_bytes', 'Bytes in the upload spool <data>/tmp.'),
      tmpOldest: total('nanocdn_tmp_oldest_seconds', 'Age of the oldest entry in <data>/tmp; 0 when empty.'),
      inflight: total('nanocdn_inflight_uploads', 'Uploads being written now.'),
      ready: gauge('nanocdn_ready', 'Whether GET /readyz answers 200 now (1) or 503 (0).'),
      diskState: total('nanocdn_disk_state', 'The disk guard\'s state: 1 for the current one of ok, warning, critical; 0 for the others.', ['state']),
      evictionLastSuccess: total('nanocdn_eviction_last_success_timestamp_seconds', 'When the last eviction run without an error started (any process on this data dir, kept in the run log); 0 before the first.'),
      scrubLastRun: total('nanocdn_scrub_last_run_timestamp_seconds', 'When the last `nanocdn scrub` run started (recorded in the index); 0 before the first.'),
      scrubCorrupt: total('nanocdn_scrub_corrupt_files', 'Files the last `nanocdn scrub` run found bad: size or sha256 not as indexed, unreadable, or missing.'),
    };
    // Which build answers: 1, with the version and the Node.js that runs it as labels.
    gauge('nanocdn_build_info', 'The nanocdn version and Node.js version of this process (always 1).', ['version', 'node'])
      .set({ version: VERSION, node: process.version }, 1);
    this.uploads = new Counter({ name: 'nanocdn_uploads_total', help: 'Finished uploads by result: created, exists, refused, failed.', labelNames: ['result'], registers });
    this.refused = new Counter({ name: 'nanocdn_writes_refused_total', help: 'Uploads refused by capacity or limits, by reason (error code).', labelNames: ['reason'], registers });
    this.evictedFiles = new Counter({ name: 'nanocdn_evicted_files_total', help: 'Files removed by eviction, by reason.', labelNames: ['reason'], registers });
    this.evictedBytes = new Counter({ name: 'nanocdn_evicted_bytes_total', help: 'Bytes removed by eviction, by reason.', labelNames: ['reason'], registers });
    this.sendTimeouts = new Counter({ name: 'nanocdn_send_timeouts_total', help: 'File answers cut because the client took no byte for download.sendTimeout.', registers });
    this.evictionRuns = new Counter({ name: 'nanocdn_eviction_runs_total', help: 'Eviction runs by result: ok or failed.', labelNames: ['result'], registers });
    this.http = new Histogram({
      name: 'nanocdn_http_request_duration_seconds', help: 'HTTP request duration by route and status class.',
      labelNames: ['route', 'status'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300], registers,
    });
    this.connectionsRefused = new Counter({
      name: 'nanocdn_http_connections_refused_total', help: 'Connections closed at accept because http.maxConnections were open.', registers,
    });
    // Which tenant is in /usage and the alert sentence: a tenant label would be unbounded (names come from clients).
    this.throttled = new Counter({
      name: 'nanocdn_tenant_throttled_total', help: 'Uploads refused with 429 rate_limited by a tenant limit, by limit (tenants: see /usage).', labelNames: ['limit'], registers,
    });
    this.quotaRefusals = new Counter({
      name: 'nanocdn_quota_refusals_total', help: 'Uploads refused with 507 quota_exceeded by a tenant quota, by storage class (tenants: see /usage).', labelNames: ['class'], registers,
    });
    this.workerRestarts = new Counter({
      name: 'nanocdn_worker_restarts_total', help: 'Worker processes the primary restarted after they died (workers > 1).', registers,
    });
    this.spareAdmissions = new Counter({
      name: 'nanocdn_spare_admissions_total', help: 'Uploads a worker admitted on a spare hold (its tenant\'s, or a disk spare), without a round trip to the primary first (workers > 1).', registers,
    });
    this.spareRecalls = new Counter({
      name: 'nanocdn_spare_recalls_total', help: 'Times the primary took back every worker\'s spare holds because an upload would otherwise have been refused (workers > 1).', registers,
    });
    // Series exist from the start, so rate() and increase() see the first event.
    for (const result of ['created', 'exists', 'refused', 'failed']) this.uploads.inc({ result }, 0);
    for (const reason of REFUSAL_REASONS) this.refused.inc({ reason }, 0);
    for (const result of ['ok', 'failed']) this.evictionRuns.inc({ result }, 0);
    for (const limit of TENANT_LIMITS) this.throttled.inc({ limit }, 0);
  }

  workerRestarted(): void {
    this.workerRestarts.inc();
  }

  spareAdmitted(): void {
    this.spareAdmissions.inc();
  }

  sparesRecalled(): void {
    this.spareRecalls.inc();
  }

  tenantThrottled(limit: string): void {
    this.throttled.inc({ limit });
  }

  /** Classes come from the config (bounded); a class removed by a reload keeps its series until restart. */
  quotaRefused(cls: string): void {
    this.quotaRefusals.inc({ class: cls });
  }

  uploadFinished(outcome: UploadOutcome, code?: string): void {
    this.uploads.inc({ result: outcome });
    this.refusals.noteUpload(outcome);
    if (outcome === 'refused' && code && (REFUSAL_REASONS as readonly string[]).includes(code)) {
      this.refused.inc({ reason: code });
      this.refusals.note(code);
    }
  }

  connectionRefused(): void {
    this.connectionsRefused.inc();
  }

  /** A run of this process; one that reached the run log is counted by loggedRun() instead. */
  evictionFinished(run: EvictionRun): void {
    if (!run.logged) this.countRun(run);
  }

  /** A run read from the shared run log: of this process or of another one (`nanocdn cleanup`). */
  loggedRun(run: LoggedRun): void {
    this.countRun({ at: run.atMs, files: run.files, bytes: run.bytes, durationMs: run.durationMs, reason: run.reason, error: run.error, byReason: run.byReason });
  }

  private countRun(run: EvictionRun): void {
    this.evictionRuns.inc({ result: run.error ? 'failed' : 'ok' });
    const byReason = run.byReason ?? { [run.reason]: { files: run.files, bytes: run.bytes } };
    for (const [reason, evicted] of Object.entries(byReason)) {
      if (evicted.files > 0) this.evictedFiles.inc({ reason }, evicted.files);
      if (evicted.bytes > 0) this.evictedBytes.inc({ reason }, evicted.bytes);
    }
  }

  /** A file answer was cut by download.sendTimeout. */
  sendTimedOut(): void {
    this.sendTimeouts.inc();
  }

  observeRequest(route: RouteLabel, status: number, seconds: number): void {
    this.http.observe({ route, status: `${Math.floor(status / 100)}xx` }, seconds);
  }

  /** The Prometheus text exposition, gauges set from `report` (the /usage document of this instant). */
  async render(report: UsageReport, now: { ready: boolean } = { ready: true }): Promise<string> {
    this.update(report, now);
    return this.registry.metrics();
  }

  /** Sets the gauges from `report`. */
  update(report: UsageReport, now: { ready: boolean }): void {
    const g = this.gauges;
    const at = (labels: Record<string, string> = {}) => ({ ...labels, ...this.scope });
    g.ready.set(now.ready ? 1 : 0);
    g.size.set(at(), report.disk.totalBytes);
    g.free.set(at(), report.disk.freeBytes);
    g.reserve.set(at(), report.disk.reserveBytes);
    g.reservedInflight.set(at(), report.inflight.reservedBytes);
    g.secondsToFull.set(at(), report.fillRate.hoursToFull === null ? Infinity : report.fillRate.hoursToFull * 3600);
    g.storedBytes.reset();
    g.storedFiles.reset();
    for (const cls of report.classes) {
      g.storedBytes.set(at({ class: cls.class }), cls.bytes);
      g.storedFiles.set(at({ class: cls.class }), cls.files);
    }
    // Only the current top N: a tenant that drops out stops being exported.
    g.tenantBytes.reset();
    for (const t of report.tenants) g.tenantBytes.set(at({ tenant: t.tenant }), t.bytes);
    g.tmpFiles.set(at(), report.tmp.files);
    g.tmpBytes.set(report.tmp.bytes);
    g.tmpOldest.set(at(), report.tmp.oldestSeconds ?? 0);
    g.inflight.set(at(), report.inflight.uploads);
    for (const state of DISK_STATES) g.diskState.set(at({ state }), report.status === state ? 1 : 0);
    g.evictionLastSuccess.set(at(), report.eviction.lastSuccessAt === null ? 0 : Date.parse(report.eviction.lastSuccessAt) / 1000);
    g.scrubLastRun.set(at(), report.scrub === null ? 0 : Date.parse(report.scrub.at) / 1000);
    g.scrubCorrupt.set(at(), report.scrub === null ? 0 : report.scrub.corrupt + report.scrub.missing);
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
