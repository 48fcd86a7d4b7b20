import type { Pool, PoolClient, QueryResultRow } from 'pg';
import { HttpError, isHttpError } from '../../errors.js';

/** Something that runs a query: the pool, or one client inside a transaction. */
export type Queryable = Pick<Pool, 'query'> | PoolClient;

/**
 * Advisory lock keys of the index (one bigint each, as decimal strings): one
 * place, so that no two uses of pg_advisory_lock pick the same key.
 */
export const ADVISORY = {
  /** Held (per transaction) while the schema is checked and migrated: nodes starting at once migrate one after the other. */
  migrate: '7953849100000000001',
  /** Held (per transaction) while a run is recorded, so run ids become visible in the order they were given (RunsPart.since). */
  runs: '7953849100000000002',
  /** Held (per transaction) while a hold is checked and written: admissions of every node, one at a time. */
  holds: '7953849100000000003',
} as const;

/** The eviction lock, a session lock (two int4 keys: pg_locks shows them as classid, objid). */
export const EVICTION_LOCK = { classid: 795384910, objid: 4 } as const;

/** Deadlock and serialization failures: the transaction did nothing and may simply run again. */
const RETRYABLE = new Set(['40P01', '40001']);
const ATTEMPTS = 4;

/** The pool with the few shapes of query the parts use. */
export class Db {
  constructor(readonly pool: Pool) {}

  async rows<T extends QueryResultRow>(text: string, values: unknown[] = [], on: Queryable = this.pool): Promise<T[]> {
    return (await on.query<T>(text, values).catch(translatePgError)).rows;
  }

  async row<T extends QueryResultRow>(text: string, values: unknown[] = [], on: Queryable = this.pool): Promise<T | undefined> {
    return (await on.query<T>(text, values).catch(translatePgError)).rows[0];
  }

  /** The number of rows the statement changed. */
  async run(text: string, values: unknown[] = [], on: Queryable = this.pool): Promise<number> {
    return (await on.query(text, values).catch(translatePgError)).rowCount ?? 0;
  }

  /**
   * Runs `fn` in one transaction on one client: all or nothing. A deadlock
   * or serialization failure (another node changed the same rows in another
   * order) rolls back and runs it again, a few times.
   */
  async tx<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    return this.txOnce(fn).catch(translatePgError);
  }

  private async txOnce<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.pool.connect();
      let broken: Error | undefined;
      // A checked-out client has no listener of the pool's: when the server ends its connection (PostgreSQL
      // stopping or restarting) its 'error' event would end the process. The query in flight fails by itself.
      const onError = (err: Error) => { broken = err; };
      client.on('error', onError);
      try {
        await client.query('BEGIN');
        const out = await fn(client);
        await client.query('COMMIT');
        return out;
      } catch (err) {
        await client.query('ROLLBACK').catch((rollbackErr: unknown) => { broken = rollbackErr as Error; });
        if (attempt < ATTEMPTS && RETRYABLE.has((err as { code?: string }).code ?? '')) continue;
        throw err;
      } finally {
        client.off('error', onError);
        // A client whose connection broke, or whose ROLLBACK failed, is not given out again.
        client.release(broken);
      }
    }
  }
}

/** Node's socket errors met when the server is down, restarting or unreachable. */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE']);
/** SQLSTATEs of a server that cannot serve now: class 08 (connection), shutting down, starting up, too many connections. */
const UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '53300']);
/** What node-postgres and its pool say when the connection is gone or never came. */
const UNAVAILABLE_MESSAGES = /timeout exceeded when trying to connect|Connection terminated|connection error and is not queryable|Client was closed|Cannot use a pool after calling end/i;

/** True when `err` says the database cannot be reached (not that a statement was wrong). */
export function isUnavailable(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  return SOCKET_CODES.has(code) || UNAVAILABLE_STATES.has(code) || code.startsWith('08') ||
    (typeof e?.message === 'string' && UNAVAILABLE_MESSAGES.test(e.message));
}

/**
 * The index boundary's error translation (docs/design.md §4, §15): a
 * database that cannot be reached is `503 store_unavailable` with
 * Retry-After, whatever asked (an upload, a delete, a read); anything else
 * (a bug, a constraint) is thrown unchanged.
 */
export function translatePgError(err: unknown): never {
  if (isHttpError(err) || !isUnavailable(err)) throw err;
  throw new HttpError('store_unavailable',
    `The index database (PostgreSQL) cannot be reached (${(err as Error).message}); nothing was changed. Retry after Retry-After seconds.`,
    { store: 'index' }, { 'Retry-After': '5' });
}
