import type Database from 'better-sqlite3';
import { HttpError } from '../errors.js';

/** One claimed name whose upload has not been confirmed by the store. */
export interface PendingClaim {
  name: string;
  startedMs: number;
  /** The multipart upload id, once the store gave one. */
  uploadId: string | null;
}

interface Row { name: string; started_ms: number; upload_id: string | null }

const SCHEMA = `
CREATE TABLE IF NOT EXISTS s3_pending (
  name TEXT PRIMARY KEY,
  started_ms INTEGER NOT NULL,
  upload_id TEXT
) WITHOUT ROWID;
`;

/**
 * Create-only names without a create-only store: S3 (and Swift's s3api) has
 * no rename and no conditional PUT, so a name is claimed in the index
 * *before* its upload starts. The primary key makes a concurrent upload of
 * the same name fail at once with `exists`. The row lives in its own table,
 * apart from `files`, until the store confirms the object; rows left by a
 * crash are found by age and cleaned up by the engine's sweep.
 */
export class PendingClaims {
  private readonly stmts;

  constructor(private readonly db: Database.Database) {
    db.exec(SCHEMA);
    this.stmts = {
      committed: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM files WHERE name = ?'),
      insert: db.prepare<[string, number]>('INSERT INTO s3_pending (name, started_ms) VALUES (?, ?)'),
      get: db.prepare<[string], Row>('SELECT * FROM s3_pending WHERE name = ?'),
      setUploadId: db.prepare<[string, string]>('UPDATE s3_pending SET upload_id = ? WHERE name = ?'),
      remove: db.prepare<[string]>('DELETE FROM s3_pending WHERE name = ?'),
      all: db.prepare<[], Row>('SELECT * FROM s3_pending ORDER BY started_ms'),
    };
  }

  /** Claims `name`, or throws `exists` when it is committed (files row) or claimed by another upload. */
  claim(name: string, nowMs: number): void {
    this.db.transaction(() => {
      if (this.stmts.committed.get(name)) throw new HttpError('exists', undefined, { name });
      try {
        this.stmts.insert.run(name, nowMs);
      } catch (err) {
        if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') throw new HttpError('exists', undefined, { name });
        throw err;
      }
    })();
  }

  get(name: string): PendingClaim | undefined {
    const row = this.stmts.get.get(name);
    return row ? toClaim(row) : undefined;
  }

  setUploadId(name: string, uploadId: string): void {
    this.stmts.setUploadId.run(uploadId, name);
  }

  /** Drops the claim: the upload was confirmed (the files row follows) or cleaned up. */
  release(name: string): void {
    this.stmts.remove.run(name);
  }

  all(): PendingClaim[] {
    return this.stmts.all.all().map(toClaim);
  }
}

const toClaim = (row: Row): PendingClaim => ({ name: row.name, startedMs: row.started_ms, uploadId: row.upload_id });
