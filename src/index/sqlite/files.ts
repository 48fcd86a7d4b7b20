import type Database from 'better-sqlite3';
import type { FileRecord, FilesPart } from '../index.js';
import { toFileRecord, type FileRow } from '../rows.js';

/** Names per page of names(): no statement stays open across an await. */
const NAMES_PAGE = 1000;

/** The `files` table; the `totals` triggers follow every change. */
export class SqliteFiles implements FilesPart {
  private readonly stmts;
  private readonly putAll: (records: Iterable<FileRecord>) => void;
  private readonly removeOne: (name: string, retiredMs: number | null) => boolean;
  private readonly removeAll: (names: Iterable<string>, retiredMs: (name: string) => number | null) => number;
  private readonly touchAll: (entries: Iterable<[string, number]>) => void;

  constructor(db: Database.Database) {
    this.stmts = {
      get: db.prepare<[string], FileRow>('SELECT * FROM files WHERE name = ?'),
      upsert: db.prepare(`INSERT INTO files (name, tenant, class, size, sha256, created_ms, accessed_ms, expires_ms)
        VALUES (@name, @tenant, @class, @size, @sha256, @createdMs, @accessedMs, @expiresMs)
        ON CONFLICT (name) DO UPDATE SET tenant = excluded.tenant, class = excluded.class, size = excluded.size,
          sha256 = excluded.sha256, created_ms = excluded.created_ms, accessed_ms = excluded.accessed_ms,
          expires_ms = excluded.expires_ms`),
      remove: db.prepare<[string]>('DELETE FROM files WHERE name = ?'),
      // The row's checksum, kept under its name (retired_names); a name retired again gets the newer one.
      retire: db.prepare<[number, string]>(`INSERT INTO retired_names (name, sha256, retired_ms)
        SELECT name, sha256, ? FROM files WHERE name = ?
        ON CONFLICT (name) DO UPDATE SET sha256 = excluded.sha256, retired_ms = excluded.retired_ms`),
      touch: db.prepare<[number, string, number]>('UPDATE files SET accessed_ms = ? WHERE name = ? AND accessed_ms < ?'),
      names: db.prepare<[string, number], { name: string }>('SELECT name FROM files WHERE name > ? ORDER BY name LIMIT ?'),
    };
    this.putAll = db.transaction((records: Iterable<FileRecord>) => {
      for (const record of records) this.stmts.upsert.run(record);
    });
    this.removeOne = db.transaction((name: string, retiredMs: number | null) => {
      if (retiredMs !== null) this.stmts.retire.run(retiredMs, name);
      return this.stmts.remove.run(name).changes > 0;
    });
    this.removeAll = db.transaction((names: Iterable<string>, retiredMs: (name: string) => number | null) => {
      let removed = 0;
      for (const name of names) if (this.removeOne(name, retiredMs(name))) removed++;
      return removed;
    });
    this.touchAll = db.transaction((entries: Iterable<[string, number]>) => {
      for (const [name, ms] of entries) this.stmts.touch.run(ms, name, ms);
    });
  }

  async get(name: string): Promise<FileRecord | undefined> {
    const row = this.stmts.get.get(name);
    return row ? toFileRecord(row) : undefined;
  }

  async put(record: FileRecord): Promise<void> {
    this.stmts.upsert.run(record);
  }

  async putMany(records: Iterable<FileRecord>): Promise<void> {
    this.putAll(records);
  }

  async remove(name: string, retiredMs: number | null = null): Promise<boolean> {
    return this.removeOne(name, retiredMs);
  }

  async removeMany(names: Iterable<string>, retiredMs: (name: string) => number | null = () => null): Promise<number> {
    return this.removeAll(names, retiredMs);
  }

  async touchMany(entries: Iterable<[string, number]>): Promise<void> {
    this.touchAll(entries);
  }

  async *names(): AsyncGenerator<string> {
    let after = '';
    for (;;) {
      const rows = this.stmts.names.all(after, NAMES_PAGE);
      for (const row of rows) yield row.name;
      if (rows.length < NAMES_PAGE) return;
      after = rows[rows.length - 1].name;
    }
  }
}
