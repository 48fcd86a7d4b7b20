import type { ClaimsPart, PendingClaim } from '../index.js';
import type { Db } from './db.js';

interface Row { name: string; started_ms: number; upload_id: string | null }

const toClaim = (row: Row): PendingClaim => ({ name: row.name, startedMs: row.started_ms, uploadId: row.upload_id });

/**
 * Claims in `name_claims`, apart from `files` until the store confirms the
 * object. A claim is one row under the primary key, taken in one statement
 * (INSERT … ON CONFLICT DO NOTHING): of any number of racing claimers, on any
 * number of nodes, exactly one inserts it. A name with a `files` row is not
 * claimed either: its row is written before its claim is released, so a
 * claimer that finds no claim and no row really is first.
 */
export class PgClaims implements ClaimsPart {
  constructor(private readonly db: Db) {}

  async claim(name: string, nowMs: number): Promise<boolean> {
    return await this.db.run(`INSERT INTO name_claims (name, started_ms)
      SELECT $1::text, $2::bigint WHERE NOT EXISTS (SELECT 1 FROM files WHERE name = $1::text)
      ON CONFLICT (name) DO NOTHING`, [name, nowMs]) > 0;
  }

  async get(name: string): Promise<PendingClaim | undefined> {
    const row = await this.db.row<Row>('SELECT name, started_ms, upload_id FROM name_claims WHERE name = $1', [name]);
    return row ? toClaim(row) : undefined;
  }

  async setUploadId(name: string, uploadId: string): Promise<void> {
    await this.db.run('UPDATE name_claims SET upload_id = $1 WHERE name = $2', [uploadId, name]);
  }

  async release(name: string): Promise<void> {
    await this.db.run('DELETE FROM name_claims WHERE name = $1', [name]);
  }

  async all(): Promise<PendingClaim[]> {
    return (await this.db.rows<Row>('SELECT name, started_ms, upload_id FROM name_claims ORDER BY started_ms, name')).map(toClaim);
  }
}
