import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StorageClass } from '../../src/classes.js';
import type { HttpError } from '../../src/errors.js';
import type { MetadataIndex } from '../../src/index/index.js';
import { openIndex } from '../../src/index/open.js';
import { SharedLedger } from '../../src/accounting/shared-ledger.js';
import type { TenantLimits } from '../../src/accounting/tenant-rates.js';
import { silentLogger } from '../../src/logger.js';
import { postgresRequirement, startPostgres, type PostgresCluster } from '../helpers/postgres.js';

/**
 * The ledger of nodes that share one PostgreSQL (docs/design.md §15): each
 * "node" here is its own pool and SharedLedger on one real database, as
 * separate processes would be. What is proven is what a single node cannot
 * show: capacity, quotas and in-flight limits hold across nodes admitting at
 * once, a node's holds end with its lease, and a lost database is a 503.
 */

const MiB = 1 << 20;
const PLAIN: StorageClass = { name: 'default', match: [], evictable: false, maxAge: null, maxIdle: null, maxBytes: null, maxBytesPerTenant: null };
const QUOTA: StorageClass = { ...PLAIN, name: 'tickets', maxBytesPerTenant: 10 * MiB };
const NO_LIMITS: TenantLimits = { uploadsPerMinute: null, bytesPerMinute: null, inflightUploads: null, inflightBytes: null };

describe.runIf(postgresRequirement())('SharedLedger on PostgreSQL', () => {
  let cluster: PostgresCluster;
  const opened: { index: MetadataIndex; ledger: SharedLedger }[] = [];
  beforeAll(async () => {
    cluster = await startPostgres();
  }, 180_000);
  afterAll(async () => {
    for (const { index, ledger } of opened) {
      await ledger.stop();
      await index.close();
    }
    await cluster?.stop();
  }, 60_000);

  /** N nodes on one new database: capacity 100 MiB, reserve 10 MiB. */
  async function nodes(n: number, options: { limits?: TenantLimits; leaseMs?: number; now?: () => number } = {}): Promise<{ url: string; ledgers: SharedLedger[]; indexes: MetadataIndex[] }> {
    const url = await cluster.newDatabase('shared');
    const ledgers: SharedLedger[] = [];
    const indexes: MetadataIndex[] = [];
    for (let i = 0; i < n; i++) {
      const index = await openIndex({ index: { engine: 'postgres', url } }, '/nonexistent');
      const ledger = new SharedLedger({
        holds: index.holds!, now: options.now ?? Date.now, logger: silentLogger(), limits: () => options.limits ?? NO_LIMITS,
        makeRoom: async () => undefined, leaseMs: options.leaseMs,
        room: () => ({ capacityBytes: 100 * MiB, reserveBytes: 10 * MiB, roomBytes: 90 * MiB }),
      });
      await ledger.start();
      opened.push({ index, ledger });
      ledgers.push(ledger);
      indexes.push(index);
    }
    return { url, ledgers, indexes };
  }

  const codeOf = (result: PromiseSettledResult<unknown>) => (result.status === 'rejected' ? (result.reason as HttpError).code : 'admitted');

  it('3 nodes admitting 30 uploads of 10 MiB at once: exactly 9 fit the 90 MiB of room, the rest 507 insufficient_storage', async () => {
    const { ledgers } = await nodes(3);
    const results = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => ledgers[i % 3].admit({ tenant: `t${i}`, cls: PLAIN, declaredBytes: 10 * MiB })));
    const codes = results.map(codeOf);
    expect(codes.filter((c) => c === 'admitted')).toHaveLength(9);
    expect(codes.filter((c) => c === 'insufficient_storage')).toHaveLength(21);
    const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect((refused.reason as HttpError).headers['Retry-After']).toBe('60');
    // Once they end, the room is back for anyone.
    for (const r of results) if (r.status === 'fulfilled') (r.value as { commit(): void }).commit();
    await new Promise((resolve) => setTimeout(resolve, 200));
    await expect(ledgers[1].admit({ tenant: 'x', cls: PLAIN, declaredBytes: 90 * MiB })).resolves.toBeDefined();
  });

  it('a tenant quota holds across nodes: 2 MiB stored and 12 concurrent 2 MiB uploads into a 10 MiB quota: 4 are admitted', async () => {
    const { ledgers, indexes } = await nodes(3);
    await indexes[0].files.put({ name: 'pub/acme/tickets/old.pdf', tenant: 'acme', class: 'tickets', size: 2 * MiB, sha256: 'a'.repeat(64), createdMs: 1, accessedMs: 1, expiresMs: null });
    const results = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => ledgers[i % 3].admit({ tenant: 'acme', cls: QUOTA, declaredBytes: 2 * MiB })));
    const codes = results.map(codeOf);
    expect(codes.filter((c) => c === 'admitted')).toHaveLength(4);
    expect(codes.filter((c) => c === 'quota_exceeded')).toHaveLength(8);
    const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect((refused.reason as HttpError).details).toMatchObject({ tenant: 'acme', class: 'tickets', quotaBytes: 10 * MiB, inflightBytes: 8 * MiB, usedBytes: 10 * MiB });
  });

  it('limits.tenant.inflightUploads counts the uploads of every node', async () => {
    const { ledgers } = await nodes(2, { limits: { ...NO_LIMITS, inflightUploads: 3 } });
    const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => ledgers[i % 2].admit({ tenant: 'acme', cls: PLAIN, declaredBytes: MiB })));
    expect(results.map(codeOf).filter((c) => c === 'admitted')).toHaveLength(3);
    expect(results.map(codeOf).filter((c) => c === 'rate_limited')).toHaveLength(3);
  });

  it('a chunked upload grows a step at a time and is cut with 507 when the cluster\'s room is used up by another node', async () => {
    const { ledgers } = await nodes(2);
    await ledgers[0].admit({ tenant: 'big', cls: PLAIN, declaredBytes: 85 * MiB });
    const hold = await ledgers[1].admit({ tenant: 'small', cls: PLAIN, declaredBytes: null });
    let err: unknown;
    let written = 0;
    try {
      for (let i = 0; i < 200; i++) {
        await hold.wrote(256 << 10);
        written += 256 << 10;
      }
    } catch (e) { err = e; }
    expect((err as HttpError).code).toBe('insufficient_storage');
    expect((err as HttpError).message).toMatch(/grew past/);
    expect(written).toBeGreaterThanOrEqual(4 * MiB);
    expect(written).toBeLessThanOrEqual(5 * MiB);
    hold.release();
  });

  it('a node that stops renewing its lease (it died) no longer holds space once the lease has run out', async () => {
    let clock = Date.now();
    const { ledgers } = await nodes(2, { leaseMs: 60_000, now: () => clock });
    await ledgers[0].admit({ tenant: 'a', cls: PLAIN, declaredBytes: 80 * MiB });
    await expect(ledgers[1].admit({ tenant: 'b', cls: PLAIN, declaredBytes: 20 * MiB })).rejects.toMatchObject({ code: 'insufficient_storage' });
    // Node 0 "dies": its timer stops; the clock passes its lease; node 1 renews its own.
    ledgers[0].stopRenewing();
    clock += 61_000;
    await ledgers[1].renewNow();
    await expect(ledgers[1].admit({ tenant: 'b', cls: PLAIN, declaredBytes: 20 * MiB })).resolves.toBeDefined();
  });

  it('when PostgreSQL is down, an admission is 503 store_unavailable with Retry-After, never an unnamed error; it recovers by itself', async () => {
    const own = await startPostgres();
    try {
      const url = await own.newDatabase('outage');
      const index = await openIndex({ index: { engine: 'postgres', url } }, '/nonexistent');
      const ledger = new SharedLedger({
        holds: index.holds!, now: Date.now, logger: silentLogger(), limits: () => NO_LIMITS, makeRoom: async () => undefined,
        room: () => ({ capacityBytes: 100 * MiB, reserveBytes: 10 * MiB, roomBytes: 90 * MiB }),
      });
      await ledger.start();
      (await ledger.admit({ tenant: 'a', cls: PLAIN, declaredBytes: MiB })).commit();
      await own.pause();
      const err = await ledger.admit({ tenant: 'a', cls: PLAIN, declaredBytes: MiB }).catch((e: unknown) => e) as HttpError;
      expect(err.code).toBe('store_unavailable');
      expect(err.status).toBe(503);
      expect(err.headers['Retry-After']).toBe('5');
      await own.resume();
      let admitted = false;
      for (let i = 0; i < 50 && !admitted; i++) {
        admitted = await ledger.admit({ tenant: 'a', cls: PLAIN, declaredBytes: MiB }).then((h) => { h.commit(); return true; }, () => false);
        if (!admitted) await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(admitted).toBe(true);
      await ledger.stop();
      await index.close();
    } finally {
      await own.stop();
    }
  }, 120_000);
});
