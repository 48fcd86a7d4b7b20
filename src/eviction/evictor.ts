import { EventEmitter } from 'node:events';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Logger } from '../logger.js';
import type { Storage } from '../storage/storage.js';
import type { FileIndex } from '../index/file-index.js';
import type { AccessTimes } from '../index/access-times.js';
import type { DiskGuard } from '../disk/disk-guard.js';
import type { Classifier } from './classes.js';
import { parseName } from '../names.js';
import { CandidateQueries, type Scope } from './candidates.js';
import { acquireEvictionLock, LockHeldError, type HeldLock } from './lock.js';
import { RunLog } from './run-log.js';
import type { EvictionReport, EvictionRun } from '../monitoring/eviction-report.js';
import {
  excessOf, hasExcess, selectVictims, tenantClassKey,
  type Candidate, type ClassRule, type EvictionReason, type Excess, type Victim,
} from './select-victims.js';

/** Unlinks in flight at once within a batch. */
const REMOVE_CONCURRENCY = 16;

/** What started a run. */
export type RunReason = 'schedule' | 'low-disk' | 'admin' | 'cli' | 'admission';

export interface RunRequest {
  reason: RunReason;
  /** Choose and report, delete nothing. Dry runs do not take the lock. */
  dryRun?: boolean;
  scope?: Scope;
  /** Apply the configured per-file rules and size limits (false: only free `freeBytes`). Default true. */
  policies?: boolean;
  /** For this run, instead of the config of the classes in scope (the cleanup command). */
  overrides?: { maxAgeMs?: number; maxIdleMs?: number };
  /** Keep at most this many bytes of evictable files in the scope (least recently used go first). */
  maxBytes?: number;
  /** Bytes to free, least recently used first across the scope (low disk, tenant quota at admission). */
  freeBytes?: number;
  /** Take the in-process and cross-process lock (default true; admission runs serialize among themselves instead). */
  exclusive?: boolean;
  onProgress?: (progress: { phase: 'select' | 'delete'; done: number; total: number | null }) => void;
}

export interface GroupSummary {
  tenant: string;
  class: string;
  files: number;
  bytes: number;
  reasons: Partial<Record<EvictionReason, number>>;
}

export interface RunSummary {
  reason: RunReason;
  dryRun: boolean;
  at: string;
  durationMs: number;
  /** Files and bytes removed (dry run: that would be). */
  files: number;
  bytes: number;
  failed: number;
  error: string | null;
  groups: GroupSummary[];
  victims: { name: string; tenant: string; class: string; size: number; reason: EvictionReason }[];
}

export interface EvictorDeps {
  storage: Storage;
  index: FileIndex;
  access: AccessTimes;
  guard: DiskGuard;
  classifier: Classifier;
  logger: Logger;
  now: () => number;
  dataDir: string;
  /** Files per select/delete batch; the loop yields between batches. */
  batchSize?: number;
}

/**
 * The one eviction runner (DESIGN §4): the schedule, the watermark trigger,
 * POST /admin/evict, the cleanup command and tenant quotas at admission all
 * call run(). It plans with selectVictims over batches of candidates, then
 * deletes in batches (file first, then index row), yielding between them.
 */
export class Evictor extends EventEmitter<{ run: [RunSummary] }> implements EvictionReport {
  private readonly queries: CandidateQueries;
  private readonly runLog: RunLog;
  private readonly batchSize: number;
  private current: { controller: AbortController; done: Promise<unknown> } | undefined;
  private admissionChain: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: EvictorDeps) {
    super();
    this.queries = new CandidateQueries(deps.index.db);
    this.runLog = new RunLog(deps.index.db);
    this.batchSize = deps.batchSize ?? 500;
  }

  /** The last real run, of this process or another one (from the index), for /usage. */
  lastRun(): EvictionRun | null {
    return this.runLog.last();
  }

  /** Calls `listener` after each real run of this process (metrics). */
  onRun(listener: (run: EvictionRun) => void): void {
    this.on('run', (summary) => {
      if (summary.dryRun) return;
      const byReason: Record<string, { files: number; bytes: number }> = {};
      for (const v of summary.victims) {
        const entry = (byReason[v.reason] ??= { files: 0, bytes: 0 });
        entry.files++;
        entry.bytes += v.size;
      }
      listener({
        at: Date.parse(summary.at), files: summary.files, bytes: summary.bytes, durationMs: summary.durationMs,
        reason: summary.reason, error: summary.error, byReason,
      });
    });
  }

  /** True while an exclusive run of this process is going. */
  get busy(): boolean {
    return this.current !== undefined;
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
    if (this.current) throw new LockHeldError(process.pid, 'eviction.lock');
    const lock: HeldLock | null = request.dryRun ? null : acquireEvictionLock(this.deps.dataDir);
    const controller = new AbortController();
    const done = this.execute(request, controller.signal).finally(() => {
      lock?.release();
      this.current = undefined;
    });
    this.current = { controller, done };
    return done;
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
    let victims: Victim[] = [];
    let removed: Victim[] = [];
    let failed = 0;
    let error: string | null = null;
    try {
      victims = await this.plan(request, atMs, signal);
      if (request.dryRun) removed = victims;
      else ({ removed, failed, error } = await this.remove(victims, request, signal));
    } catch (err) {
      error = (err as Error).message;
    }
    const summary = summarize(request, atMs, performance.now() - started, removed, failed, error);
    const level = error ? 'error' : summary.files > 0 ? 'info' : 'debug';
    deps.logger.log(level, 'eviction run', {
      reason: summary.reason, dryRun: summary.dryRun, files: summary.files, bytes: summary.bytes, failed,
      durationMs: Math.round(summary.durationMs), error, groups: summary.groups.slice(0, 20),
    });
    if (!request.dryRun) {
      try {
        this.runLog.record({ atMs, reason: request.reason, files: summary.files, bytes: summary.bytes, durationMs: summary.durationMs, error });
      } catch (err) {
        deps.logger.warn('could not record the eviction run', { error: (err as Error).message });
      }
    }
    this.emit('run', summary);
    return summary;
  }

  /** Rules of the classes, with the run's overrides applied to the classes in scope. */
  private rulesFor(request: RunRequest): Map<string, ClassRule> {
    const rules = new Map<string, ClassRule>();
    for (const cls of this.deps.classifier.classes.values()) {
      const inScope = !request.scope?.class || request.scope.class === cls.name;
      rules.set(cls.name, {
        evictable: cls.evictable,
        maxAgeMs: (inScope ? request.overrides?.maxAgeMs : undefined) ?? cls.maxAge,
        maxIdleMs: (inScope ? request.overrides?.maxIdleMs : undefined) ?? cls.maxIdle,
        maxBytes: cls.maxBytes,
        maxBytesPerTenant: cls.maxBytesPerTenant,
      });
    }
    return rules;
  }

  /** Chooses the victims: per-file rules first, then size limits least recently used first. */
  private async plan(request: RunRequest, now: number, signal: AbortSignal): Promise<Victim[]> {
    const { deps, queries, batchSize } = this;
    const scope = request.scope ?? {};
    const rules = this.rulesFor(request);
    const evictable = [...rules].filter(([name, r]) => r.evictable && (!scope.class || scope.class === name)).map(([name]) => name);
    // Reads not yet flushed must count: flush them, and overlay any that arrive meanwhile.
    deps.access.flush();
    const fresh = (batch: Candidate[]) => batch.map((c) => {
      const pending = deps.access.get(c.name);
      return pending !== undefined && pending > c.accessedMs ? { ...c, accessedMs: pending } : c;
    });
    const chosen = new Map<string, Victim>();
    const progress = () => request.onProgress?.({ phase: 'select', done: chosen.size, total: null });
    const consider = async (batch: Candidate[], excess?: Excess): Promise<Excess | undefined> => {
      if (signal.aborted) throw signal.reason;
      const open = fresh(batch.filter((c) => !chosen.has(c.name)));
      const selection = selectVictims(open, { rules, excess, overallReason: overallReasonOf(request) }, now);
      for (const victim of selection.victims) chosen.set(victim.name, victim);
      progress();
      await yieldToLoop();
      return selection.excess;
    };

    if (request.policies !== false) {
      for (const batch of queries.expired(now, scope, batchSize)) await consider(batch);
      for (const cls of evictable) {
        const rule = rules.get(cls)!;
        if (rule.maxAgeMs === null && rule.maxIdleMs === null) continue;
        const createdBefore = rule.maxAgeMs === null ? Number.MIN_SAFE_INTEGER : now - rule.maxAgeMs;
        const accessedBefore = rule.maxIdleMs === null ? Number.MIN_SAFE_INTEGER : now - rule.maxIdleMs;
        for (const batch of queries.aged(cls, createdBefore, accessedBefore, scope, batchSize)) await consider(batch);
      }
    }

    let excess = this.excessAfter(request, rules, evictable, scope, chosen);
    if (!hasExcess(excess)) return [...chosen.values()];
    const sources = excess.overall > 0 || [...excess.byClass.values()].some((v) => v > 0)
      ? [scope.tenant && scope.class ? queries.tenantLru(scope.tenant, scope.class, batchSize) : queries.globalLru(evictable, scope, batchSize)]
      : [...excess.byTenantClass].filter(([, v]) => v > 0).map(([key]) => {
        const [tenant, cls] = key.split('\u0000');
        return queries.tenantLru(tenant, cls, batchSize);
      });
    for (const source of sources) {
      for (const batch of source) {
        excess = (await consider(batch, excess))!;
        if (!hasExcess(excess)) break;
      }
    }
    return [...chosen.values()];
  }

  /** Size limits still exceeded once the files chosen so far are gone. */
  private excessAfter(request: RunRequest, rules: Map<string, ClassRule>, evictable: string[], scope: Scope, chosen: Map<string, Victim>): Excess {
    const totals = new Map<string, { tenant: string; class: string; bytes: number }>();
    for (const t of this.deps.index.totals()) {
      if (scope.tenant && t.tenant !== scope.tenant) continue;
      if (scope.class && t.class !== scope.class) continue;
      totals.set(tenantClassKey(t.tenant, t.class), { tenant: t.tenant, class: t.class, bytes: t.bytes });
    }
    let chosenBytes = 0;
    for (const v of chosen.values()) {
      chosenBytes += v.size;
      const total = totals.get(tenantClassKey(v.tenant, v.class));
      if (total) total.bytes -= v.size;
    }
    let overall = request.freeBytes !== undefined ? request.freeBytes - chosenBytes : 0;
    if (request.maxBytes !== undefined) {
      let scopeBytes = 0;
      for (const t of totals.values()) if (evictable.includes(t.class)) scopeBytes += t.bytes;
      overall = Math.max(overall, scopeBytes - request.maxBytes);
    }
    const sized = request.policies === false ? [] : totals.values();
    return excessOf(rules, sized, overall);
  }

  /** Deletes in batches: files first, then their index rows in one transaction; yields between batches. */
  private async remove(victims: Victim[], request: RunRequest, signal: AbortSignal): Promise<{ removed: Victim[]; failed: number; error: string | null }> {
    const { deps, batchSize } = this;
    const removed: Victim[] = [];
    let failed = 0;
    let error: string | null = null;
    for (let i = 0; i < victims.length; i += batchSize) {
      if (signal.aborted) throw signal.reason;
      const gone: Victim[] = [];
      // A read since planning saves a file chosen for being idle or least recently used.
      const batch = victims.slice(i, i + batchSize).filter((victim) =>
        victim.reason === 'expired' || victim.reason === 'max-age' || (deps.access.get(victim.name) ?? 0) <= victim.accessedMs);
      // A few unlinks in flight at once keep the libuv pool busy (several times the rate of one by one).
      for (let j = 0; j < batch.length; j += REMOVE_CONCURRENCY) {
        await Promise.all(batch.slice(j, j + REMOVE_CONCURRENCY).map(async (victim) => {
          try {
            await deps.storage.remove(parseName(victim.name));
            gone.push(victim);
          } catch (err) {
            failed++;
            error ??= `${victim.name}: ${(err as Error).message}`;
          }
        }));
      }
      try {
        deps.index.transaction(() => { for (const victim of gone) deps.index.remove(victim.name); });
      } catch (err) {
        // The files are gone; reconcile drops their rows later.
        deps.logger.error('index delete failed during eviction; reconcile will catch up', { error: (err as Error).message });
      }
      for (const victim of gone) deps.access.forget(victim.name);
      deps.guard.noteFreed(gone.reduce((sum, v) => sum + v.size, 0));
      removed.push(...gone);
      request.onProgress?.({ phase: 'delete', done: Math.min(i + batchSize, victims.length), total: victims.length });
      await yieldToLoop();
    }
    return { removed, failed, error };
  }
}

function overallReasonOf(request: RunRequest): EvictionReason {
  return request.reason === 'admission' ? 'tenant-quota' : request.reason === 'low-disk' ? 'low-disk' : 'max-bytes';
}

function summarize(request: RunRequest, atMs: number, durationMs: number, removed: Victim[], failed: number, error: string | null): RunSummary {
  const groups = new Map<string, GroupSummary>();
  let bytes = 0;
  for (const v of removed) {
    bytes += v.size;
    const key = tenantClassKey(v.tenant, v.class);
    const group = groups.get(key) ?? { tenant: v.tenant, class: v.class, files: 0, bytes: 0, reasons: {} };
    group.files++;
    group.bytes += v.size;
    group.reasons[v.reason] = (group.reasons[v.reason] ?? 0) + 1;
    groups.set(key, group);
  }
  return {
    reason: request.reason, dryRun: request.dryRun ?? false, at: new Date(atMs).toISOString(), durationMs,
    files: removed.length, bytes, failed, error,
    groups: [...groups.values()].sort((a, b) => b.bytes - a.bytes || a.tenant.localeCompare(b.tenant) || a.class.localeCompare(b.class)),
    victims: removed.map((v) => ({ name: v.name, tenant: v.tenant, class: v.class, size: v.size, reason: v.reason })),
  };
}
