import type { CandidateScope } from '../index/index.js';
import { tenantClassKey, type EvictionReason, type Victim } from './select-victims.js';

/** What started a run. */
export type RunReason = 'schedule' | 'low-disk' | 'admin' | 'cli' | 'admission';

export interface RunRequest {
  reason: RunReason;
  /** Choose and report, delete nothing. Dry runs do not take the lock. */
  dryRun?: boolean;
  scope?: CandidateScope;
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

/** The summary of a run from the files it removed (or would). */
export function summarize(request: RunRequest, atMs: number, durationMs: number, removed: Victim[], failed: number, error: string | null): RunSummary {
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
    groups: [...groups.values()].sort((a, b) => b.bytes - a.bytes || byCodeUnits(a.tenant, b.tenant) || byCodeUnits(a.class, b.class)),
    victims: removed.map((v) => ({ name: v.name, tenant: v.tenant, class: v.class, size: v.size, reason: v.reason })),
  };
}

/** Plain string order, not localeCompare: a collator maps ICU data (MBs of RSS) into the process on the first scheduled run. */
function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
