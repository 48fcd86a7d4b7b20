import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresIndex } from '../../src/index/postgres/postgres-index.js';
import { postgresRequirement, startPostgres, type PostgresCluster } from '../helpers/postgres.js';
import { spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';
import { startSwift, swiftRequirement, type SwiftCluster } from '../helpers/swift.js';

const TOKEN = 'pg-outage-token-0123456789abcdef';
const auth = { Authorization: `Bearer ${TOKEN}` };

/**
 * A node on PostgreSQL + Swift while PostgreSQL is stopped (docs/design.md
 * §15): uploads, deletes and reads answer 503 store_unavailable with
 * Retry-After, never a 500; no object is left in the bucket without its row;
 * the node recovers by itself once the database is back.
 */
describe.runIf(postgresRequirement() && swiftRequirement())('PostgreSQL unreachable under a node on Swift', () => {
  let pg: PostgresCluster;
  let swift: SwiftCluster;
  let bucket: string;
  let url: string;
  let node: SpawnedServer;

  beforeAll(async () => {
    // One after the other: each picks free ports, which the other could take meanwhile.
    swift = await startSwift();
    pg = await startPostgres();
    bucket = await swift.newBucket('outage');
    url = await pg.newDatabase('outage');
    node = await spawnServer({
      config: {
        storage: swift.s3Config(bucket),
        index: { engine: 'postgres', url },
        auth: { tokens: [TOKEN], trustedNetworks: [], signingSecret: null },
        monitoring: { public: true },
      },
    });
  }, 240_000);
  afterAll(async () => {
    await node?.stop();
    await swift?.dropBucket(bucket).catch(() => undefined);
    await swift?.stop();
    await pg?.stop();
  }, 60_000);

  it('uploads, deletes and reads answer 503 with Retry-After while it is down (no 500, no orphan object); all works again once it is back', async () => {
    const kept = randomBytes(20_000);
    expect((await fetch(`${node.url}/upload/pub/acme/kept.bin`, { method: 'PUT', headers: auth, body: kept })).status).toBe(201);

    // A steady load of uploads (two clients) across the outage; bodies small enough to be sent whole before an early 503 closes the connection.
    const statuses: { name: string; status: number; retryAfter: string | null; error?: string }[] = [];
    let loading = true;
    let seq = 0;
    const client = async () => {
      while (loading) {
        const name = `pub/acme/load-${seq++}.bin`;
        const res = await fetch(`${node.url}/upload/${name}`, { method: 'PUT', headers: auth, body: randomBytes(3000 + (seq % 5) * 10_000) });
        const body = await res.json() as { error?: string };
        statuses.push({ name, status: res.status, retryAfter: res.headers.get('retry-after'), error: body.error });
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const clients = [client(), client()];
    await new Promise((r) => setTimeout(r, 500));

    await pg.pause();
    let resumed = false;
    try {
      const put = await fetch(`${node.url}/upload/pub/acme/down.bin`, { method: 'PUT', headers: auth, body: randomBytes(1000) });
      expect(put.status).toBe(503);
      expect(put.headers.get('retry-after')).toBeTruthy();
      const putBody = await put.json() as { error: string; message: string };
      expect(putBody.error).toBe('store_unavailable');
      expect(putBody.message).toContain('index database');

      const del = await fetch(`${node.url}/pub/acme/kept.bin`, { method: 'DELETE', headers: auth });
      expect(del.status).toBe(503);
      expect(del.headers.get('retry-after')).toBeTruthy();
      expect(((await del.json()) as { error: string }).error).toBe('store_unavailable');
      // The object was not removed behind its row.
      expect(await swift.keys(bucket, 'pub/acme/kept.bin')).toEqual(['pub/acme/kept.bin']);

      // Reads need the row (ETag, size, class): 503 too, never a guess.
      const get = await fetch(`${node.url}/pub/acme/kept.bin`);
      expect(get.status).toBe(503);
      expect(get.headers.get('retry-after')).toBeTruthy();
      expect(((await get.json()) as { error: string }).error).toBe('store_unavailable');

      expect((await fetch(`${node.url}/readyz`)).status).toBe(503);
      expect((await fetch(`${node.url}/healthz`)).status).toBe(200);
      await new Promise((r) => setTimeout(r, 3000));
      await pg.resume();
      resumed = true;
    } finally {
      if (!resumed) await pg.resume();
    }

    const deadline = Date.now() + 30_000;
    let ready = 0;
    while (Date.now() < deadline && (ready = (await fetch(`${node.url}/readyz`)).status) !== 200) await new Promise((r) => setTimeout(r, 200));
    expect(ready).toBe(200);
    // Load goes on a moment after the recovery, then stops.
    const before = statuses.length;
    while (statuses.length < before + 4) await new Promise((r) => setTimeout(r, 100));
    loading = false;
    await Promise.all(clients);

    const unexpected = statuses.filter((s) => s.status !== 201 && !(s.status === 503 && s.error === 'store_unavailable' && s.retryAfter));
    expect(unexpected).toEqual([]);
    expect(statuses.some((s) => s.status === 503)).toBe(true);
    expect(statuses.slice(-2).every((s) => s.status === 201)).toBe(true);

    const get = await fetch(`${node.url}/pub/acme/kept.bin`);
    expect(get.status).toBe(200);
    expect(Buffer.from(await get.arrayBuffer()).equals(kept)).toBe(true);
    expect((await fetch(`${node.url}/upload/pub/acme/after.bin`, { method: 'PUT', headers: auth, body: randomBytes(100) })).status).toBe(201);
    expect((await fetch(`${node.url}/pub/acme/after.bin`, { method: 'DELETE', headers: auth })).status).toBe(204);

    // Every object has its row and every acknowledged upload is stored: nothing orphaned either way.
    const index = await openPostgresIndex(url);
    try {
      const rows: string[] = [];
      for await (const name of index.files.names()) rows.push(name);
      const keys = (await swift.keys(bucket)).sort();
      expect(keys).toEqual(rows.sort());
      for (const s of statuses.filter((x) => x.status === 201)) expect(rows).toContain(s.name);
      // Claims whose release failed during the outage (their objects went at once) are dropped by the next sweep (every lease, 15 s).
      const until = Date.now() + 40_000;
      while (Date.now() < until && (await index.claims.all()).length > 0) await new Promise((r) => setTimeout(r, 500));
      expect(await index.claims.all()).toEqual([]);
    } finally {
      await index.close();
    }
    expect(node.output()).not.toContain('"status":500');
    expect(node.child.exitCode).toBeNull();
  });
});
