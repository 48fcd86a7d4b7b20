import type { LoggedRun, RunFilter, RunRecord, RunsPart } from '../index.js';
import { KEEP_RECENT_MS, KEEP_RUNS, MAX_RUNS, RUN_COLUMNS, toRun, toRunRecord, type RunRow } from '../rows.js';
import { ADVISORY, type Db } from './db.js';

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
    const row = await this.db.row<RunRow>(`SELECT ${RUN_COLUMNS} FROM eviction_runs ${where} ORDER BY id DESC LIMIT 1`);
    return row ? toRunRecord(row) : null;
  }

  async recent(limit: number): Promise<RunRecord[]> {
    return (await this.db.rows<RunRow>(`SELECT ${RUN_COLUMNS} FROM eviction_runs ORDER BY id DESC LIMIT $1`, [limit])).map(toRunRecord);
  }

  async cursor(): Promise<number> {
    return (await this.db.row<{ id: number | null }>('SELECT MAX(id) AS id FROM eviction_runs'))?.id ?? 0;
  }

  async since(afterId: number, limit: number): Promise<LoggedRun[]> {
    return (await this.db.rows<RunRow>(`SELECT ${RUN_COLUMNS} FROM eviction_runs WHERE id > $1 ORDER BY id LIMIT $2`, [afterId, limit])).map(toRun);
  }
}
