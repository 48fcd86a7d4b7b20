/**
 * The index schema exactly as the releases before versioned migrations wrote
 * it (user_version 0), statement by statement and module by module, copied
 * from src/index/file-index.ts, src/eviction/candidates.ts,
 * src/eviction/run-log.ts, src/monitoring/usage-history.ts and
 * src/storage/s3-pending.ts as of commit 32f78b4. Never edit: it is what
 * deployed nodes have on disk.
 */

/** FileIndex: files, totals and their triggers. */
export const LEGACY_FILE_INDEX = `
CREATE TABLE IF NOT EXISTS files (
  name TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  class TEXT NOT NULL,
  size INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  accessed_ms INTEGER NOT NULL,
  expires_ms INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS files_lru ON files (class, tenant, accessed_ms, created_ms);
CREATE INDEX IF NOT EXISTS files_expiry ON files (expires_ms) WHERE expires_ms IS NOT NULL;

-- Per tenant and class totals, kept exact by triggers so /usage never scans.
CREATE TABLE IF NOT EXISTS totals (
  tenant TEXT NOT NULL,
  class TEXT NOT NULL,
  files INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  PRIMARY KEY (tenant, class)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS files_ins AFTER INSERT ON files BEGIN
  INSERT INTO totals (tenant, class, files, bytes) VALUES (NEW.tenant, NEW.class, 1, NEW.size)
  ON CONFLICT (tenant, class) DO UPDATE SET files = files + 1, bytes = bytes + NEW.size;
END;
CREATE TRIGGER IF NOT EXISTS files_del AFTER DELETE ON files BEGIN
  UPDATE totals SET files = files - 1, bytes = bytes - OLD.size WHERE tenant = OLD.tenant AND class = OLD.class;
  DELETE FROM totals WHERE tenant = OLD.tenant AND class = OLD.class AND files <= 0;
END;
CREATE TRIGGER IF NOT EXISTS files_upd AFTER UPDATE OF size, tenant, class ON files BEGIN
  UPDATE totals SET files = files - 1, bytes = bytes - OLD.size WHERE tenant = OLD.tenant AND class = OLD.class;
  DELETE FROM totals WHERE tenant = OLD.tenant AND class = OLD.class AND files <= 0;
  INSERT INTO totals (tenant, class, files, bytes) VALUES (NEW.tenant, NEW.class, 1, NEW.size)
  ON CONFLICT (tenant, class) DO UPDATE SET files = files + 1, bytes = bytes + NEW.size;
END;
`;

/** CandidateQueries (every node: the evictor is always built). */
export const LEGACY_CANDIDATES = 'CREATE INDEX IF NOT EXISTS files_global_lru ON files (accessed_ms, created_ms, name)';

/** RunLog (every node). */
export const LEGACY_RUN_LOG = `CREATE TABLE IF NOT EXISTS eviction_runs (
      id INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL, reason TEXT NOT NULL,
      files INTEGER NOT NULL, bytes INTEGER NOT NULL, duration_ms INTEGER NOT NULL, error TEXT)`;

/** UsageHistory (every node). */
export const LEGACY_USAGE_HISTORY = `
CREATE TABLE IF NOT EXISTS usage_samples (
  at_ms INTEGER PRIMARY KEY,
  used_bytes INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tenant_hourly (
  hour_ms INTEGER NOT NULL,
  tenant TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  PRIMARY KEY (hour_ms, tenant)
) WITHOUT ROWID;
`;

/** PendingClaims (only nodes on the s3 engine). */
export const LEGACY_S3_PENDING = `
CREATE TABLE IF NOT EXISTS s3_pending (
  name TEXT PRIMARY KEY,
  started_ms INTEGER NOT NULL,
  upload_id TEXT
) WITHOUT ROWID;
`;
