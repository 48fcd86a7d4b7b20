import type Database from 'better-sqlite3';
import type { FileRecord, FilesPart } from '../index.js';
import { toFileRecord, type FileRow } from '../rows.js';

/** Names per page of names(): no statement stays open across an await. */
const NAMES_PAGE = 1000;
/** Rows (and absent names) get() keeps between changes of the database; the oldest go first. */
const CACHED_ROWS = 10_000;

/**
 * The `files` table; the `totals` triggers follow every change.
 *
 * get() keeps the rows it read until anything in the database changes: it
 * asks SQLite first whether another connection (another worker, the cleanup
 * command) committed since (`PRAGMA data_version`), or this one changed a
 * row (`total_changes()`), 0.1–1.6 µs, where reading the row again cost
 * 2.5–10 µs in a busy clustered node: the read path asks for the row of
 * every GET (docs/read-path.md). Any change clears them all, so a read never
 * sees an older row than a fresh query would.
 */
export class SqliteFiles implements FilesPart {
  private readonly stmts;
  private readonly dataVersion: Database.Statement<[], number>;
  private readonly totalChanges: Database.Statement<[], number>;
  /** Rows read since the database last changed (undefined: no such row), by name. */
  private readonly rows = new Map<string, FileRecord | undefined>();
  private seenVersion = -1;
  private seenChanges = -1;
  /** get()s answered from the kept rows and from a query (tests, figures). */
  readonly reads = { kept: 0, queried: 0 };
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
    this.dataVersion = db.prepare<[], number>('PRAGMA data_version').pluck();
    this.totalChanges = db.prepare<[], number>('SELECT total_changes()').pluck();
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
    this.forgetIfChanged();
    if (this.rows.has(name)) {
      this.reads.kept++;
      return this.rows.get(name);
    }
    this.reads.queried++;
    const row = this.stmts.get.get(name);
    // Frozen: every caller shares the kept record.
    const record = row ? Object.freeze(toFileRecord(row)) : undefined;
    if (this.rows.size >= CACHED_ROWS) this.rows.delete(this.rows.keys().next().value!);
    this.rows.set(name, record);
    return record;
  }

  /** Drops the kept rows when the database changed since they were read. */
  private forgetIfChanged(): void {
    const version = this.dataVersion.get()!;
    const changes = this.totalChanges.get()!;
    if (version === this.seenVersion && changes === this.seenChanges) return;
    this.rows.clear();
    this.seenVersion = version;
    this.seenChanges = changes;
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
