import { execFile, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresIndex } from '../../src/index/postgres/postgres-index.js';
import { postgresRequirement, startPostgres, type PostgresCluster } from '../helpers/postgres.js';
import { CLI, REPO_ROOT, spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';
import { startSwift, swiftRequirement, type SwiftCluster } from '../helpers/swift.js';

const TOKEN = 'pg-node-token-0123456789abcdef';
const auth = { Authorization: `Bearer ${TOKEN}` };
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const PASSWORD = 'pg-password-do-not-print';
const S3_ENV = {
  NANOCDN_STORAGE__ENGINE: 's3', NANOCDN_S3_ENDPOINT: 'http://127.0.0.1:9000', NANOCDN_S3_BUCKET: 'b',
  NANOCDN_S3_ACCESS_KEY_ID: 'AKIA0000', NANOCDN_S3_SECRET_ACCESS_KEY: 's3-secret', NANOCDN_STORAGE__S3__CAPACITY_BYTES: '10GiB',
};

/** The built CLI with no NANOCDN_* variables but `env`. */
function nanocdn(args: string[], env: Record<string, string>) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('NANOCDN_')));
  const cwd = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-cwd-'));
  return spawnSync(process.execPath, [CLI, ...args], { env: { ...clean, ...env }, cwd, encoding: 'utf8', timeout: 30_000 });
}

describe('config check with index.engine "postgres"', () => {
  it('refuses it with the fs or memory engine, exit 78, saying why; the node does not start either', () => {
    const env = { NANOCDN_INDEX__ENGINE: 'postgres', NANOCDN_INDEX_URL: `postgres://nanocdn:${PASSWORD}@127.0.0.1:1/nanocdn` };
    for (const engine of ['fs', 'memory']) {
      const run = nanocdn(['config', 'check'], { ...env, NANOCDN_STORAGE__ENGINE: engine });
      expect(run.status, run.stderr).toBe(78);
      expect(run.stdout).toBe('');
      expect(run.stderr).toContain('index.engine');
      expect(run.stderr).toContain('storage.engine "s3"');
      expect(run.stderr).toContain('the bytes stay on (or in) one node');
      expect(run.stderr).not.toContain(PASSWORD);
    }
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-pg-refused-'));
    const serve = nanocdn(['serve', '--data-dir', dataDir], { ...env, NANOCDN_PORT: '0' });
    expect(serve.status).toBe(78);
    expect(readdirSync(dataDir)).toEqual([]);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('takes it with the s3 engine and prints the URL with its password masked', () => {
    const run = nanocdn(['config', 'check'], { ...S3_ENV, NANOCDN_INDEX__ENGINE: 'postgres', NANOCDN_INDEX_URL: `postgres://nanocdn:${PASSWORD}@db:5432/nanocdn` });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).not.toContain(PASSWORD);
    expect((JSON.parse(run.stdout) as { index: unknown }).index).toEqual({ engine: 'postgres', url: 'postgres://nanocdn:********@db:5432/nanocdn' });
  });
});

describe.runIf(postgresRequirement())('claims across processes', () => {
  let pg: PostgresCluster;
  beforeAll(async () => {
    pg = await startPostgres();
  }, 180_000);
  afterAll(async () => {
    await pg?.stop();
  }, 60_000);

  it('5 processes × 8 concurrent claims of one name, released at one moment: exactly one claim wins (each of 3 names)', async () => {
    const url = await pg.newDatabase('procs');
    await (await openPostgresIndex(url)).close();
    const module = path.join(REPO_ROOT, 'dist', 'src', 'index', 'postgres', 'postgres-index.js');
    // Each process opens its own pool, waits for the common start time, then claims.
    const script = `const { openPostgresIndex } = await import(${JSON.stringify(module)});
      const [url, startAt, ...names] = process.argv.slice(1);
      const index = await openPostgresIndex(url);
      await index.claims.get('warm-up');
      await new Promise((r) => setTimeout(r, Number(startAt) - Date.now()));
      const won = {};
      for (const name of names) won[name] = (await Promise.all(Array.from({ length: 8 }, (_, i) => index.claims.claim(name, i)))).filter(Boolean).length;
      await index.close();
      process.stdout.write(JSON.stringify(won));`;
    const names = ['pub/race/a', 'pub/race/b', 'pub/race/c'];
    const startAt = String(Date.now() + 3000);
    const runs = await Promise.all(Array.from({ length: 5 }, () => new Promise<Record<string, number>>((resolve, reject) => {
      execFile(process.execPath, ['--input-type=module', '-e', script, url, startAt, ...names], { timeout: 60_000 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`${err.message}\n${stderr}`));
        else resolve(JSON.parse(stdout) as Record<string, number>);
      });
    })));
    for (const name of names) expect(runs.reduce((sum, won) => sum + won[name], 0), name).toBe(1);
  });
});

/**
 * The built node with `index.engine: "postgres"` on `storage.engine: "s3"`
 * (a real PostgreSQL 15 and a real OpenStack Swift): the HTTP API with the
 * index in the database, a restart on an empty data dir, and /readyz while
 * PostgreSQL is stopped.
 */
describe.runIf(postgresRequirement() && swiftRequirement())('a node on PostgreSQL + Swift', () => {
  let pg: PostgresCluster;
  let swift: SwiftCluster;
  let bucket: string;
  let url: string;
  let node: SpawnedServer;

  const config = () => ({
    storage: swift.s3Config(bucket),
    index: { engine: 'postgres', url },
    auth: { tokens: [TOKEN], trustedNetworks: [], signingSecret: null },
    monitoring: { public: true },
  });

  beforeAll(async () => {
    [pg, swift] = await Promise.all([startPostgres(), startSwift()]);
    bucket = await swift.newBucket('pgnode');
    url = await pg.newDatabase('node');
    node = await spawnServer({ config: config() });
  }, 180_000);
  afterAll(async () => {
    await node?.stop();
    await swift?.dropBucket(bucket).catch(() => undefined);
    await Promise.all([swift?.stop(), pg?.stop()]);
  }, 60_000);

  it('uploads, serves, lists in /usage and deletes with the rows in PostgreSQL; no index.sqlite', async () => {
    const body = randomBytes(300_000);
    const put = await fetch(`${node.url}/upload/pub/acme/a.bin`, { method: 'PUT', headers: auth, body });
    expect(put.status).toBe(201);
    const again = await fetch(`${node.url}/upload/pub/acme/a.bin`, { method: 'PUT', headers: auth, body: randomBytes(10) });
    expect(again.status).toBe(409);
    expect(again.headers.get('location')).toBe('/pub/acme/a.bin');

    const get = await fetch(`${node.url}/pub/acme/a.bin`);
    expect(get.status).toBe(200);
    expect(sha256(Buffer.from(await get.arrayBuffer()))).toBe(sha256(body));
    expect((await fetch(`${node.url}/pub/acme/a.bin`, { headers: { Range: 'bytes=0-9' } })).status).toBe(206);

    const index = await openPostgresIndex(url);
    try {
      expect(await index.files.get('pub/acme/a.bin')).toMatchObject({ size: body.length, sha256: sha256(body), tenant: 'acme' });
      expect(await index.claims.all()).toEqual([]);
      const usage = await (await fetch(`${node.url}/usage`)).json() as { tenants: { tenant: string; files: number; bytes: number }[] };
      expect(usage.tenants.find((t) => t.tenant === 'acme')).toMatchObject({ files: 1, bytes: body.length });
      expect(existsSync(path.join(node.dataDir, 'index.sqlite'))).toBe(false);

      expect((await fetch(`${node.url}/pub/acme/a.bin`, { method: 'DELETE', headers: auth })).status).toBe(204);
      expect((await fetch(`${node.url}/pub/acme/a.bin`)).status).toBe(404);
      expect(await index.files.get('pub/acme/a.bin')).toBeUndefined();
      // The pub name is retired in the database: other bytes are refused under it.
      expect((await index.retired.get('pub/acme/a.bin'))?.sha256).toBe(sha256(body));
      const other = await fetch(`${node.url}/upload/pub/acme/a.bin`, { method: 'PUT', headers: auth, body: randomBytes(10) });
      expect(other.status).toBe(409);
      expect(((await other.json()) as { error: string }).error).toBe('name_retired');
      expect(await swift.keys(bucket)).toEqual([]);
    } finally {
      await index.close();
    }
  });

  it('a node restarted on an empty data dir finds every row in the database (nothing rebuilt)', async () => {
    const body = randomBytes(5000);
    expect((await fetch(`${node.url}/upload/pub/acme/kept.bin`, { method: 'PUT', headers: auth, body })).status).toBe(201);
    expect(await node.stop()).toBe(0);
    node = await spawnServer({ config: config() });
    const get = await fetch(`${node.url}/pub/acme/kept.bin`);
    expect(get.status).toBe(200);
    expect(sha256(Buffer.from(await get.arrayBuffer()))).toBe(sha256(body));
    expect(node.output()).not.toContain('index was missing');
  });

  it('/readyz is 503 (index) while PostgreSQL is stopped and 200 again once it is back, without a restart', async () => {
    expect((await fetch(`${node.url}/readyz`)).status).toBe(200);
    await pg.pause();
    try {
      const down = await fetch(`${node.url}/readyz`);
      expect(down.status).toBe(503);
      const body = await down.json() as { error: string; checks?: Record<string, boolean> };
      expect(body.error).toBe('not_ready');
      expect(JSON.stringify(body)).toContain('index');
      expect((await fetch(`${node.url}/healthz`)).status).toBe(200);
    } finally {
      await pg.resume();
    }
    const deadline = Date.now() + 30_000;
    let status = 0;
    while (Date.now() < deadline && (status = (await fetch(`${node.url}/readyz`)).status) !== 200) await new Promise((r) => setTimeout(r, 200));
    expect(status).toBe(200);
    expect((await fetch(`${node.url}/upload/pub/acme/after.bin`, { method: 'PUT', headers: auth, body: randomBytes(100) })).status).toBe(201);
    expect(node.child.exitCode).toBeNull();
  });
});
