import type { Pool, PoolClient, QueryResultRow } from 'pg';

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

/** Deadlock and serialization failures: the transaction did nothing and may simply run again. */
const RETRYABLE = new Set(['40P01', '40001']);
const ATTEMPTS = 4;

/** The pool with the few shapes of query the parts use. */
export class Db {
  constructor(readonly pool: Pool) {}

  async rows<T extends QueryResultRow>(text: string, values: unknown[] = [], on: Queryable = this.pool): Promise<T[]> {
    return (await on.query<T>(text, values)).rows;
  }

  async row<T extends QueryResultRow>(text: string, values: unknown[] = [], on: Queryable = this.pool): Promise<T | undefined> {
    return (await on.query<T>(text, values)).rows[0];
  }

  /** The number of rows the statement changed. */
  async run(text: string, values: unknown[] = [], on: Queryable = this.pool): Promise<number> {
    return (await on.query(text, values)).rowCount ?? 0;
  }

  /**
   * Runs `fn` in one transaction on one client: all or nothing. A deadlock
   * or serialization failure (another node changed the same rows in another
   * order) rolls back and runs it again, a few times.
   */
  async tx<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.pool.connect();
      let broken: Error | undefined;
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
        // A client whose ROLLBACK failed is not given out again.
        client.release(broken);
      }
    }
  }
}
