import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { Logger } from '../logger.js';
import type { EvictionReport } from '../eviction/report.js';
import { NodeMetrics } from './metrics.js';
import { RefusalLog } from './refusal-log.js';
import { UsageHistory } from './usage-history.js';
import { UsageReporter, type UsageReport, type UsageReporterDeps } from './usage-report.js';
import { UploadSizes } from './upload-sizes.js';
import { RunLogFollower } from './run-log.js';
import type { UploadObserver, UploadOutcome } from '../upload/uploader.js';
import type { LedgerObserver, TenantLimit } from '../accounting/ledger.js';
import { TenantRefusals } from './tenant-refusals.js';

export interface MonitoringDeps extends Omit<UsageReporterDeps, 'history' | 'refusals' | 'uploadSizes' | 'tenantRefusals'> {
  logger: Logger;
  /** A clustered worker's /usage and /metrics: the primary's, for the node as a whole (src/cluster/). */
  nodeView?: NodeView;
}

/** /usage and /metrics of the whole node, whichever process answers. */
export interface NodeView {
  usage(): Promise<UsageReport>;
  metrics(now: { ready: boolean }): Promise<string>;
}

/**
 * The monitoring parts of a node: the /usage reporter, the /metrics registry,
 * the usage history and its sampling timer. It observes the Uploader: counters
 * for /metrics, upload sizes for /usage's "writable".
 */
export class Monitoring implements UploadObserver, LedgerObserver {
  readonly refusals: RefusalLog;
  readonly tenantRefusals: TenantRefusals;
  readonly uploadSizes: UploadSizes;
  readonly history: UsageHistory;
  readonly usage: UsageReporter;
  readonly metrics: NodeMetrics;
  /** Counts every eviction run in the shared log, this node's and other processes', once. */
  readonly runLog: RunLogFollower;
  private timers: NodeJS.Timeout[] = [];

  constructor(private readonly deps: MonitoringDeps) {
    this.refusals = new RefusalLog(deps.now);
    this.uploadSizes = new UploadSizes(deps.now);
    this.tenantRefusals = new TenantRefusals(deps.now);
    this.history = new UsageHistory(deps.index.history);
    this.usage = new UsageReporter({ ...deps, history: this.history, refusals: this.refusals, uploadSizes: this.uploadSizes, tenantRefusals: this.tenantRefusals });
    this.metrics = new NodeMetrics(this.refusals, { clusterScope: deps.clusterInflight !== undefined });
    this.runLog = new RunLogFollower(deps.index.runs, (run) => this.metrics.loggedRun(run));
  }

  /** The /usage document of the node. */
  usageReport(): Promise<UsageReport> {
    return this.deps.nodeView ? this.deps.nodeView.usage() : this.usage.build();
  }

  /** The /metrics text: the run log read up to now first, so a run that ended before the scrape is in the counters. */
  async renderMetrics(now: { ready: boolean }): Promise<string> {
    if (this.deps.nodeView) return this.deps.nodeView.metrics(now);
    await this.runLog.catchUp().catch((err: unknown) => this.deps.logger.warn('reading the eviction run log failed', { error: (err as Error).message }));
    return this.metrics.render(await this.usage.build(), now);
  }

  /** The primary's metrics with the gauges of this instant, for aggregating with its workers' (src/cluster/). */
  async metricsJson(now: { ready: boolean }): Promise<MetricObjectWithValues<MetricValue<string>>[]> {
    await this.runLog.catchUp().catch((err: unknown) => this.deps.logger.warn('reading the eviction run log failed', { error: (err as Error).message }));
    this.metrics.update(await this.usage.build(), now);
    return this.metrics.registry.getMetricsAsJSON();
  }

  uploadFinished(outcome: UploadOutcome, code?: string): void {
    this.metrics.uploadFinished(outcome, code);
  }

  /** A tenant limit refused an upload (429). */
  throttled(tenant: string, limit: TenantLimit, value: string): void {
    this.tenantRefusals.throttled(tenant, `limits.tenant.${limit}: ${value}`);
    this.metrics.tenantThrottled(limit);
  }

  /** A tenant's class quota refused an upload (507 quota_exceeded). */
  quotaRefused(tenant: string, cls: string): void {
    this.tenantRefusals.quotaRefused(tenant);
    this.metrics.quotaRefused(cls);
  }

  uploadSized(bytes: number): void {
    this.uploadSizes.note(bytes);
  }

  /** Eviction reports its runs: counters, lastEviction, "eviction failed" alert. */
  attachEviction(eviction: EvictionReport): void {
    this.usage.attachEviction(eviction);
    eviction.onRun((run) => this.metrics.evictionFinished(run));
  }

  /** The eviction schedule's next run, for /usage `eviction.nextRunAt`. */
  attachSchedule(nextRun: () => Date | null): void {
    this.usage.attachSchedule(nextRun);
  }

  /** Records one used-space sample (and, once an hour, per-tenant totals) into the index. */
  async sample(): Promise<void> {
    const snap = await this.deps.guard.refresh();
    if (snap.totalBytes > 0) await this.history.record(this.deps.now(), snap.usedBytes);
  }

  /** Samples now and every `intervalMs`; reads the run log every `runLogMs` (runs stay in it at least 10 minutes). */
  start(intervalMs = 60_000, runLogMs = 10_000): void {
    const tick = () => {
      this.sample().catch((err: unknown) => this.deps.logger.warn('usage sample failed', { error: (err as Error).message }));
    };
    const follow = () => {
      this.runLog.catchUp().catch((err: unknown) => this.deps.logger.warn('reading the eviction run log failed', { error: (err as Error).message }));
    };
    tick();
    this.timers = [setInterval(tick, intervalMs), setInterval(follow, runLogMs)];
    for (const timer of this.timers) timer.unref();
  }

  stop(): void {
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
  }
}
