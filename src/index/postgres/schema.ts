import type { PoolClient } from 'pg';
import { ADVISORY, type Db } from './db.js';

/** One migration: statements run on the client of the migrating transaction. */
type Migration = (client: PoolClient) => Promise<void>;

/**
 * Version 1: the schema of the SQLite engine at its version 3 (files, totals
 * kept by a trigger, usage history, eviction and scrub run logs, name claims,
 * retired names), in PostgreSQL's terms. Names and tenants are `COLLATE "C"`:
 * byte order, as in SQLite, whatever the database's locale, so the keyset
 * pages and "in name order" mean the same on both engines.
 */
const v1: Migration = async (client) => {
  await client.query(`
CREATE TABLE files (
  name TEXT COLLATE "C" PRIMARY KEY,
  tenant TEXT COLLATE "C" NOT NULL,
  class TEXT COLLATE "C" NOT NULL,
  size BIGINT NOT NULL,
  sha256 TEXT NOT NULL,
  created_ms BIGINT NOT NULL,
  accessed_ms BIGINT NOT NULL,
  expires_ms BIGINT
);
-- LRU per tenant and class; expiry; LRU across tenants and classes; age per class in name order.
CREATE INDEX files_lru ON files (class, tenant, accessed_ms, created_ms, name);
CREATE INDEX files_expiry ON files (expires_ms, name) WHERE expires_ms IS NOT NULL;
CREATE INDEX files_global_lru ON files (accessed_ms, created_ms, name);
CREATE INDEX files_class_name ON files (class, name);

-- Per tenant and class totals, kept exact by the trigger so /usage never scans.
CREATE TABLE totals (
  tenant TEXT COLLATE "C" NOT NULL,
  class TEXT COLLATE "C" NOT NULL,
  files BIGINT NOT NULL,
  bytes BIGINT NOT NULL,
  PRIMARY KEY (tenant, class)
);
CREATE FUNCTION nanocdn_totals_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    UPDATE totals SET files = files - 1, bytes = bytes - OLD.size WHERE tenant = OLD.tenant AND class = OLD.class;
    DELETE FROM totals WHERE tenant = OLD.tenant AND class = OLD.class AND files <= 0;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO totals (tenant, class, files, bytes) VALUES (NEW.tenant, NEW.class, 1, NEW.size)
    ON CONFLICT (tenant, class) DO UPDATE SET files = totals.files + 1, bytes = totals.bytes + EXCLUDED.bytes;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER files_totals AFTER INSERT OR DELETE ON files FOR EACH ROW EXECUTE FUNCTION nanocdn_totals_follow();
CREATE TRIGGER files_totals_upd AFTER UPDATE OF size, tenant, class ON files FOR EACH ROW
  WHEN (OLD.size <> NEW.size OR OLD.tenant <> NEW.tenant OR OLD.class <> NEW.class)
  EXECUTE FUNCTION nanocdn_totals_follow();

CREATE TABLE usage_samples (
  at_ms BIGINT PRIMARY KEY,
  used_bytes BIGINT NOT NULL
);
CREATE TABLE tenant_hourly (
  hour_ms BIGINT NOT NULL,
  tenant TEXT COLLATE "C" NOT NULL,
  bytes BIGINT NOT NULL,
  PRIMARY KEY (hour_ms, tenant)
);

CREATE TABLE eviction_runs (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at_ms BIGINT NOT NULL,
  reason TEXT NOT NULL,
  files BIGINT NOT NULL,
  bytes BIGINT NOT NULL,
  duration_ms BIGINT NOT NULL,
  error TEXT,
  by_reason JSONB
);
CREATE INDEX eviction_runs_removed ON eviction_runs (id) WHERE files > 0;
CREATE INDEX eviction_runs_succeeded ON eviction_runs (id) WHERE error IS NULL;

CREATE TABLE scrub_runs (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at_ms BIGINT NOT NULL,
  duration_ms BIGINT NOT NULL,
  files BIGINT NOT NULL,
  bytes BIGINT NOT NULL,
  corrupt BIGINT NOT NULL,
  missing BIGINT NOT NULL,
  quarantined BIGINT NOT NULL
);

-- A name claimed by an upload the store has not confirmed yet: one row per name.
CREATE TABLE name_claims (
  name TEXT COLLATE "C" PRIMARY KEY,
  started_ms BIGINT NOT NULL,
  upload_id TEXT
);
CREATE INDEX name_claims_age ON name_claims (started_ms);

CREATE TABLE retired_names (
  name TEXT COLLATE "C" PRIMARY KEY,
  sha256 TEXT NOT NULL,
  retired_ms BIGINT NOT NULL
);
CREATE INDEX retired_names_age ON retired_names (retired_ms);
`);
};

/**
 * Version 2: the nodes of a cluster and the holds of their uploads in flight
 * (docs/design.md §14, §15). A node renews its lease every few seconds;
 * its holds and name claims count only while its lease runs, so a node
 * that dies stops holding space within one lease without anyone removing a
 * row first.
 */
const v2: Migration = async (client) => {
  await client.query(`
CREATE TABLE nodes (
  id TEXT COLLATE "C" PRIMARY KEY,
  started_ms BIGINT NOT NULL,
  lease_until_ms BIGINT NOT NULL
);
-- One row per upload in flight on any node: the bytes it may write, against the capacity and its tenant's quota.
CREATE TABLE holds (
  id TEXT COLLATE "C" PRIMARY KEY,
  node_id TEXT COLLATE "C" NOT NULL,
  tenant TEXT COLLATE "C" NOT NULL,
  class TEXT COLLATE "C" NOT NULL,
  bytes BIGINT NOT NULL
);
CREATE INDEX holds_node ON holds (node_id);
CREATE INDEX holds_tenant ON holds (tenant, class);
-- The node whose upload took a claim (null: a node before version 2).
ALTER TABLE name_claims ADD COLUMN node_id TEXT COLLATE "C";
`);
};

/**
 * Version 3: the scheduled eviction ticks of a cluster (docs/design.md
 * §15): the node whose insert of a tick's row wins runs that tick.
 */
const v3: Migration = async (client) => {
  await client.query(`
CREATE TABLE eviction_ticks (
  tick_ms BIGINT PRIMARY KEY,
  node_id TEXT COLLATE "C",
  claimed_ms BIGINT NOT NULL
);
`);
};

/** Migration n (1-based) takes a database from version n − 1 to n. Append only; never edit a released one. */
export const MIGRATIONS: readonly Migration[] = [v1, v2, v3];

/** The schema version this code writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** The database was written by a newer nanocdn: refusing beats guessing. */
export class PgIndexVersionError extends Error {
  constructor(where: string, version: number) {
    super(`The index database ${where} has schema version ${version}; this nanocdn knows versions up to ${SCHEMA_VERSION}. ` +
      'Run the newer nanocdn that wrote it (every node of a cluster runs the same version, upgraded together).');
    this.name = 'IndexVersionError';
  }
}

/** The applied migrations, one row each: the version is the highest. */
const VERSION_TABLE = `CREATE TABLE IF NOT EXISTS nanocdn_schema_version (
  version INTEGER PRIMARY KEY,
  applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)`;

async function versionOf(client: PoolClient): Promise<number> {
  return (await client.query<{ v: number }>('SELECT COALESCE(MAX(version), 0) AS v FROM nanocdn_schema_version')).rows[0].v;
}

/**
 * Brings the database to SCHEMA_VERSION, one migration per transaction, each
 * under an advisory transaction lock: nodes that start at once migrate one
 * after the other, and the later ones find the work done. True when this
 * open created the schema (the database held no nanocdn tables). Throws
 * PgIndexVersionError when the database is newer than this code.
 */
export async function migrate(db: Db, where: string): Promise<boolean> {
  let created = false;
  for (;;) {
    const done = await db.tx(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1)', [ADVISORY.migrate]);
      await client.query(VERSION_TABLE);
      const version = await versionOf(client);
      if (version > SCHEMA_VERSION) throw new PgIndexVersionError(where, version);
      if (version === SCHEMA_VERSION) return true;
      if (version === 0) created = true;
      await MIGRATIONS[version](client);
      await client.query('INSERT INTO nanocdn_schema_version (version) VALUES ($1)', [version + 1]);
      return version + 1 === SCHEMA_VERSION;
    });
    if (done) return created;
  }
}

/** The schema version of the database (0: none yet); changes nothing. */
export async function schemaVersion(db: Db): Promise<number> {
  const table = await db.row<{ t: string | null }>("SELECT to_regclass('nanocdn_schema_version')::text AS t");
  if (!table?.t) return 0;
  return (await db.row<{ v: number }>('SELECT COALESCE(MAX(version), 0) AS v FROM nanocdn_schema_version'))!.v;
}
