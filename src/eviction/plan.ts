import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { CandidateScope, CandidatesPart, TotalsPart } from '../index/index.js';
import type { AccessTimes } from '../index/access-times.js';
import type { Classifier } from '../classes.js';
import type { RunRequest } from './run.js';
import {
  excessOf, hasExcess, selectVictims, tenantClassKey,
  type Candidate, type ClassRule, type EvictionReason, type Excess, type Victim,
} from './select-victims.js';

export interface PlannerDeps {
  totals: Pick<TotalsPart, 'all'>;
  candidates: CandidatesPart;
  access: AccessTimes;
  classifier: Classifier;
  batchSize: number;
}

/**
 * Chooses the victims of a run, in batches, yielding between them: files
 * condemned by a per-file rule (expiry, maxAge, maxIdle) first, then, while
 * a size limit is still exceeded, least recently used files. The decision
 * itself is selectVictims; this only feeds it candidates from the index.
 */
export class Planner {
  constructor(private readonly deps: PlannerDeps) {}

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
  async plan(request: RunRequest, now: number, signal: AbortSignal): Promise<Victim[]> {
    const { deps } = this;
    const { candidates: queries, batchSize } = deps;
    const scope = request.scope ?? {};
    const rules = this.rulesFor(request);
    const evictable = [...rules].filter(([name, r]) => r.evictable && (!scope.class || scope.class === name)).map(([name]) => name);
    // Reads not yet flushed must count: flush them, and overlay any that arrive meanwhile.
    await deps.access.flush();
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
      for await (const batch of queries.expired(now, scope, batchSize)) await consider(batch);
      for (const cls of evictable) {
        const rule = rules.get(cls)!;
        if (rule.maxAgeMs === null && rule.maxIdleMs === null) continue;
        const createdBefore = rule.maxAgeMs === null ? Number.MIN_SAFE_INTEGER : now - rule.maxAgeMs;
        const accessedBefore = rule.maxIdleMs === null ? Number.MIN_SAFE_INTEGER : now - rule.maxIdleMs;
        for await (const batch of queries.aged(cls, createdBefore, accessedBefore, scope, batchSize)) await consider(batch);
      }
    }

    let excess = await this.excessAfter(request, rules, evictable, scope, chosen);
    if (!hasExcess(excess)) return [...chosen.values()];
    const sources = excess.overall > 0 || [...excess.byClass.values()].some((v) => v > 0)
      ? [scope.tenant && scope.class ? queries.tenantLru(scope.tenant, scope.class, batchSize) : queries.globalLru(evictable, scope, batchSize)]
      : [...excess.byTenantClass].filter(([, v]) => v > 0).map(([key]) => {
        const [tenant, cls] = key.split('\u0000');
        return queries.tenantLru(tenant, cls, batchSize);
      });
    for (const source of sources) {
      for await (const batch of source) {
        excess = (await consider(batch, excess))!;
        if (!hasExcess(excess)) break;
      }
    }
    return [...chosen.values()];
  }

  /** Size limits still exceeded once the files chosen so far are gone. */
  private async excessAfter(request: RunRequest, rules: Map<string, ClassRule>, evictable: string[], scope: CandidateScope, chosen: Map<string, Victim>): Promise<Excess> {
    const totals = new Map<string, { tenant: string; class: string; bytes: number }>();
    for (const t of await this.deps.totals.all()) {
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
}

function overallReasonOf(request: RunRequest): EvictionReason {
  return request.reason === 'admission' ? 'tenant-quota' : request.reason === 'low-disk' ? 'low-disk' : 'max-bytes';
}
