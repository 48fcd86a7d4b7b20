import type Database from 'better-sqlite3';
import type { RetiredName, RetiredPart } from '../index.js';

interface Row { name: string; sha256: string; retired_ms: number }

/** The `retired_names` table; rows are written by SqliteFiles.remove/removeMany. */
export class SqliteRetired implements RetiredPart {
  private readonly stmts;

  constructor(db: Database.Database) {
    this.stmts = {
      get: db.prepare<[string], Row>('SELECT name, sha256, retired_ms FROM retired_names WHERE name = ?'),
      drop: db.prepare<[string]>('DELETE FROM retired_names WHERE name = ?'),
      prune: db.prepare<[number]>('DELETE FROM retired_names WHERE retired_ms <= ?'),
    };
  }

  async get(name: string): Promise<RetiredName | undefined> {
    const row = this.stmts.get.get(name);
    return row ? { name: row.name, sha256: row.sha256, retiredMs: row.retired_ms } : undefined;
  }

  async drop(name: string): Promise<boolean> {
    return this.stmts.drop.run(name).changes > 0;
  }

  async prune(atOrBeforeMs: number): Promise<number> {
    return this.stmts.prune.run(atOrBeforeMs).changes;
  }
}
