import type Database from 'better-sqlite3';

/**
 * Version 1: the schema as the first releases wrote it, table by table, with
 * IF NOT EXISTS throughout, so that it also adopts a database those releases
 * left (user_version 0, any subset of these tables present).
 */
const V1 = `
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
-- LRU across tenants and classes (low disk, class totals, the cleanup command).
CREATE INDEX IF NOT EXISTS files_global_lru ON files (accessed_ms, created_ms, name);

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

CREATE TABLE IF NOT EXISTS eviction_runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL, reason TEXT NOT NULL,
  files INTEGER NOT NULL, bytes INTEGER NOT NULL, duration_ms INTEGER NOT NULL, error TEXT);

CREATE TABLE IF NOT EXISTS s3_pending (
  name TEXT PRIMARY KEY,
  started_ms INTEGER NOT NULL,
  upload_id TEXT
) WITHOUT ROWID;
`;

/**
 * Retired pub names (docs/design.md §2): a removed pub name keeps the
 * checksum it was served with, so that other bytes are refused under it
 * while caches may still hold the old ones. Self-contained: it only adds.
 */
const RETIRED_NAMES = `
CREATE TABLE IF NOT EXISTS retired_names (
  name TEXT PRIMARY KEY,
  sha256 TEXT NOT NULL,
  retired_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS retired_names_age ON retired_names (retired_ms);
`;

/**
 * The eviction run log says what each run removed per eviction
 * reason (so the serving node counts the runs of other processes, e.g.
 * `nanocdn cleanup`, in its counters), and `nanocdn scrub` records its runs.
 */
const RUN_LOG_AND_SCRUBS = `
ALTER TABLE eviction_runs ADD COLUMN by_reason TEXT;
CREATE INDEX eviction_runs_removed ON eviction_runs (id) WHERE files > 0;
CREATE INDEX eviction_runs_succeeded ON eviction_runs (id) WHERE error IS NULL;

CREATE TABLE scrub_runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at_ms INTEGER NOT NULL,
  duration_ms INTEGER NOT NULL,
  files INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  corrupt INTEGER NOT NULL,
  missing INTEGER NOT NULL,
  quarantined INTEGER NOT NULL
);
`;

/** Migration n (1-based) takes a database from user_version n − 1 to n. Append only; never edit a released one. */
export const MIGRATIONS: readonly string[] = [V1, RETIRED_NAMES, RUN_LOG_AND_SCRUBS];

/** The schema version this code writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** The database was written by a newer nanocdn: refusing beats guessing. */
export class IndexVersionError extends Error {
  constructor(file: string, version: number) {
    super(`The index ${file} has schema version ${version}; this nanocdn knows versions up to ${SCHEMA_VERSION}. ` +
      'Run the newer nanocdn that wrote it, or move the index aside: the node rebuilds it from the stored files (access times and usage history are lost).');
    this.name = 'IndexVersionError';
  }
}

export function schemaVersion(db: Database.Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/** Brings the database to SCHEMA_VERSION, one migration per transaction; throws IndexVersionError when it is newer. */
export function migrate(db: Database.Database, file: string): void {
  checkVersion(db, file);
  while (schemaVersion(db) < SCHEMA_VERSION) {
    // IMMEDIATE: two processes opening the same old index migrate one after the other.
    const done = db.transaction(() => {
      const version = schemaVersion(db);
      if (version > SCHEMA_VERSION) throw new IndexVersionError(file, version);
      if (version === SCHEMA_VERSION) return true;
      db.exec(MIGRATIONS[version]);
      db.pragma(`user_version = ${version + 1}`);
      return false;
    }).immediate();
    if (done) return;
  }
}

/** Throws IndexVersionError when the database is newer than this code. */
export function checkVersion(db: Database.Database, file: string): void {
  const version = schemaVersion(db);
  if (version > SCHEMA_VERSION) throw new IndexVersionError(file, version);
}
