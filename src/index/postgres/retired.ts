import type { RetiredName, RetiredPart } from '../index.js';
import type { Db } from './db.js';

interface Row { name: string; sha256: string; retired_ms: number }

/** The `retired_names` table; rows are written by PgFiles.remove/removeMany. */
export class PgRetired implements RetiredPart {
  constructor(private readonly db: Db) {}

  async get(name: string): Promise<RetiredName | undefined> {
    const row = await this.db.row<Row>('SELECT name, sha256, retired_ms FROM retired_names WHERE name = $1', [name]);
    return row ? { name: row.name, sha256: row.sha256, retiredMs: row.retired_ms } : undefined;
  }

  async drop(name: string): Promise<boolean> {
    return await this.db.run('DELETE FROM retired_names WHERE name = $1', [name]) > 0;
  }

  async prune(atOrBeforeMs: number): Promise<number> {
    return this.db.run('DELETE FROM retired_names WHERE retired_ms <= $1', [atOrBeforeMs]);
  }
}
