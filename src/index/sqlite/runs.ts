import type Database from 'better-sqlite3';
import type { LoggedRun, RunFilter, RunRecord, RunsPart } from '../index.js';

interface Row { id: number; at_ms: number; files: number; bytes: number; duration_ms: number; reason: string; error: string | null; by_reason: string | null }

/** Runs always kept in `eviction_runs`. */
const KEEP_RUNS = 100;
/** Runs younger than this are kept too (up to MAX_RUNS), so a node that reads the log every few seconds misses none. */
const KEEP_RECENT_MS = 10 * 60_000;
const MAX_RUNS = 10_000;

const COLUMNS = 'id, at_ms, reason, files, bytes, duration_ms, error, by_reason';

function toRun(row: Row): LoggedRun {
  return {
    id: row.id, atMs: row.at_ms, reason: row.reason, files: row.files, bytes: row.bytes, durationMs: row.duration_ms, error: row.error,
    ...(row.by_reason === null ? {} : { byReason: JSON.parse(row.by_reason) as RunRecord['byReason'] }),
  };
}

/** Without the id: what record() took. */
function toRecord(row: Row): RunRecord {
  const { id: _id, ...run } = toRun(row);
  return run;
}

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
      recent: db.prepare<[number], Row>(`SELECT ${COLUMNS} FROM eviction_runs ORDER BY id DESC LIMIT ?`),
      lastRemoved: db.prepare<[], Row>(`SELECT ${COLUMNS} FROM eviction_runs WHERE files > 0 ORDER BY id DESC LIMIT 1`),
      lastSucceeded: db.prepare<[], Row>(`SELECT ${COLUMNS} FROM eviction_runs WHERE error IS NULL ORDER BY id DESC LIMIT 1`),
      cursor: db.prepare<[], { id: number | null }>('SELECT MAX(id) AS id FROM eviction_runs'),
      since: db.prepare<[number, number], Row>(`SELECT ${COLUMNS} FROM eviction_runs WHERE id > ? ORDER BY id LIMIT ?`),
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
    return row ? toRecord(row) : null;
  }

  async recent(limit: number): Promise<RunRecord[]> {
    return this.stmts.recent.all(limit).map(toRecord);
  }

  async cursor(): Promise<number> {
    return this.stmts.cursor.get()?.id ?? 0;
  }

  async since(afterId: number, limit: number): Promise<LoggedRun[]> {
    return this.stmts.since.all(afterId, limit).map(toRun);
  }
}
