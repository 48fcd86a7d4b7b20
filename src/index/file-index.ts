import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';

/** One stored file as the index knows it. Times are epoch milliseconds. */
export interface FileRecord {
  name: string;
  tenant: string;
  class: string;
  size: number;
  sha256: string;
  createdMs: number;
  accessedMs: number;
  expiresMs: number | null;
}

/** Files and bytes of one tenant in one class, kept by triggers. */
export interface UsageTotal {
  tenant: string;
  class: string;
  files: number;
  bytes: number;
}

interface Row {
  name: string; tenant: string; class: string; size: number; sha256: string;
  created_ms: number; accessed_ms: number; expires_ms: number | null;
}

const toRecord = (row: Row): FileRecord => ({
  name: row.name, tenant: row.tenant, class: row.class, size: row.size, sha256: row.sha256,
  createdMs: row.created_ms, accessedMs: row.accessed_ms, expiresMs: row.expires_ms,
});

const SCHEMA = `
CREATE TABLE IF NOT EXISTS files (
  name TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  class TEXT NOT NULL,
  size INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  accessed_ms INTEGER NOT NULL,
  expires_ms INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS files_lru ON files (class, tenant, accessed_ms, created_ms);
CREATE INDEX IF NOT EXISTS files_expiry ON files (expires_ms) WHERE expires_ms IS NOT NULL;

-- Per tenant and class totals, kept exact by triggers so /usage never scans.
CREATE TABLE IF NOT EXISTS totals (
  tenant TEXT NOT NULL,
  class TEXT NOT NULL,
  files INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  PRIMARY KEY (tenant, class)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS files_ins AFTER INSERT ON files BEGIN
  INSERT INTO totals (tenant, class, files, bytes) VALUES (NEW.tenant, NEW.class, 1, NEW.size)
  ON CONFLICT (tenant, class) DO UPDATE SET files = files + 1, bytes = bytes + NEW.size;
END;
CREATE TRIGGER IF NOT EXISTS files_del AFTER DELETE ON files BEGIN
  UPDATE totals SET files = files - 1, bytes = bytes - OLD.size WHERE tenant = OLD.tenant AND class = OLD.class;
  DELETE FROM totals WHERE tenant = OLD.tenant AND class = OLD.class AND files <= 0;
END;
CREATE TRIGGER IF NOT EXISTS files_upd AFTER UPDATE OF size, tenant, class ON files BEGIN
  UPDATE totals SET files = files - 1, bytes = bytes - OLD.size WHERE tenant = OLD.tenant AND class = OLD.class;
  DELETE FROM totals WHERE tenant = OLD.tenant AND class = OLD.class AND files <= 0;
  INSERT INTO totals (tenant, class, files, bytes) VALUES (NEW.tenant, NEW.class, 1, NEW.size)
  ON CONFLICT (tenant, class) DO UPDATE SET files = files + 1, bytes = bytes + NEW.size;
END;
`;

/**
 * The metadata index (docs/design.md §10) in SQLite (WAL). The files are the truth;
 * this is rebuilt from them by src/index/reconcile.ts when lost or drifted.
 */
export class FileIndex {
  /** True when the database file did not exist before this open. */
  readonly created: boolean;
  readonly db: Database.Database;
  private readonly stmts;

  constructor(readonly file: string) {
    this.created = file === ':memory:' || !existsSync(file);
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
    this.stmts = {
      get: this.db.prepare<[string], Row>('SELECT * FROM files WHERE name = ?'),
      upsert: this.db.prepare(`INSERT INTO files (name, tenant, class, size, sha256, created_ms, accessed_ms, expires_ms)
        VALUES (@name, @tenant, @class, @size, @sha256, @createdMs, @accessedMs, @expiresMs)
        ON CONFLICT (name) DO UPDATE SET tenant = excluded.tenant, class = excluded.class, size = excluded.size,
          sha256 = excluded.sha256, created_ms = excluded.created_ms, accessed_ms = excluded.accessed_ms,
          expires_ms = excluded.expires_ms`),
      remove: this.db.prepare<[string]>('DELETE FROM files WHERE name = ?'),
      touch: this.db.prepare<[number, string, number]>('UPDATE files SET accessed_ms = ? WHERE name = ? AND accessed_ms < ?'),
      totals: this.db.prepare<[], UsageTotal>('SELECT tenant, class, files, bytes FROM totals'),
      tenantClass: this.db.prepare<[string, string], UsageTotal>('SELECT tenant, class, files, bytes FROM totals WHERE tenant = ? AND class = ?'),
      count: this.db.prepare<[], { n: number; bytes: number }>('SELECT COALESCE(SUM(files), 0) AS n, COALESCE(SUM(bytes), 0) AS bytes FROM totals'),
      names: this.db.prepare<[], { name: string }>('SELECT name FROM files'),
    };
  }

  get(name: string): FileRecord | undefined {
    const row = this.stmts.get.get(name);
    return row ? toRecord(row) : undefined;
  }

  /** Inserts or replaces the row of a name. */
  put(record: FileRecord): void {
    this.stmts.upsert.run(record);
  }

  remove(name: string): boolean {
    return this.stmts.remove.run(name).changes > 0;
  }

  /** Applies a batch of last-access times in one transaction (never moves a time backwards). */
  readonly touchMany = (entries: Iterable<[string, number]>): void => {
    this.db.transaction((batch: Iterable<[string, number]>) => {
      for (const [name, ms] of batch) this.stmts.touch.run(ms, name, ms);
    })(entries);
  };

  totals(): UsageTotal[] {
    return this.stmts.totals.all();
  }

  tenantClassTotal(tenant: string, className: string): UsageTotal {
    return this.stmts.tenantClass.get(tenant, className) ?? { tenant, class: className, files: 0, bytes: 0 };
  }

  /** Files and bytes in all. */
  summary(): { files: number; bytes: number } {
    const row = this.stmts.count.get()!;
    return { files: row.n, bytes: row.bytes };
  }

  *names(): IterableIterator<string> {
    for (const row of this.stmts.names.iterate()) yield row.name;
  }

  /** Runs fn in one transaction. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
