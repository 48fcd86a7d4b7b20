import type { LoggedRun, RunFilter, RunRecord, RunsPart } from '../index.js';
import { ADVISORY, type Db } from './db.js';

interface Row {
  id: number; at_ms: number; files: number; bytes: number; duration_ms: number; reason: string; error: string | null;
  by_reason: RunRecord['byReason'] | null;
}

/** Runs always kept in `eviction_runs`. */
const KEEP_RUNS = 100;
/** Runs younger than this are kept too (up to MAX_RUNS), so a node that reads the log every few seconds misses none. */
const KEEP_RECENT_MS = 10 * 60_000;
const MAX_RUNS = 10_000;

const COLUMNS = 'id, at_ms, reason, files, bytes, duration_ms, error, by_reason';

function toRun(row: Row): LoggedRun {
  return {
    id: row.id, atMs: row.at_ms, reason: row.reason, files: row.files, bytes: row.bytes, durationMs: row.duration_ms, error: row.error,
    ...(row.by_reason === null ? {} : { byReason: row.by_reason }),
  };
}

/** Without the id: what record() took. */
function toRecord(row: Row): RunRecord {
  const { id: _id, ...run } = toRun(row);
  return run;
}

/**
 * The eviction run log (`eviction_runs`), shared by every process and node on
 * this database. A reader follows it by id (since()): ids are taken and
 * committed under one advisory lock, so a run with a lower id never becomes
 * visible after one with a higher id (with concurrent inserts a sequence alone
 * would allow that, and a follower would skip the late one).
 */
export class PgRuns implements RunsPart {
  constructor(private readonly db: Db) {}

  async record(run: RunRecord): Promise<number> {
    // Insert and prune at once: a run is in the log (its id returned) or, on failure, not at all.
    return this.db.tx(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1)', [ADVISORY.runs]);
      const { id } = (await this.db.row<{ id: number }>(`INSERT INTO eviction_runs (at_ms, reason, files, bytes, duration_ms, error, by_reason)
        VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb) RETURNING id`, [run.atMs, run.reason, run.files, run.bytes, Math.round(run.durationMs), run.error,
        run.byReason ? JSON.stringify(run.byReason) : null], client))!;
      await client.query(`DELETE FROM eviction_runs WHERE id <= $1::bigint - $2::bigint AND (at_ms < $3 OR id <= $1::bigint - $4::bigint)`,
        [id, KEEP_RUNS, run.atMs - KEEP_RECENT_MS, MAX_RUNS]);
      return id;
    });
  }

  async last(filter: RunFilter = 'any'): Promise<RunRecord | null> {
    const where = filter === 'removed' ? 'WHERE files > 0' : filter === 'succeeded' ? 'WHERE error IS NULL' : '';
    const row = await this.db.row<Row>(`SELECT ${COLUMNS} FROM eviction_runs ${where} ORDER BY id DESC LIMIT 1`);
    return row ? toRecord(row) : null;
  }

  async recent(limit: number): Promise<RunRecord[]> {
    return (await this.db.rows<Row>(`SELECT ${COLUMNS} FROM eviction_runs ORDER BY id DESC LIMIT $1`, [limit])).map(toRecord);
  }

  async cursor(): Promise<number> {
    return (await this.db.row<{ id: number | null }>('SELECT MAX(id) AS id FROM eviction_runs'))?.id ?? 0;
  }

  async since(afterId: number, limit: number): Promise<LoggedRun[]> {
    return (await this.db.rows<Row>(`SELECT ${COLUMNS} FROM eviction_runs WHERE id > $1 ORDER BY id LIMIT $2`, [afterId, limit])).map(toRun);
  }
}
