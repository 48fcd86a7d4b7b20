import pg from 'pg';
import { maskUrlPassword } from '../../config/mask.js';
import type { MetadataIndex } from '../index.js';
import { PgCandidates } from './candidates.js';
import { PgClaims } from './claims.js';
import { Db } from './db.js';
import { PgClusterEviction } from './eviction.js';
import { PgFiles } from './files.js';
import { PgHistory } from './history.js';
import { PgHolds } from './holds.js';
import { PgRetired } from './retired.js';
import { PgRuns } from './runs.js';
import { migrate } from './schema.js';
import { PgScrubs } from './scrubs.js';
import { PgTotals } from './totals.js';

export interface PostgresIndexOptions {
  /** Connections of the pool (default 10). */
  maxConnections?: number;
  /** How long a query waits for a connection before it fails (default 5 s): a node whose database is gone answers 503 instead of hanging. */
  connectTimeoutMs?: number;
}

/** bigint (int8) columns as numbers: sizes and epoch milliseconds stay far below 2^53. */
const INT8 = 20;
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === INT8 && format !== 'binary'
    ? (value: string) => Number(value)
    : pg.types.getTypeParser(oid, format) as (value: string) => unknown)) as typeof pg.types.getTypeParser,
};

/**
 * The metadata index in a PostgreSQL database shared by every node of a
 * cluster (node-postgres, one pool per process). Opening migrates the schema
 * to this code's version (schema.ts); `created` is true when this open
 * created it, so the node rebuilds the index from the store.
 */
export async function openPostgresIndex(url: string, options: PostgresIndexOptions = {}): Promise<MetadataIndex> {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    application_name: 'nanocdn',
    types,
  });
  // An idle connection that breaks (the server restarted) is dropped by the
  // pool, which emits it here; without a listener it would end the process.
  // The next query opens a new connection or reports the failure itself.
  pool.on('error', () => undefined);
  const db = new Db(pool);
  let created: boolean;
  try {
    created = await migrate(db, maskUrlPassword(url));
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
  let closed = false;
  return {
    files: new PgFiles(db),
    totals: new PgTotals(db),
    candidates: new PgCandidates(db),
    history: new PgHistory(db),
    runs: new PgRuns(db),
    claims: new PgClaims(db),
    retired: new PgRetired(db),
    scrubs: new PgScrubs(db),
    holds: new PgHolds(db),
    eviction: new PgClusterEviction(db, url),
    created,
    isOpen: async () => !closed && await pool.query('SELECT 1').then(() => true, () => false),
    close: async () => {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
}
