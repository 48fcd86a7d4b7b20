import { EventEmitter } from 'node:events';
import os from 'node:os';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Logger } from '../logger.js';
import type { Storage } from '../storage/storage.js';
import type { ClusterLock, MetadataIndex, RunRecord } from '../index/index.js';
import type { AccessTimes } from '../index/access-times.js';
import type { DiskGuard } from '../disk/disk-guard.js';
import type { Classifier } from '../classes.js';
import { parseName } from '../names.js';
import { removeFiles } from '../remove-file.js';
import type { RetiredNames } from '../retired-names.js';
import { acquireEvictionLock, lockHolder, LockHeldError, type LockHolder } from './lock.js';
import type { EvictionReport, EvictionRun, RunFilter } from './report.js';
import type { Victim } from './select-victims.js';
import { Planner } from './plan.js';
import { summarize, type RunRequest, type RunSummary } from './run.js';

export type { RunReason, RunRequest, RunSummary, GroupSummary } from './run.js';

/** Unlinks in flight at once within a batch. */
const REMOVE_CONCURRENCY = 16;

export interface EvictorDeps {
  storage: Storage;
  index: Pick<MetadataIndex, 'files' | 'totals' | 'candidates' | 'runs' | 'eviction'>;
  access: AccessTimes;
  guard: DiskGuard;
  classifier: Classifier;
  logger: Logger;
  now: () => number;
  dataDir: string;
  /** Retires the pub names a run removes, and drops those past their retention (src/retired-names.ts). */
  retired?: Pick<RetiredNames, 'retireAt' | 'prune'>;
  /** Files per select/delete batch; the loop yields between batches. */
  batchSize?: number;
}

/**
 * The one eviction runner (docs/design.md §7): the schedule, the watermark trigger,
 * POST /admin/evict, the cleanup command and tenant quotas at admission all
 * call run(). It plans with selectVictims over batches of candidates, then
 * deletes in batches (file first, then index row), yielding between them.
 */
export class Evictor extends EventEmitter<{ run: [RunSummary, boolean] }> implements EvictionReport {
  private readonly planner: Planner;
  private readonly batchSize: number;
  private current: { controller: AbortController; done: Promise<unknown>; sinceMs: number } | undefined;
  /** The last run of this process, kept in memory too: a failure on a full disk may not reach the run log. */
  private lastHere: EvictionRun | null = null;
  private admissionChain: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: EvictorDeps) {
    super();
    this.batchSize = deps.batchSize ?? 500;
    this.planner = new Planner({ ...deps, totals: deps.index.totals, candidates: deps.index.candidates, batchSize: this.batchSize });
  }

  /** The last real run (or the last that removed files, or that succeeded), of this process or another one (from the index), for /usage. */
  async lastRun(filter: RunFilter = 'any'): Promise<EvictionRun | null> {
    let logged: EvictionRun | null = null;
    try {
      const run = await this.deps.index.runs.last(filter);
      logged = run && toEvictionRun(run);
    } catch { /* the index is unreadable: what this process knows */ }
    const here = this.lastHere && matches(this.lastHere, filter) ? this.lastHere : null;
    if (here && (!logged || here.at > logged.at)) return here;
    return logged;
  }

  /** Who holds the cross-process eviction lock (this process or another one; on a shared index, any node), null when free. */
  async lockHolder(): Promise<LockHolder | null> {
    const here = await lockHolder(this.deps.dataDir);
    if (here || !this.deps.index.eviction) return here;
    return this.deps.index.eviction.holder().catch(() => null);
  }

  /** The last `limit` real runs, newest first (status page). */
  async recentRuns(limit: number): Promise<EvictionRun[]> {
    return (await this.deps.index.runs.recent(limit)).map(toEvictionRun);
  }

  /** Calls `listener` after each real run of this process (metrics). */
  onRun(listener: (run: EvictionRun) => void): void {
    this.on('run', (summary, logged) => {
      if (summary.dryRun) return;
      listener({
        at: Date.parse(summary.at), files: summary.files, bytes: summary.bytes, durationMs: summary.durationMs,
        reason: summary.reason, error: summary.error, byReason: byReasonOf(summary), logged,
      });
    });
  }

  /** Resolves when the exclusive run in progress (if any) has ended. */
  async idle(): Promise<void> {
    await this.current?.done.catch(() => undefined);
  }

  /** Runs once. Throws LockHeldError when another exclusive run holds the lock. */
  async run(request: RunRequest): Promise<RunSummary> {
    if (request.exclusive === false) {
      const next = this.admissionChain.then(() => this.execute(request, new AbortController().signal));
      this.admissionChain = next.catch(() => undefined);
      return next;
    }
    if (this.current) throw new LockHeldError({ pid: process.pid, sinceMs: this.current.sinceMs });
    const controller = new AbortController();
    const run = async () => {
      const lock = request.dryRun ? null : await acquireEvictionLock(this.deps.dataDir);
      let clusterLock: ClusterLock | null = null;
      try {
        // On an index several nodes share, one run at a time in the whole cluster (docs/design.md §15).
        const cluster = this.deps.index.eviction;
        if (lock && cluster) {
          clusterLock = await cluster.tryLock({ host: os.hostname(), pid: process.pid });
          if (!clusterLock) throw new LockHeldError(await cluster.holder().catch(() => null));
        }
        return await this.execute(request, controller.signal);
      } finally {
        await clusterLock?.release();
        lock?.release();
      }
    };
    const done = run().finally(() => { this.current = undefined; });
    this.current = { controller, done, sinceMs: Date.now() };
    return done;
  }

  /**
   * Records a run that could not start (the lock held too long, an error
   * before planning) as a failed run: counted in the metrics, shown in
   * /usage and its alerts like any failed run.
   */
  recordFailure(reason: RunRequest['reason'], error: string): Promise<RunSummary> {
    return this.finish({ reason }, this.deps.now(), 0, [], 0, error);
  }

  /** Aborts the run in progress (between batches) and waits for it. */
  async close(): Promise<void> {
    this.current?.controller.abort(new Error('node shutting down'));
    await this.idle();
    await this.admissionChain;
  }

  private async execute(request: RunRequest, signal: AbortSignal): Promise<RunSummary> {
    const { deps } = this;
    const atMs = deps.now();
    const started = performance.now();
    let removed: Victim[] = [];
    let failed = 0;
    let error: string | null = null;
    try {
      const victims = await this.planner.plan(request, atMs, signal);
      if (request.dryRun) removed = victims;
      else ({ removed, failed, error } = await this.remove(victims, request, signal));
    } catch (err) {
      error = (err as Error).message;
    }
    if (!request.dryRun && request.reason !== 'admission') await this.pruneRetired();
    return this.finish(request, atMs, performance.now() - started, removed, failed, error);
  }

  /** Retired names past their retention go with the pass (docs/design.md §2); a failure here is only logged. */
  private async pruneRetired(): Promise<void> {
    try {
      const dropped = await this.deps.retired?.prune();
      if (dropped) this.deps.logger.debug('retired names past their retention dropped', { names: dropped });
    } catch (err) {
      this.deps.logger.warn('could not drop retired names past their retention', { error: (err as Error).message });
    }
  }

  /** Logs, records and announces a run (real or dry). */
  private async finish(request: RunRequest, atMs: number, durationMs: number, removed: Victim[], failed: number, error: string | null): Promise<RunSummary> {
    const { deps } = this;
    const summary = summarize(request, atMs, durationMs, removed, failed, error);
    const level = error ? 'error' : summary.files > 0 ? 'info' : 'debug';
    deps.logger.log(level, 'eviction run', {
      reason: summary.reason, dryRun: summary.dryRun, files: summary.files, bytes: summary.bytes, failed,
      durationMs: Math.round(summary.durationMs), error, groups: summary.groups.slice(0, 20),
    });
    let logged = false;
    if (!request.dryRun) {
      this.lastHere = { at: atMs, files: summary.files, bytes: summary.bytes, durationMs: summary.durationMs, reason: request.reason, error };
      try {
        await deps.index.runs.record({
          atMs, reason: request.reason, files: summary.files, bytes: summary.bytes, durationMs: summary.durationMs, error, byReason: byReasonOf(summary),
        });
        logged = true;
      } catch (err) {
        deps.logger.warn('could not record the eviction run', { error: (err as Error).message });
      }
    }
    this.emit('run', summary, logged);
    return summary;
  }

  /** Deletes in batches (src/remove-file.ts: files first, then their index rows at once); yields between batches. */
  private async remove(victims: Victim[], request: RunRequest, signal: AbortSignal): Promise<{ removed: Victim[]; failed: number; error: string | null }> {
    const { deps, batchSize } = this;
    const removed: Victim[] = [];
    let failed = 0;
    let error: string | null = null;
    for (let i = 0; i < victims.length; i += batchSize) {
      if (signal.aborted) throw signal.reason;
      // A read since planning saves a file chosen for being idle or least recently used.
      const batch = victims.slice(i, i + batchSize).filter((victim) =>
        victim.reason === 'expired' || victim.reason === 'max-age' || (deps.access.get(victim.name) ?? 0) <= victim.accessedMs);
      const outcomes = await removeFiles({ ...deps, files: deps.index.files }, batch.map((victim) => parseName(victim.name)), REMOVE_CONCURRENCY);
      // In plan order, whatever order the removals finished in.
      outcomes.forEach((outcome, k) => {
        if (outcome.ok) { removed.push(batch[k]); return; }
        failed++;
        error ??= `${outcome.name}: ${outcome.error.message}`;
      });
      request.onProgress?.({ phase: 'delete', done: Math.min(i + batchSize, victims.length), total: victims.length });
      await yieldToLoop();
    }
    return { removed, failed, error };
  }
}

function toEvictionRun(run: RunRecord): EvictionRun {
  return { at: run.atMs, files: run.files, bytes: run.bytes, durationMs: run.durationMs, reason: run.reason, error: run.error };
}

function matches(run: EvictionRun, filter: RunFilter): boolean {
  return filter === 'any' || (filter === 'removed' ? run.files > 0 : run.error === null);
}

/** Files and bytes removed per eviction reason. */
function byReasonOf(summary: RunSummary): Record<string, { files: number; bytes: number }> {
  const byReason: Record<string, { files: number; bytes: number }> = {};
  for (const v of summary.victims) {
    const entry = (byReason[v.reason] ??= { files: 0, bytes: 0 });
    entry.files++;
    entry.bytes += v.size;
  }
  return byReason;
}
