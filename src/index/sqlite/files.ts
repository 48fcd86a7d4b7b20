import type Database from 'better-sqlite3';
import type { FileRecord, FilesPart } from '../index.js';

interface Row {
  name: string; tenant: string; class: string; size: number; sha256: string;
  created_ms: number; accessed_ms: number; expires_ms: number | null;
}

const toRecord = (row: Row): FileRecord => ({
  name: row.name, tenant: row.tenant, class: row.class, size: row.size, sha256: row.sha256,
  createdMs: row.created_ms, accessedMs: row.accessed_ms, expiresMs: row.expires_ms,
});

/** Names per page of names(): no statement stays open across an await. */
const NAMES_PAGE = 1000;

/** The `files` table; the `totals` triggers follow every change. */
export class SqliteFiles implements FilesPart {
  private readonly stmts;
  private readonly putAll: (records: Iterable<FileRecord>) => void;
  private readonly removeAll: (names: Iterable<string>) => number;
  private readonly touchAll: (entries: Iterable<[string, number]>) => void;

  constructor(db: Database.Database) {
    this.stmts = {
      get: db.prepare<[string], Row>('SELECT * FROM files WHERE name = ?'),
      upsert: db.prepare(`INSERT INTO files (name, tenant, class, size, sha256, created_ms, accessed_ms, expires_ms)
        VALUES (@name, @tenant, @class, @size, @sha256, @createdMs, @accessedMs, @expiresMs)
        ON CONFLICT (name) DO UPDATE SET tenant = excluded.tenant, class = excluded.class, size = excluded.size,
          sha256 = excluded.sha256, created_ms = excluded.created_ms, accessed_ms = excluded.accessed_ms,
          expires_ms = excluded.expires_ms`),
      remove: db.prepare<[string]>('DELETE FROM files WHERE name = ?'),
      touch: db.prepare<[number, string, number]>('UPDATE files SET accessed_ms = ? WHERE name = ? AND accessed_ms < ?'),
      names: db.prepare<[string, number], { name: string }>('SELECT name FROM files WHERE name > ? ORDER BY name LIMIT ?'),
    };
    this.putAll = db.transaction((records: Iterable<FileRecord>) => {
      for (const record of records) this.stmts.upsert.run(record);
    });
    this.removeAll = db.transaction((names: Iterable<string>) => {
      let removed = 0;
      for (const name of names) removed += this.stmts.remove.run(name).changes;
      return removed;
    });
    this.touchAll = db.transaction((entries: Iterable<[string, number]>) => {
      for (const [name, ms] of entries) this.stmts.touch.run(ms, name, ms);
    });
  }

  async get(name: string): Promise<FileRecord | undefined> {
    const row = this.stmts.get.get(name);
    return row ? toRecord(row) : undefined;
  }

  async put(record: FileRecord): Promise<void> {
    this.stmts.upsert.run(record);
  }

  async putMany(records: Iterable<FileRecord>): Promise<void> {
    this.putAll(records);
  }

  async remove(name: string): Promise<boolean> {
    return this.stmts.remove.run(name).changes > 0;
  }

  async removeMany(names: Iterable<string>): Promise<number> {
    return this.removeAll(names);
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
