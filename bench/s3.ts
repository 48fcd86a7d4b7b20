/**
 * PUT/GET throughput of the s3 engine (on a private OpenStack Swift started
 * with scripts/swift-test-cluster.sh) beside the fs engine, with the same
 * command: N uploads of 1.6 MB through the node, then N downloads, at a
 * fixed concurrency, over keep-alive HTTP from this process.
 *
 *   npm run build && node --no-warnings dist/bench/s3.js [--count 200] [--concurrency 8] [--size 1600000]
 *
 * Needs Swift installed (`scripts/swift-test-cluster.sh install`, root).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createS3Clients } from '../src/storage/s3-client.js';
import { installExitHandlers, startProcess, stopAll } from './processes.js';
import { freePort } from './targets.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = path.join(ROOT, 'dist', 'src', 'cli.js');
const SCRIPT = path.join(ROOT, 'scripts', 'swift-test-cluster.sh');
const run = promisify(execFile);

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}
const COUNT = arg('count', 200);
const CONCURRENCY = arg('concurrency', 8);
const SIZE = arg('size', 1_600_000);

const tempDirs: string[] = [];

async function startNode(label: string, config: Record<string, unknown>): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `nanocdn-bench-${label}-`));
  tempDirs.push(dir);
  const configFile = path.join(dir, 'config.json');
  const port = await freePort();
  writeFileSync(configFile, JSON.stringify({
    logLevel: 'warn', dataDir: path.join(dir, 'data'), host: '127.0.0.1', port,
    disk: { minFreeBytes: 0, minFreePercent: 0, highWatermarkPercent: 100, lowWatermarkPercent: 100 }, ...config,
  }));
  startProcess(`nanocdn-${label}`, process.execPath, ['--no-warnings', CLI, 'serve'], {
    env: { ...process.env, NANOCDN_CONFIG: configFile }, stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600; i++) {
    try { if ((await fetch(`${url}/readyz`)).ok) return url; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${label} node did not become ready`);
}

const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });

function call(method: string, url: string, body?: Buffer): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers: body ? { 'Content-Length': String(body.length) } : {} }, (res) => {
      let bytes = 0;
      res.on('data', (d: Buffer) => { bytes += d.length; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function phase(label: string, task: (i: number) => Promise<{ status: number; bytes: number }>, ok: number): Promise<string> {
  const latencies: number[] = [];
  let next = 0;
  let errors = 0;
  let bytes = 0;
  const start = process.hrtime.bigint();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < COUNT) {
      const i = next++;
      const t0 = process.hrtime.bigint();
      const res = await task(i);
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (res.status !== ok) errors++;
      bytes += SIZE;
    }
  }));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))].toFixed(0);
  return `${label.padEnd(8)} ${(COUNT / seconds).toFixed(1).padStart(7)} req/s ${(bytes / seconds / 1e6).toFixed(1).padStart(7)} MB/s   p50 ${pct(0.5).padStart(4)} ms  p99 ${pct(0.99).padStart(4)} ms  errors ${errors}`;
}

async function bench(label: string, url: string): Promise<string[]> {
  const bodies = Array.from({ length: 8 }, () => randomBytes(SIZE));
  const name = (i: number) => `pub/bench/${label}-${i}.bin`;
  const put = await phase(`${label} PUT`, (i) => call('PUT', `${url}/upload/${name(i)}`, bodies[i % bodies.length]), 201);
  const get = await phase(`${label} GET`, (i) => call('GET', `${url}/${name(i)}`), 200);
  return [put, get];
}

async function main(): Promise<void> {
  const swiftRoot = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-bench-swift-'));
  installExitHandlers(() => { void run(SCRIPT, ['wipe', swiftRoot]).catch(() => undefined); });
  const ports = await Promise.all([0, 1, 2, 3, 4].map(() => freePort()));
  const env = {
    ...process.env, SAIO_PROXY_PORT: String(ports[0]), SAIO_OBJECT_PORT: String(ports[1]), SAIO_CONTAINER_PORT: String(ports[2]),
    SAIO_ACCOUNT_PORT: String(ports[3]), SAIO_MEMCACHE_PORT: String(ports[4]), SAIO_START_TIMEOUT: '150',
  };
  try {
    const { stdout } = await run(SCRIPT, ['start', swiftRoot], { env, timeout: 180_000 });
    const vars = Object.fromEntries(stdout.split('\n').map((l) => l.trim().split(/=(.*)/s)).filter((kv) => kv.length >= 2)) as Record<string, string>;
    const s3 = {
      endpoint: vars.S3_ENDPOINT, region: vars.S3_REGION, bucket: 'nanocdn-bench', prefix: '', forcePathStyle: true,
      accessKeyId: vars.S3_ACCESS_KEY_ID, secretAccessKey: vars.S3_SECRET_ACCESS_KEY,
    };
    const clients = createS3Clients(s3);
    await clients.client.send(new CreateBucketCommand({ Bucket: s3.bucket }));
    const fsUrl = await startNode('fs', {});
    const s3Url = await startNode('s3', { storage: { engine: 's3', s3: { ...s3, capacityBytes: '100GiB' } } });
    console.log(`${COUNT} × ${(SIZE / 1e6).toFixed(1)} MB, concurrency ${CONCURRENCY}, ${os.cpus().length} cores, load ${os.loadavg()[0].toFixed(1)}`);
    for (const line of await bench('fs', fsUrl)) console.log(line);
    for (const line of await bench('s3', s3Url)) console.log(line);
    // The store alone, without the node: the SDK straight to Swift.
    const bodies = Array.from({ length: 8 }, () => randomBytes(SIZE));
    const key = (i: number) => `direct/${i}.bin`;
    console.log(await phase('SDK PUT', async (i) => {
      await clients.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key(i), Body: bodies[i % 8], ContentLength: SIZE }));
      return { status: 201, bytes: SIZE };
    }, 201));
    console.log(await phase('SDK GET', async (i) => {
      const out = await clients.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key(i) }));
      const bytes = (await out.Body!.transformToByteArray()).length;
      return { status: 200, bytes };
    }, 200));
    clients.destroy();
  } finally {
    agent.destroy();
    await stopAll();
    await run(SCRIPT, ['wipe', swiftRoot], { env }).catch(() => undefined);
    for (const dir of [swiftRoot, ...tempDirs]) rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
