import type { FileRecord, FilesPart } from '../index.js';
import { FILE_COLUMNS, toFileRecord, type FileRow } from '../rows.js';
import type { Db, Queryable } from './db.js';

const UPDATE_ALL = `tenant = EXCLUDED.tenant, class = EXCLUDED.class, size = EXCLUDED.size, sha256 = EXCLUDED.sha256,
  created_ms = EXCLUDED.created_ms, accessed_ms = EXCLUDED.accessed_ms, expires_ms = EXCLUDED.expires_ms`;

/** Names per page of names(), and rows per statement of the batch writes. */
const PAGE = 1000;

function chunks<T>(items: T[], size = PAGE): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * The `files` table; the totals trigger follows every change. Batches are
 * one statement per PAGE rows (unnest of arrays), inside one transaction.
 */
export class PgFiles implements FilesPart {
  constructor(private readonly db: Db) {}

  async get(name: string): Promise<FileRecord | undefined> {
    const row = await this.db.row<FileRow>(`SELECT ${FILE_COLUMNS} FROM files WHERE name = $1`, [name]);
    return row ? toFileRecord(row) : undefined;
  }

  async put(record: FileRecord): Promise<void> {
    await this.db.run(`INSERT INTO files (${FILE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
      ON CONFLICT (name) DO UPDATE SET ${UPDATE_ALL}`,
    [record.name, record.tenant, record.class, record.size, record.sha256, record.createdMs, record.accessedMs, record.expiresMs]);
  }

  async putMany(records: Iterable<FileRecord>): Promise<void> {
    // One statement may not change a row twice: the last record of a name wins, as one put after another would.
    const byName = new Map<string, FileRecord>();
    for (const record of records) byName.set(record.name, record);
    if (byName.size === 0) return;
    await this.db.tx(async (client) => {
      for (const batch of chunks([...byName.values()])) {
        await client.query(`INSERT INTO files (${FILE_COLUMNS})
          SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[])
          ON CONFLICT (name) DO UPDATE SET ${UPDATE_ALL}`, [
          batch.map((r) => r.name), batch.map((r) => r.tenant), batch.map((r) => r.class), batch.map((r) => r.size),
          batch.map((r) => r.sha256), batch.map((r) => r.createdMs), batch.map((r) => r.accessedMs), batch.map((r) => r.expiresMs),
        ]);
      }
    });
  }

  async remove(name: string, retiredMs: number | null = null): Promise<boolean> {
    return (await this.removeBatch(this.db.pool, [name], [retiredMs])) > 0;
  }

  async removeMany(names: Iterable<string>, retiredMs: (name: string) => number | null = () => null): Promise<number> {
    // A name listed twice is removed (and retired) once, at its first mention.
    const when = new Map<string, number | null>();
    for (const name of names) if (!when.has(name)) when.set(name, retiredMs(name));
    if (when.size === 0) return 0;
    const all = [...when];
    return this.db.tx(async (client) => {
      let removed = 0;
      for (const batch of chunks(all)) removed += await this.removeBatch(client, batch.map(([n]) => n), batch.map(([, ms]) => ms));
      return removed;
    });
  }

  /** Deletes the rows and retires (with the row's checksum) those with a time, in one statement; the number deleted. */
  private async removeBatch(on: Queryable, names: string[], retiredMs: (number | null)[]): Promise<number> {
    const row = await this.db.row<{ n: number }>(`WITH v AS (SELECT * FROM unnest($1::text[], $2::bigint[]) AS v (name, retired_ms)),
      gone AS (DELETE FROM files f USING v WHERE f.name = v.name RETURNING f.name, f.sha256, v.retired_ms),
      retired AS (INSERT INTO retired_names (name, sha256, retired_ms)
        SELECT name, sha256, retired_ms FROM gone WHERE retired_ms IS NOT NULL
        ON CONFLICT (name) DO UPDATE SET sha256 = EXCLUDED.sha256, retired_ms = EXCLUDED.retired_ms)
      SELECT count(*)::int AS n FROM gone`, [names, retiredMs], on);
    return row?.n ?? 0;
  }

  async touchMany(entries: Iterable<[string, number]>): Promise<void> {
    // The latest time per name (a time never moves backwards); names sorted so concurrent flushes lock rows in one order.
    const latest = new Map<string, number>();
    for (const [name, ms] of entries) latest.set(name, Math.max(ms, latest.get(name) ?? ms));
    if (latest.size === 0) return;
    const sorted = [...latest].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const touch = (on: Queryable, batch: [string, number][]) => this.db.run(`UPDATE files f SET accessed_ms = v.ms
      FROM unnest($1::text[], $2::bigint[]) AS v (name, ms) WHERE f.name = v.name AND f.accessed_ms < v.ms`,
    [batch.map(([n]) => n), batch.map(([, ms]) => ms)], on);
    await this.db.tx(async (client) => {
      for (const batch of chunks(sorted)) await touch(client, batch);
    });
  }

  async *names(): AsyncGenerator<string> {
    let after = '';
    for (;;) {
      const rows = await this.db.rows<{ name: string }>('SELECT name FROM files WHERE name > $1 ORDER BY name LIMIT $2', [after, PAGE]);
      for (const row of rows) yield row.name;
      if (rows.length < PAGE) return;
      after = rows[rows.length - 1].name;
    }
  }
}
