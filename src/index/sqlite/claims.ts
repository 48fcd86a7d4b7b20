import type Database from 'better-sqlite3';
import type { ClaimsPart, PendingClaim } from '../index.js';

interface Row { name: string; started_ms: number; upload_id: string | null }

/** One node per SQLite index: claims name no node and have no lease (they are swept by age). */
const toClaim = (row: Row): PendingClaim => ({ name: row.name, startedMs: row.started_ms, uploadId: row.upload_id, nodeId: null, leaseUntilMs: null });

/**
 * Claims in `s3_pending`, apart from `files` until the store confirms the
 * object. The primary key makes a concurrent claim of the same name fail;
 * a claim of an indexed name fails too, in the same transaction.
 */
export class SqliteClaims implements ClaimsPart {
  private readonly stmts;
  private readonly claimTx: (name: string, nowMs: number) => boolean;

  constructor(db: Database.Database) {
    this.stmts = {
      indexed: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM files WHERE name = ?'),
      insert: db.prepare<[string, number]>('INSERT INTO s3_pending (name, started_ms) VALUES (?, ?) ON CONFLICT (name) DO NOTHING'),
      get: db.prepare<[string], Row>('SELECT * FROM s3_pending WHERE name = ?'),
      setUploadId: db.prepare<[string, string]>('UPDATE s3_pending SET upload_id = ? WHERE name = ?'),
      remove: db.prepare<[string]>('DELETE FROM s3_pending WHERE name = ?'),
      all: db.prepare<[], Row>('SELECT * FROM s3_pending ORDER BY started_ms'),
    };
    this.claimTx = db.transaction((name: string, nowMs: number) =>
      !this.stmts.indexed.get(name) && this.stmts.insert.run(name, nowMs).changes > 0);
  }

  async claim(name: string, nowMs: number): Promise<boolean> {
    return this.claimTx(name, nowMs);
  }

  async get(name: string): Promise<PendingClaim | undefined> {
    const row = this.stmts.get.get(name);
    return row ? toClaim(row) : undefined;
  }

  async setUploadId(name: string, uploadId: string): Promise<void> {
    this.stmts.setUploadId.run(uploadId, name);
  }

  async release(name: string): Promise<void> {
    this.stmts.remove.run(name);
  }

  async all(): Promise<PendingClaim[]> {
    return this.stmts.all.all().map(toClaim);
  }
}
