import type { ScrubRecord, ScrubsPart } from '../index.js';
import type { Db } from './db.js';

interface Row { at_ms: number; duration_ms: number; files: number; bytes: number; corrupt: number; missing: number; quarantined: number }

/** Runs kept in `scrub_runs`. */
const KEEP_RUNS = 100;

/** The scrub run log (`scrub_runs`): written by `nanocdn scrub`, read by the serving nodes' /usage and /metrics. */
export class PgScrubs implements ScrubsPart {
  constructor(private readonly db: Db) {}

  async record(run: ScrubRecord): Promise<void> {
    await this.db.tx(async (client) => {
      await client.query(`INSERT INTO scrub_runs (at_ms, duration_ms, files, bytes, corrupt, missing, quarantined)
        VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [run.atMs, Math.round(run.durationMs), run.files, run.bytes, run.corrupt, run.missing, run.quarantined]);
      await client.query('DELETE FROM scrub_runs WHERE id <= (SELECT MAX(id) FROM scrub_runs) - $1', [KEEP_RUNS]);
    });
  }

  async last(): Promise<ScrubRecord | null> {
    const row = await this.db.row<Row>('SELECT at_ms, duration_ms, files, bytes, corrupt, missing, quarantined FROM scrub_runs ORDER BY id DESC LIMIT 1');
    return row ? {
      atMs: row.at_ms, durationMs: row.duration_ms, files: row.files, bytes: row.bytes, corrupt: row.corrupt, missing: row.missing, quarantined: row.quarantined,
    } : null;
  }
}
