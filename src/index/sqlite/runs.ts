import type Database from 'better-sqlite3';
import type { RunRecord, RunsPart } from '../index.js';

interface Row { at_ms: number; files: number; bytes: number; duration_ms: number; reason: string; error: string | null }

/** Runs kept in `eviction_runs`. */
const KEEP_RUNS = 100;

/** The eviction run log (`eviction_runs`), shared by every process on this database. */
export class SqliteRuns implements RunsPart {
  private readonly stmts;

  constructor(db: Database.Database) {
    this.stmts = {
      insert: db.prepare('INSERT INTO eviction_runs (at_ms, reason, files, bytes, duration_ms, error) VALUES (?, ?, ?, ?, ?, ?)'),
      prune: db.prepare<[number]>('DELETE FROM eviction_runs WHERE id <= (SELECT MAX(id) FROM eviction_runs) - ?'),
      recent: db.prepare<[number], Row>('SELECT at_ms, reason, files, bytes, duration_ms, error FROM eviction_runs ORDER BY id DESC LIMIT ?'),
    };
  }

  async record(run: RunRecord): Promise<void> {
    this.stmts.insert.run(run.atMs, run.reason, run.files, run.bytes, Math.round(run.durationMs), run.error);
    this.stmts.prune.run(KEEP_RUNS);
  }

  async last(): Promise<RunRecord | null> {
    return (await this.recent(1))[0] ?? null;
  }

  async recent(limit: number): Promise<RunRecord[]> {
    return this.stmts.recent.all(limit).map((row) => ({
      atMs: row.at_ms, reason: row.reason, files: row.files, bytes: row.bytes, durationMs: row.duration_ms, error: row.error,
    }));
  }
}
