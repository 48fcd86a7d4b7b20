import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import type { MetadataIndex } from '../index.js';
import { SqliteCandidates } from './candidates.js';
import { SqliteClaims } from './claims.js';
import { SqliteFiles } from './files.js';
import { SqliteHistory } from './history.js';
import { SqliteRetired } from './retired.js';
import { SqliteRuns } from './runs.js';
import { SqliteScrubs } from './scrubs.js';
import { checkVersion, migrate } from './schema.js';
import { SqliteTotals } from './totals.js';

/** SQLite's default max_page_count. */
const MAX_PAGES = 1073741823;

export interface SqliteIndexOptions {
  /** Open without writing: no migration, no WAL switch (inspection, tests). The file must exist. */
  readonly?: boolean;
}

/** The SQLite index, with what only this engine can do. */
export interface SqliteIndex extends MetadataIndex {
  /**
   * Caps the database at its current size, so the next write that needs a
   * page fails with SQLITE_FULL as on a full disk (tests); false lifts the cap.
   */
  capSize(capped: boolean): void;
}

/**
 * The metadata index in one SQLite file (WAL, so readers never wait for the
 * writer; busy_timeout, so the cleanup command and the server share it).
 * Opening migrates the schema to this code's version (schema.ts).
 */
export function openSqliteIndex(file: string, options: SqliteIndexOptions = {}): SqliteIndex {
  const created = file === ':memory:' || !existsSync(file);
  const db = new Database(file, options.readonly ? { readonly: true, fileMustExist: true } : {});
  try {
    db.pragma('busy_timeout = 5000');
    if (options.readonly) {
      checkVersion(db, file);
    } else {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      migrate(db, file);
    }
    return {
      files: new SqliteFiles(db),
      totals: new SqliteTotals(db),
      candidates: new SqliteCandidates(db),
      history: new SqliteHistory(db),
      runs: new SqliteRuns(db),
      claims: new SqliteClaims(db),
      retired: new SqliteRetired(db),
      scrubs: new SqliteScrubs(db),
      created,
      isOpen: async () => db.open,
      close: async () => {
        if (db.open) db.close();
      },
      capSize: (capped) => {
        db.pragma(`max_page_count = ${capped ? db.pragma('page_count', { simple: true }) as number : MAX_PAGES}`);
      },
    };
  } catch (err) {
    db.close();
    throw err;
  }
}
