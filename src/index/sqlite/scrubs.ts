import type Database from 'better-sqlite3';
import type { ScrubRecord, ScrubsPart } from '../index.js';

interface Row { at_ms: number; duration_ms: number; files: number; bytes: number; corrupt: number; missing: number; quarantined: number }

/** Runs kept in `scrub_runs`. */
const KEEP_RUNS = 100;

/** The scrub run log (`scrub_runs`): written by `nanocdn scrub`, read by the serving node's /usage and /metrics. */
export class SqliteScrubs implements ScrubsPart {
  private readonly stmts;

  constructor(db: Database.Database) {
    this.stmts = {
      insert: db.prepare(`INSERT INTO scrub_runs (at_ms, duration_ms, files, bytes, corrupt, missing, quarantined)
        VALUES (@atMs, @durationMs, @files, @bytes, @corrupt, @missing, @quarantined)`),
      prune: db.prepare<[number]>('DELETE FROM scrub_runs WHERE id <= (SELECT MAX(id) FROM scrub_runs) - ?'),
      last: db.prepare<[], Row>('SELECT at_ms, duration_ms, files, bytes, corrupt, missing, quarantined FROM scrub_runs ORDER BY id DESC LIMIT 1'),
    };
  }

  async record(run: ScrubRecord): Promise<void> {
    this.stmts.insert.run({ ...run, durationMs: Math.round(run.durationMs) });
    this.stmts.prune.run(KEEP_RUNS);
  }

  async last(): Promise<ScrubRecord | null> {
    const row = this.stmts.last.get();
    return row ? {
      atMs: row.at_ms, durationMs: row.duration_ms, files: row.files, bytes: row.bytes, corrupt: row.corrupt, missing: row.missing, quarantined: row.quarantined,
    } : null;
  }
}
