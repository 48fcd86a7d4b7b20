import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import type { MetadataIndex } from '../../src/index/index.js';
import { openIndex } from '../../src/index/open.js';
import { openPostgresIndex } from '../../src/index/postgres/postgres-index.js';
import { MIGRATIONS, PgIndexVersionError, SCHEMA_VERSION, schemaVersion } from '../../src/index/postgres/schema.js';
import { Db } from '../../src/index/postgres/db.js';
import { postgresRequirement, startPostgres, type PostgresCluster } from '../helpers/postgres.js';
import { file, indexContract } from './contract.js';

/**
 * The PostgreSQL engine (src/index/postgres/) on a real PostgreSQL 15 started
 * for this file (scripts/postgres-test-cluster.sh): the index contract, each
 * test on a database of its own; migrations; what a shared database adds.
 */
describe.runIf(postgresRequirement())('PostgreSQL index', () => {
  let cluster: PostgresCluster;
  beforeAll(async () => {
    cluster = await startPostgres();
  }, 180_000);
  afterAll(async () => {
    await cluster?.stop();
  }, 60_000);

  const config = (url: string) => ({ index: { engine: 'postgres' as const, url } });

  indexContract('postgres', async () => {
    const url = await cluster.newDatabase('contract');
    return {
      index: await openIndex(config(url), '/nonexistent'),
      // Another pool on the same database: another node.
      open: () => openIndex(config(url), '/nonexistent'),
      cleanup: async () => undefined,
    };
  });

  /** Runs SQL on a database as the test role (inspection only). */
  async function inspect<T extends pg.QueryResultRow>(url: string, text: string): Promise<T[]> {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query<T>(text)).rows;
    } finally {
      await client.end();
    }
  }

  describe('migrations', () => {
    it('a fresh database gets the whole schema at the current version; re-opening is a no-op', async () => {
      const url = await cluster.newDatabase('fresh');
      const pool = new pg.Pool({ connectionString: url });
      const db = new Db(pool);
      try {
        expect(await schemaVersion(db)).toBe(0);
        const index = await openPostgresIndex(url);
        expect(index.created).toBe(true);
        await index.files.put(file('pub/a/kept'));
        await index.close();
        expect(await schemaVersion(db)).toBe(SCHEMA_VERSION);
        const tables = await inspect<{ t: string }>(url, "SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1");
        expect(tables.map((r) => r.t)).toEqual([
          'eviction_runs', 'eviction_ticks', 'files', 'holds', 'name_claims', 'nanocdn_schema_version', 'nodes', 'retired_names', 'scrub_runs', 'tenant_hourly', 'totals', 'usage_samples',
        ]);
        const applied = await inspect<{ version: number }>(url, 'SELECT version FROM nanocdn_schema_version ORDER BY version');
        expect(applied.map((r) => r.version)).toEqual(MIGRATIONS.map((_, i) => i + 1));

        const again = await openPostgresIndex(url);
        expect(again.created).toBe(false);
        expect(await again.files.get('pub/a/kept')).toBeDefined();
        await again.close();
        expect((await inspect(url, 'SELECT version FROM nanocdn_schema_version')).length).toBe(SCHEMA_VERSION);
      } finally {
        await pool.end();
      }
    });

    it('eight nodes opening a fresh database at once: one migrates, all open, the schema is applied once', async () => {
      const url = await cluster.newDatabase('race');
      const opened = await Promise.all(Array.from({ length: 8 }, () => openPostgresIndex(url)));
      try {
        expect(opened.filter((i) => i.created).length).toBe(1);
        expect((await inspect(url, 'SELECT version FROM nanocdn_schema_version')).length).toBe(SCHEMA_VERSION);
        await opened[3].files.put(file('pub/a/x'));
        expect(await opened[6].files.get('pub/a/x')).toBeDefined();
      } finally {
        await Promise.all(opened.map((i) => i.close()));
      }
    });

    it('a database of a newer version is refused with a clear error (password not shown) and left as it was', async () => {
      const url = await cluster.newDatabase('newer');
      await (await openPostgresIndex(url)).close();
      await inspect(url, `INSERT INTO nanocdn_schema_version (version) VALUES (${SCHEMA_VERSION + 1})`);
      const err = await openPostgresIndex(url).then(() => null, (e: unknown) => e as Error);
      expect(err).toBeInstanceOf(PgIndexVersionError);
      expect(err!.message).toContain(`schema version ${SCHEMA_VERSION + 1}`);
      expect(err!.message).not.toContain(new URL(url).password);
      expect(err!.message).toContain('********');
      expect((await inspect(url, 'SELECT version FROM nanocdn_schema_version')).length).toBe(SCHEMA_VERSION + 1);
    });
  });

  describe('a shared database', () => {
    let url: string;
    const handles: MetadataIndex[] = [];
    beforeAll(async () => {
      url = await cluster.newDatabase('shared');
    });
    afterAll(async () => {
      await Promise.all(handles.splice(0).map((h) => h.close()));
    });

    it('names sort by bytes whatever the database locale (COLLATE "C"), as on SQLite', async () => {
      const index = await openPostgresIndex(url);
      handles.push(index);
      await index.files.putMany(['pub/a/b', 'pub/a/B', 'pub/a/_', 'pub/a/a', 'pub/a/Ä'].map((n) => file(n)));
      const names: string[] = [];
      for await (const name of index.files.names()) names.push(name);
      // UTF-8 byte order: "B" < "_" < "a" < "b" < "Ä" (0xC3 0x84).
      expect(names).toEqual(['pub/a/B', 'pub/a/_', 'pub/a/a', 'pub/a/b', 'pub/a/Ä']);
    });

    it('claims race across 6 pools (separate connections, separate server processes): exactly one of 60 wins', async () => {
      const pools = await Promise.all(Array.from({ length: 6 }, () => openPostgresIndex(url, { maxConnections: 10 })));
      handles.push(...pools);
      for (let round = 0; round < 3; round++) {
        const name = `pub/race/${round}`;
        const results = await Promise.all(Array.from({ length: 60 }, (_, i) => pools[i % pools.length].claims.claim(name, i)));
        expect(results.filter(Boolean).length).toBe(1);
      }
    });

    it('opening a database that does not answer fails within the connect timeout', async () => {
      const dead = new URL(url);
      dead.port = '1';
      const started = Date.now();
      const err = await openPostgresIndex(dead.toString(), { connectTimeoutMs: 500 }).then(() => null, (e: unknown) => e as Error);
      expect(err).toBeInstanceOf(Error);
      expect(err!.message).not.toContain(new URL(url).password);
      expect(Date.now() - started).toBeLessThan(30_000);
    });

    it('a transaction whose connection the server ends (PostgreSQL stopping) fails with 503, and the process lives on', async () => {
      const pool = new pg.Pool({ connectionString: url, max: 2 });
      pool.on('error', () => undefined);
      const db = new Db(pool);
      try {
        const err = await db.tx(async (client) => {
          await client.query('SELECT 1');
          // As a shutdown of the server does: the backend of this transaction is terminated under it.
          await inspect(url, 'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND datname = current_database() AND state LIKE \'idle in transaction%\'');
          await new Promise((resolve) => setTimeout(resolve, 200));
          await client.query('SELECT 1');
        }).then(() => null, (e: unknown) => e as Error & { status?: number });
        expect(err).not.toBeNull();
        expect(err!.status).toBe(503);
        // An 'error' event of the checked-out client without a listener would have ended this process by now.
        expect(await db.row<{ one: number }>('SELECT 1 AS one')).toEqual({ one: 1 });
      } finally {
        await pool.end();
      }
    });

    // Last in this file: it stops the server for a moment.
    it('while the server is stopped isOpen is false and queries fail (no crash on the broken idle connections); back by itself, no reopen', async () => {
      const index = await openPostgresIndex(url, { connectTimeoutMs: 1000 });
      handles.push(index);
      await index.files.put(file('pub/outage/before'));
      expect(await index.isOpen()).toBe(true);
      await cluster.pause();
      try {
        expect(await index.isOpen()).toBe(false);
        await expect(index.files.get('pub/outage/before')).rejects.toThrow();
        await expect(index.claims.claim('pub/outage/x', 1)).rejects.toThrow();
      } finally {
        await cluster.resume();
      }
      expect(await index.isOpen()).toBe(true);
      expect(await index.files.get('pub/outage/before')).toBeDefined();
      expect(await index.claims.claim('pub/outage/x', 1)).toBe(true);
    });
  });
});
