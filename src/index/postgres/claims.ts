import type { ClaimsPart, PendingClaim } from '../index.js';
import type { Db } from './db.js';

interface Row { name: string; started_ms: number; upload_id: string | null; node_id: string | null; lease_until_ms: number | null }

const toClaim = (row: Row): PendingClaim => ({
  name: row.name, startedMs: row.started_ms, uploadId: row.upload_id, nodeId: row.node_id, leaseUntilMs: row.lease_until_ms,
});

/** A claim with the lease of its node (none: the node left, or its row was dropped when its lease ended). */
const SELECT = `SELECT c.name, c.started_ms, c.upload_id, c.node_id, n.lease_until_ms
  FROM name_claims c LEFT JOIN nodes n ON n.id = c.node_id`;

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

  async claim(name: string, nowMs: number, nodeId: string | null = null): Promise<boolean> {
    return await this.db.run(`INSERT INTO name_claims (name, started_ms, node_id)
      SELECT $1::text, $2::bigint, $3::text WHERE NOT EXISTS (SELECT 1 FROM files WHERE name = $1::text)
      ON CONFLICT (name) DO NOTHING`, [name, nowMs, nodeId]) > 0;
  }

  async get(name: string): Promise<PendingClaim | undefined> {
    const row = await this.db.row<Row>(`${SELECT} WHERE c.name = $1`, [name]);
    return row ? toClaim(row) : undefined;
  }

  async setUploadId(name: string, uploadId: string): Promise<void> {
    await this.db.run('UPDATE name_claims SET upload_id = $1 WHERE name = $2', [uploadId, name]);
  }

  async release(name: string): Promise<void> {
    await this.db.run('DELETE FROM name_claims WHERE name = $1', [name]);
  }

  async all(): Promise<PendingClaim[]> {
    return (await this.db.rows<Row>(`${SELECT} ORDER BY c.started_ms, c.name`)).map(toClaim);
  }
}
