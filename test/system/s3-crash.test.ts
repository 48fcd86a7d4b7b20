import { execFile, spawnSync } from 'node:child_process';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, spawnServer, writeConfig, type SpawnedServer } from '../helpers/spawn-server.js';
import { startSwift, swiftRequirement, type SwiftCluster } from '../helpers/swift.js';
import { indexedFiles, pendingClaims } from '../helpers/index-file.js';

const runs = swiftRequirement();
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Starts a PUT that sends `total` bytes slowly and never finishes on its own. */
function slowUpload(url: string, name: string, total: number): { sent: () => number; req: http.ClientRequest } {
  const req = http.request(`${url}/upload/${name}`, { method: 'PUT', headers: { 'Content-Length': String(total) } });
  req.on('error', () => undefined);
  let sent = 0;
  const pump = () => {
    if (sent >= total - 1 || req.destroyed) return;
    const chunk = randomBytes(Math.min(1 << 20, total - 1 - sent));
    sent += chunk.length;
    // Never the last byte: the upload stays in flight until the kill.
    if (req.write(chunk)) setImmediate(pump);
    else req.once('drain', pump);
  };
  pump();
  return { sent: () => sent, req };
}

async function pendingRows(dataDir: string): Promise<number> {
  return (await pendingClaims(dataDir)).length;
}

describe.runIf(runs)('s3 node: kill -9 during uploads, restart, reindex (OpenStack Swift)', () => {
  let swift: SwiftCluster;
  let bucket: string;
  let server: SpawnedServer | undefined;
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-s3-crash-'));
  const acknowledged = new Map<string, string>();
  const env = () => ({
    NANOCDN_S3_ENDPOINT: swift.endpoint, NANOCDN_S3_BUCKET: bucket,
    NANOCDN_S3_ACCESS_KEY_ID: swift.accessKeyId, NANOCDN_S3_SECRET_ACCESS_KEY: swift.secretAccessKey,
  });
  const config = { logLevel: 'warn', storage: { engine: 's3', s3: { capacityBytes: '10GiB' } } };

  beforeAll(async () => {
    swift = await startSwift();
    bucket = await swift.newBucket('crash');
  }, 180_000);
  afterAll(async () => {
    await server?.kill9();
    rmSync(dataDir, { recursive: true, force: true });
    if (!swift) return;
    await swift.dropBucket(bucket).catch(() => undefined);
    await swift.stop();
  }, 60_000);

  it('leaves no pending rows, no orphaned objects or multipart uploads, and every acknowledged object intact', async () => {
    server = await spawnServer({ dataDir, config, env: env() });
    for (let i = 0; i < 6; i++) {
      const body = randomBytes(i === 0 ? 12_000_000 : 700_000);
      const res = await fetch(`${server.url}/upload/pub/acme/ok-${i}.bin`, { method: 'PUT', body });
      expect(res.status).toBe(201);
      acknowledged.set(`pub/acme/ok-${i}.bin`, sha256(body));
    }
    // In flight at the kill: two large uploads (multipart in the store) and a small one.
    const inflight = [
      slowUpload(server.url, 'pub/acme/inflight-big-1.bin', 30_000_000),
      slowUpload(server.url, 'pub/acme/inflight-big-2.bin', 30_000_000),
      slowUpload(server.url, 'pub/acme/inflight-small.bin', 2_000_000),
    ];
    // Wait until the store holds multipart uploads of them (what a crash orphans).
    const caughtUp = async () => (await swift.multipartUploads(bucket)).length >= 2 && await pendingRows(dataDir) === 3;
    for (let i = 0; i < 1200 && !(await caughtUp()); i++) await new Promise((r) => setTimeout(r, 50));
    expect((await swift.multipartUploads(bucket)).length).toBeGreaterThanOrEqual(2);
    expect(await pendingRows(dataDir)).toBe(3);
    await server.kill9();
    for (const upload of inflight) upload.req.destroy();
    // The crash left its traces: the restart must clean them.
    expect(await pendingRows(dataDir)).toBe(3);

    server = await spawnServer({ dataDir, config, env: env() });
    expect(await pendingRows(dataDir)).toBe(0);
    expect(await swift.multipartUploads(bucket)).toEqual([]);
    expect((await swift.keys(bucket)).sort()).toEqual([...acknowledged.keys()].sort());
    for (const [name, sha] of acknowledged) {
      const res = await fetch(`${server.url}/${name}`);
      expect(res.status).toBe(200);
      expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(sha);
    }
    // The names of the dead uploads are free again.
    const retry = await fetch(`${server.url}/upload/pub/acme/inflight-small.bin`, { method: 'PUT', body: randomBytes(1000) });
    expect(retry.status).toBe(201);
    acknowledged.delete('pub/acme/inflight-small.bin');
    await fetch(`${server.url}/pub/acme/inflight-small.bin`, { method: 'DELETE' });
    expect(await server.stop()).toBe(0);
    server = undefined;
  });

  it('`nanocdn reindex` on a fresh data dir rebuilds the index from the bucket', async () => {
    const fresh = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-s3-reindex-'));
    try {
      const configFile = writeConfig(config);
      const { stdout } = await promisify(execFile)(process.execPath, [CLI, 'reindex', '--json'], {
        env: { ...process.env, ...env(), NANOCDN_CONFIG: configFile, NANOCDN_DATA_DIR: fresh },
      });
      const summary = JSON.parse(stdout.trim().split('\n').pop()!) as { checked: number };
      expect(summary.checked).toBe(acknowledged.size);
      const rows = await indexedFiles(fresh);
      expect(rows.map((r) => r.name).sort()).toEqual([...acknowledged.keys()].sort());
      for (const row of rows) expect(row.sha256).toBe(acknowledged.get(row.name));

      // A second node on the fresh dir serves the bucket, with the ETags from the rebuilt index.
      server = await spawnServer({ dataDir: fresh, config, env: env() });
      const [name, sha] = [...acknowledged][0];
      const res = await fetch(`${server.url}/${name}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('etag')).toBe(`"${sha}"`);
      expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(sha);
      expect(await server.stop()).toBe(0);
      server = undefined;
    } finally {
      rmSync(fresh, { recursive: true, force: true });
    }
  });

  it('`nanocdn scrub` reads each object from the bucket: one overwritten behind the node\'s back is reported, then quarantined', async () => {
    const configFile = writeConfig(config);
    const scrub = (...args: string[]) => spawnSync(process.execPath, [CLI, 'scrub', '--json', ...args], {
      env: { ...process.env, ...env(), NANOCDN_CONFIG: configFile, NANOCDN_DATA_DIR: dataDir }, encoding: 'utf8', timeout: 120_000,
    });
    const clean = scrub();
    expect(clean.status, clean.stderr).toBe(0);
    expect(JSON.parse(clean.stdout)).toMatchObject({ checked: acknowledged.size, ok: acknowledged.size, corrupt: 0, missing: 0 });
    const [name] = [...acknowledged.keys()].filter((n) => n !== 'pub/acme/ok-0.bin');
    const size = (await indexedFiles(dataDir)).find((r) => r.name === name)!.size;
    const other = randomBytes(size);
    await swift.s3.send(new PutObjectCommand({ Bucket: bucket, Key: name, Body: other }));
    const found = scrub();
    expect(found.status, found.stderr).toBe(1);
    expect(JSON.parse(found.stdout)).toMatchObject({ checked: acknowledged.size, corrupt: 1, bad: [{ name, problem: 'sha256', actualSize: size, actualSha256: sha256(other) }] });
    const moved = scrub('--quarantine');
    expect(moved.status, moved.stderr).toBe(1);
    const quarantined = path.join(dataDir, 'quarantine', name);
    expect(JSON.parse(moved.stdout)).toMatchObject({ quarantined: 1, bad: [{ name, quarantinedTo: quarantined }] });
    expect(sha256(readFileSync(quarantined))).toBe(sha256(other));
    expect(await swift.keys(bucket)).not.toContain(name);
    expect((await indexedFiles(dataDir)).map((r) => r.name)).not.toContain(name);
    acknowledged.delete(name);
  }, 180_000);

  it('a bucket that does not exist is a clear start-up error, not a node that fails later', async () => {
    const err = await spawnServer({ config, env: { ...env(), NANOCDN_S3_BUCKET: 'nanocdn-no-such-bucket' } }).catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/server exited with [1-9]/);
    expect((err as Error).message).toContain('Bucket "nanocdn-no-such-bucket"');
    expect((err as Error).message).toContain('does not exist');
  });
});
