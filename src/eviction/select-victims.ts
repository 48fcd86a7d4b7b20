/**
 * The eviction policy as one pure function (docs/design.md §7): given files,
 * class rules, the bytes still to free and a clock, which files go and why.
 * The runner (evictor.ts) fetches candidates and deletes; nothing here does
 * I/O, so the policy is tested with exact inputs and a fixed clock.
 */

import type { CandidateRow } from '../index/index.js';

/**
 * A stored file as eviction sees it (the index's candidate row); times are
 * epoch milliseconds, and `accessedMs` includes reads not yet flushed to the
 * index (the planner overlays them).
 */
export type Candidate = CandidateRow;

/** Why a file was chosen. */
export type EvictionReason =
  | 'expired' | 'max-age' | 'max-idle' | 'tenant-quota' | 'class-quota' | 'low-disk' | 'max-bytes';

/** The rules of one storage class; null means "no limit". */
export interface ClassRule {
  readonly evictable: boolean;
  readonly maxAgeMs: number | null;
  readonly maxIdleMs: number | null;
  readonly maxBytes: number | null;
  readonly maxBytesPerTenant: number | null;
}

/** Bytes still to free: per class (maxBytes), per tenant and class (maxBytesPerTenant), and across the scope. */
export interface Excess {
  readonly byClass: ReadonlyMap<string, number>;
  /** Keyed by tenantClassKey(tenant, class). */
  readonly byTenantClass: ReadonlyMap<string, number>;
  readonly overall: number;
}

export interface EvictionPolicy {
  readonly rules: ReadonlyMap<string, ClassRule>;
  /** Size limits still exceeded; absent: no size pass. */
  readonly excess?: Excess;
  /** The reason recorded for files chosen to reduce `excess.overall`. */
  readonly overallReason?: EvictionReason;
}

export interface Victim extends Candidate {
  readonly reason: EvictionReason;
}

export interface Selection {
  /** In the order chosen: per-file rules first, then least recently used. */
  readonly victims: Victim[];
  /** What is still to free after these victims are gone. */
  readonly excess: Excess;
}

export const tenantClassKey = (tenant: string, cls: string): string => `${tenant}\u0000${cls}`;

/** Least recently used first; ties go to the older upload, then to the name, so order is stable. */
function lruOrder(a: Candidate, b: Candidate): number {
  return a.accessedMs - b.accessedMs || a.createdMs - b.createdMs || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

/**
 * Expiry (X-Expire-After) is the uploader's explicit request and applies to
 * every class, evictable or not; age and idle apply to evictable classes.
 */
function ruleReason(file: Candidate, rule: ClassRule | undefined, now: number): EvictionReason | null {
  if (file.expiresMs !== null && file.expiresMs <= now) return 'expired';
  if (!rule?.evictable) return null;
  if (rule.maxAgeMs !== null && now - file.createdMs >= rule.maxAgeMs) return 'max-age';
  if (rule.maxIdleMs !== null && now - file.accessedMs >= rule.maxIdleMs) return 'max-idle';
  return null;
}

/** Bytes over each size limit, from per tenant/class totals; `overall` is passed through. */
export function excessOf(
  rules: ReadonlyMap<string, ClassRule>,
  totals: Iterable<{ tenant: string; class: string; bytes: number }>,
  overall = 0,
): Excess {
  const classBytes = new Map<string, number>();
  const byTenantClass = new Map<string, number>();
  for (const t of totals) {
    const rule = rules.get(t.class);
    if (!rule?.evictable) continue;
    classBytes.set(t.class, (classBytes.get(t.class) ?? 0) + t.bytes);
    if (rule.maxBytesPerTenant !== null && t.bytes > rule.maxBytesPerTenant) {
      byTenantClass.set(tenantClassKey(t.tenant, t.class), t.bytes - rule.maxBytesPerTenant);
    }
  }
  const byClass = new Map<string, number>();
  for (const [cls, bytes] of classBytes) {
    const limit = rules.get(cls)!.maxBytes;
    if (limit !== null && bytes > limit) byClass.set(cls, bytes - limit);
  }
  return { byClass, byTenantClass, overall: Math.max(0, overall) };
}

/** True while some size limit is still exceeded. */
export function hasExcess(excess: Excess): boolean {
  if (excess.overall > 0) return true;
  for (const v of excess.byClass.values()) if (v > 0) return true;
  for (const v of excess.byTenantClass.values()) if (v > 0) return true;
  return false;
}

/**
 * Chooses victims among `candidates` (any order): first every file a
 * per-file rule condemns (expiry, maxAge, maxIdle), then, least recently used
 * first, files of evictable classes while their tenant quota, their class
 * total or the overall target is still exceeded. Files of non-evictable
 * classes are only ever chosen when expired.
 */
export function selectVictims(candidates: readonly Candidate[], policy: EvictionPolicy, now: number): Selection {
  const byClass = new Map(policy.excess?.byClass ?? []);
  const byTenantClass = new Map(policy.excess?.byTenantClass ?? []);
  let overall = policy.excess?.overall ?? 0;
  const take = (file: Candidate) => {
    const key = tenantClassKey(file.tenant, file.class);
    if (byTenantClass.has(key)) byTenantClass.set(key, byTenantClass.get(key)! - file.size);
    if (byClass.has(file.class)) byClass.set(file.class, byClass.get(file.class)! - file.size);
    overall -= file.size;
  };

  const ordered = [...candidates].sort(lruOrder);
  const victims: Victim[] = [];
  const rest: Candidate[] = [];
  for (const file of ordered) {
    const reason = ruleReason(file, policy.rules.get(file.class), now);
    if (reason) {
      victims.push({ ...file, reason });
      take(file);
    } else {
      rest.push(file);
    }
  }
  if (policy.excess) {
    for (const file of rest) {
      if (!policy.rules.get(file.class)?.evictable) continue;
      const reason: EvictionReason | null =
        (byTenantClass.get(tenantClassKey(file.tenant, file.class)) ?? 0) > 0 ? 'tenant-quota'
          : (byClass.get(file.class) ?? 0) > 0 ? 'class-quota'
            : overall > 0 ? (policy.overallReason ?? 'low-disk')
              : null;
      if (!reason) continue;
      victims.push({ ...file, reason });
      take(file);
    }
  }
  return { victims, excess: { byClass, byTenantClass, overall: Math.max(0, overall) } };
}
