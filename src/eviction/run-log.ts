import type Database from 'better-sqlite3';
import type { EvictionRun } from './report.js';

interface Row { at_ms: number; files: number; bytes: number; duration_ms: number; reason: string; error: string | null }

/**
 * Real (not dry) runs recorded in the index, so a run of the cleanup command
 * in another process shows in the server's /usage too. Keeps the last 100.
 */
export class RunLog {
  private readonly stmts;

  constructor(db: Database.Database) {
    db.exec(`CREATE TABLE IF NOT EXISTS eviction_runs (
      id INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL, reason TEXT NOT NULL,
      files INTEGER NOT NULL, bytes INTEGER NOT NULL, duration_ms INTEGER NOT NULL, error TEXT)`);
    this.stmts = {
      insert: db.prepare('INSERT INTO eviction_runs (at_ms, reason, files, bytes, duration_ms, error) VALUES (?, ?, ?, ?, ?, ?)'),
      prune: db.prepare('DELETE FROM eviction_runs WHERE id <= (SELECT MAX(id) FROM eviction_runs) - 100'),
      recent: db.prepare<[number], Row>('SELECT at_ms, reason, files, bytes, duration_ms, error FROM eviction_runs ORDER BY id DESC LIMIT ?'),
    };
  }

  record(run: { atMs: number; reason: string; files: number; bytes: number; durationMs: number; error: string | null }): void {
    this.stmts.insert.run(run.atMs, run.reason, run.files, run.bytes, Math.round(run.durationMs), run.error);
    this.stmts.prune.run();
  }

  last(): EvictionRun | null {
    return this.recent(1)[0] ?? null;
  }

  /** The last `limit` runs, newest first. */
  recent(limit: number): EvictionRun[] {
    return this.stmts.recent.all(limit).map((row) => ({
      at: row.at_ms, files: row.files, bytes: row.bytes, durationMs: row.duration_ms, reason: row.reason, error: row.error,
    }));
  }
}
