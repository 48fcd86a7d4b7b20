import type Database from 'better-sqlite3';
import type { LoggedRun, RunFilter, RunRecord, RunsPart } from '../index.js';
import { KEEP_RECENT_MS, KEEP_RUNS, MAX_RUNS, RUN_COLUMNS, toRun, toRunRecord, type RunRow } from '../rows.js';

/** The eviction run log (`eviction_runs`), shared by every process on this database. */
export class SqliteRuns implements RunsPart {
  private readonly stmts;
  /** Insert and prune at once: a run is in the log (its id returned) or, on failure, not at all, so a caller never counts it twice. */
  private readonly insertAndPrune: (run: RunRecord) => number;

  constructor(db: Database.Database) {
    this.stmts = {
      insert: db.prepare('INSERT INTO eviction_runs (at_ms, reason, files, bytes, duration_ms, error, by_reason) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      prune: db.prepare<[number, number, number]>(`DELETE FROM eviction_runs WHERE id <= (SELECT MAX(id) FROM eviction_runs) - ?
        AND (at_ms < ? OR id <= (SELECT MAX(id) FROM eviction_runs) - ?)`),
      recent: db.prepare<[number], RunRow>(`SELECT ${RUN_COLUMNS} FROM eviction_runs ORDER BY id DESC LIMIT ?`),
      lastRemoved: db.prepare<[], RunRow>(`SELECT ${RUN_COLUMNS} FROM eviction_runs WHERE files > 0 ORDER BY id DESC LIMIT 1`),
      lastSucceeded: db.prepare<[], RunRow>(`SELECT ${RUN_COLUMNS} FROM eviction_runs WHERE error IS NULL ORDER BY id DESC LIMIT 1`),
      cursor: db.prepare<[], { id: number | null }>('SELECT MAX(id) AS id FROM eviction_runs'),
      since: db.prepare<[number, number], RunRow>(`SELECT ${RUN_COLUMNS} FROM eviction_runs WHERE id > ? ORDER BY id LIMIT ?`),
    };
    this.insertAndPrune = db.transaction((run: RunRecord) => {
      const { lastInsertRowid } = this.stmts.insert.run(run.atMs, run.reason, run.files, run.bytes, Math.round(run.durationMs), run.error,
        run.byReason ? JSON.stringify(run.byReason) : null);
      this.stmts.prune.run(KEEP_RUNS, run.atMs - KEEP_RECENT_MS, MAX_RUNS);
      return Number(lastInsertRowid);
    });
  }

  async record(run: RunRecord): Promise<number> {
    return this.insertAndPrune(run);
  }

  async last(filter: RunFilter = 'any'): Promise<RunRecord | null> {
    const row = filter === 'removed' ? this.stmts.lastRemoved.get()
      : filter === 'succeeded' ? this.stmts.lastSucceeded.get()
        : this.stmts.recent.get(1);
    return row ? toRunRecord(row) : null;
  }

  async recent(limit: number): Promise<RunRecord[]> {
    return this.stmts.recent.all(limit).map(toRunRecord);
  }

  async cursor(): Promise<number> {
    return this.stmts.cursor.get()?.id ?? 0;
  }

  async since(afterId: number, limit: number): Promise<LoggedRun[]> {
    return this.stmts.since.all(afterId, limit).map(toRun);
  }
}
