import type { CandidateRow, FileRecord, LoggedRun, RunRecord } from './index.js';

/**
 * The rows both index engines read (their schemas name the columns alike):
 * one mapping to the records of index.ts, so the engines differ only in how
 * they query.
 */

/** A `files` row. */
export interface FileRow {
  name: string; tenant: string; class: string; size: number; sha256: string;
  created_ms: number; accessed_ms: number; expires_ms: number | null;
}

export const FILE_COLUMNS = 'name, tenant, class, size, sha256, created_ms, accessed_ms, expires_ms';

export const toFileRecord = (row: FileRow): FileRecord => ({
  name: row.name, tenant: row.tenant, class: row.class, size: row.size, sha256: row.sha256,
  createdMs: row.created_ms, accessedMs: row.accessed_ms, expiresMs: row.expires_ms,
});

/** What eviction reads of a `files` row. */
export type CandidateFileRow = Omit<FileRow, 'sha256'>;

export const CANDIDATE_COLUMNS = 'name, tenant, class, size, created_ms, accessed_ms, expires_ms';

export const toCandidate = (row: CandidateFileRow): CandidateRow => ({
  name: row.name, tenant: row.tenant, class: row.class, size: row.size,
  createdMs: row.created_ms, accessedMs: row.accessed_ms, expiresMs: row.expires_ms,
});

/** An `eviction_runs` row; `by_reason` as the engine returns it (SQLite: JSON text, PostgreSQL: JSONB, parsed). */
/**
 * Keyset pagination of eviction candidates, the same for every engine: one
 * batch after `start`, yielded, then the next after the last row's key,
 * until a batch is empty. Each batch is one finished query: nothing stays
 * open while the caller awaits.
 */
export async function* keysetPages<K>(start: K, fetch: (after: K) => CandidateFileRow[] | Promise<CandidateFileRow[]>,
  keyOf: (last: CandidateFileRow) => K): AsyncGenerator<CandidateRow[]> {
  let after = start;
  for (;;) {
    const rows = await fetch(after);
    if (rows.length === 0) return;
    yield rows.map(toCandidate);
    after = keyOf(rows[rows.length - 1]);
  }
}

/** The key of the LRU orders (accessed, created, name), and where it starts. */
export interface LruKey { a: number; c: number; n: string }
export const LRU_START: LruKey = { a: Number.MIN_SAFE_INTEGER, c: Number.MIN_SAFE_INTEGER, n: '' };
export const lruKeyOf = (row: CandidateFileRow): LruKey => ({ a: row.accessed_ms, c: row.created_ms, n: row.name });

export interface RunRow {
  id: number; at_ms: number; files: number; bytes: number; duration_ms: number; reason: string; error: string | null;
  by_reason: string | RunRecord['byReason'] | null;
}

export const RUN_COLUMNS = 'id, at_ms, reason, files, bytes, duration_ms, error, by_reason';

export function toRun(row: RunRow): LoggedRun {
  const byReason = typeof row.by_reason === 'string' ? JSON.parse(row.by_reason) as RunRecord['byReason'] : row.by_reason;
  return {
    id: row.id, atMs: row.at_ms, reason: row.reason, files: row.files, bytes: row.bytes, durationMs: row.duration_ms, error: row.error,
    ...(byReason === null ? {} : { byReason }),
  };
}

/** Runs always kept in `eviction_runs`. */
export const KEEP_RUNS = 100;
/** Runs younger than this are kept too (up to MAX_RUNS), so a node that reads the log every few seconds misses none. */
export const KEEP_RECENT_MS = 10 * 60_000;
export const MAX_RUNS = 10_000;

/** A run as recorded (without its log id). */
export function toRunRecord(row: RunRow): RunRecord {
  const { id: _id, ...run } = toRun(row);
  return run;
}
