import { randomBytes } from 'node:crypto';
import { readdirSync, rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';

/**
 * The shipped `storage.engine: "memory"` in the built server: it serves
 * like any engine, writes no files/ or tmp/, says at start that it is not
 * durable, and a restart finds nothing (the index catches up with that).
 */
describe('the built server with storage.engine "memory"', () => {
  const started: SpawnedServer[] = [];
  afterAll(async () => {
    for (const server of started) await server.kill9();
    if (started[0]) rmSync(started[0].dataDir, { recursive: true, force: true });
  });
  const start = async (dataDir?: string) => {
    const server = await spawnServer({ dataDir, config: { storage: { engine: 'memory' } } });
    started.push(server);
    return server;
  };

  it('stores, serves a range, keeps no bytes on disk, and loses everything at a restart', async () => {
    const server = await start();
    expect(server.output()).toContain('storage.engine is \\"memory\\"');
    const body = randomBytes(300_000);
    const put = await fetch(`${server.url}/upload/pub/acme/demo.bin`, { method: 'PUT', body });
    expect(put.status).toBe(201);
    const get = await fetch(`${server.url}/pub/acme/demo.bin`);
    expect(get.status).toBe(200);
    expect(Buffer.from(await get.arrayBuffer()).equals(body)).toBe(true);
    const range = await fetch(`${server.url}/pub/acme/demo.bin`, { headers: { range: 'bytes=100-199' } });
    expect(range.status).toBe(206);
    expect(Buffer.from(await range.arrayBuffer()).equals(body.subarray(100, 200))).toBe(true);
    expect(readdirSync(server.dataDir).filter((e) => !e.startsWith('index.sqlite'))).toEqual([]);
    expect(await server.stop()).toBe(0);

    const again = await start(server.dataDir);
    expect((await fetch(`${again.url}/pub/acme/demo.bin`)).status).toBe(404);
    // The background reconcile drops the row whose object is gone.
    let tenants: unknown[] = ['not yet read'];
    for (let i = 0; i < 100 && tenants.length > 0; i++) {
      tenants = ((await (await fetch(`${again.url}/usage`)).json()) as { tenants: unknown[] }).tenants;
      if (tenants.length > 0) await new Promise((r) => setTimeout(r, 50));
    }
    expect(tenants).toEqual([]);
  });
});
