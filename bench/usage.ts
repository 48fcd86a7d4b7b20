/**
 * Latency of GET /usage and GET /metrics with 1 M files in the index.
 *
 *   npx tsc -p . && node dist/bench/usage.js [--rows 1000000] [--tenants 1000] [--requests 500]
 *
 * Builds a temp data dir whose index.sqlite holds the rows (inserted at once
 * through the index: no files are written; /usage never looks at files/),
 * plus 6 h of used-space samples and 24 h of hourly tenant totals, opens the
 * node on it (no reconcile: the index exists), listens on 127.0.0.1 and
 * times sequential requests over one keep-alive connection, then the report
 * alone in process. Prints p50/p99.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { configWith } from '../src/config/load.js';
import { createApp } from '../src/http/app.js';
import { openSqliteIndex } from '../src/index/sqlite/sqlite-index.js';
import { silentLogger } from '../src/logger.js';
import { UsageHistory } from '../src/monitoring/usage-history.js';
import { openNode } from '../src/node.js';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '1000000' }, tenants: { type: 'string', default: '1000' }, requests: { type: 'string', default: '500' } } });
const ROWS = Number(values.rows);
const TENANTS = Number(values.tenants);
const REQUESTS = Number(values.requests);
const HOUR = 3_600_000;

async function populate(dataDir: string): Promise<void> {
  const index = openSqliteIndex(path.join(dataDir, 'index.sqlite'));
  const now = Date.now();
  const started = performance.now();
  const sha = 'e'.repeat(64);
  await index.files.putMany((function* () {
    for (let i = 0; i < ROWS; i++) {
      // Skewed tenants (a few large ones), two classes.
      const tenant = `t${Math.floor(TENANTS * (i / ROWS) ** 2)}`;
      const cached = i % 3 !== 0;
      const name = cached ? `pub/${tenant}/cachedtickets/order-${i}.pdf` : `priv/${tenant}/invoices/inv-${i}.pdf`;
      yield {
        name, tenant, class: cached ? 'cache' : 'default', size: 20_000 + (i % 5000) * 37, sha256: sha,
        createdMs: now - (i % 86_400) * 1000, accessedMs: now - (i % 3600) * 1000, expiresMs: null,
      };
    }
  })());
  const history = new UsageHistory(index.history);
  for (let m = 360; m >= 1; m--) await history.record(now - m * 60_000, 50e9 + (360 - m) * 5e6);
  for (let h = 24; h >= 1; h--) for (let t = 0; t < TENANTS; t++) await history.recordTenant(now - h * HOUR, `t${t}`, t * 1e6 * (25 - h));
  const { files, bytes } = await index.totals.summary();
  console.log(`index: ${files.toLocaleString('en-US')} rows, ${(bytes / 1e9).toFixed(1)} GB, ${TENANTS} tenants, built in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  await index.close();
}

function get(agent: http.Agent, port: number, urlPath: string): Promise<{ status: number; ms: number; bytes: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: urlPath, agent }, (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => { bytes += chunk.length; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - started, bytes }));
    }).on('error', reject);
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function time(agent: http.Agent, port: number, urlPath: string): Promise<void> {
  for (let i = 0; i < 20; i++) await get(agent, port, urlPath);
  const ms: number[] = [];
  let bytes = 0;
  for (let i = 0; i < REQUESTS; i++) {
    const res = await get(agent, port, urlPath);
    if (res.status !== 200) throw new Error(`${urlPath} answered ${res.status}`);
    ms.push(res.ms);
    bytes = res.bytes;
  }
  ms.sort((a, b) => a - b);
  console.log(`GET ${urlPath.padEnd(8)} ${REQUESTS} requests: p50 ${percentile(ms, 50).toFixed(2)} ms, p99 ${percentile(ms, 99).toFixed(2)} ms, max ${ms[ms.length - 1].toFixed(2)} ms (${bytes} bytes)`);
}

/** The report alone, in process: what /usage costs without HTTP and JSON. */
async function timeBuild(build: () => Promise<unknown>): Promise<void> {
  const ms: number[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    const started = performance.now();
    await build();
    ms.push(performance.now() - started);
  }
  ms.sort((a, b) => a - b);
  console.log(`usage.build() in process: p50 ${percentile(ms, 50).toFixed(2)} ms, p99 ${percentile(ms, 99).toFixed(2)} ms`);
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'nanocdn-bench-usage-'));
  let server: http.Server | undefined;
  let close = async (): Promise<void> => {};
  try {
    await populate(dataDir);
    const runtime = await openNode(configWith({ dataDir, logLevel: 'error' }), { logger: silentLogger() });
    close = () => runtime.close();
    server = http.createServer(createApp(runtime.ctx));
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    await time(agent, port, '/usage');
    await timeBuild(() => runtime.ctx.monitoring.usage.build());
    await time(agent, port, '/metrics');
    agent.destroy();
  } finally {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
