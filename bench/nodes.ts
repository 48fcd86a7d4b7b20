/**
 * 1 vs 2 vs 3 nodes on one Swift bucket and one PostgreSQL index behind
 * HAProxy (the shipped config/haproxy.cfg, as the system tests run it:
 * test/helpers/node-cluster.ts): N uploads of 1.6 MB through the proxy,
 * then N downloads, at a fixed concurrency, over keep-alive HTTP from this
 * process. Prints req/s, p50/p99 and the nodes' CPU ms per request (utime +
 * stime of every node process, /proc/<pid>/stat), which a loaded machine
 * disturbs less than req/s.
 *
 *   npm run build && node --no-warnings dist/bench/nodes.js [--count 120] [--concurrency 8] [--size 1600000] [--rounds 2]
 *
 * Needs PostgreSQL 15, Swift and HAProxy (as the tests: .ci/run installs them; root).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { CLUSTER_TOKEN, startCluster, type NodeCluster } from '../test/helpers/node-cluster.js';
import { startPostgres } from '../test/helpers/postgres.js';
import { startSwift } from '../test/helpers/swift.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}
const COUNT = arg('count', 120);
const CONCURRENCY = arg('concurrency', 8);
const SIZE = arg('size', 1_600_000);
const ROUNDS = arg('rounds', 2);
const TICKS = 100; // USER_HZ on Linux

function cpuMs(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return (ticks * 1000) / TICKS;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });

function call(method: string, url: string, body?: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { Authorization: `Bearer ${CLUSTER_TOKEN}` };
    if (body) headers['Content-Length'] = String(body.length);
    const req = http.request(url, { method, agent, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function phase(label: string, pids: number[], task: (i: number) => Promise<number>, ok: number): Promise<string> {
  const latencies: number[] = [];
  let next = 0;
  const errors = new Map<number, number>();
  const cpu0 = cpuMs(pids);
  const start = process.hrtime.bigint();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < COUNT) {
      const i = next++;
      const t0 = process.hrtime.bigint();
      const status = await task(i);
      if (status !== ok) errors.set(status, (errors.get(status) ?? 0) + 1);
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  }));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const cpu = (cpuMs(pids) - cpu0) / COUNT;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))].toFixed(0);
  return `${label.padEnd(12)} ${(COUNT / seconds).toFixed(1).padStart(6)} req/s  p50 ${pct(0.5).padStart(5)} ms  p99 ${pct(0.99).padStart(5)} ms  nodes' CPU ${cpu.toFixed(1).padStart(5)} ms/req  errors ${errors.size === 0 ? 0 : JSON.stringify(Object.fromEntries(errors))}`;
}

async function bench(cluster: NodeCluster, label: string): Promise<string[]> {
  const pids = cluster.nodes.map((n) => n!.pid);
  const bodies = Array.from({ length: 8 }, () => randomBytes(SIZE));
  const name = (i: number) => `pub/bench/${label.replace(/[^a-z0-9]+/gi, '-')}-${i}.bin`;
  const put = await phase(`${label} PUT`, pids, (i) => call('PUT', `${cluster.proxyUrl}/upload/${name(i)}`, bodies[i % bodies.length]), 201);
  const get = await phase(`${label} GET`, pids, (i) => call('GET', `${cluster.proxyUrl}/${name(i)}`), 200);
  return [put, get];
}

async function main(): Promise<void> {
  const [pg, swift] = await Promise.all([startPostgres(), startSwift()]);
  try {
    console.log(`${COUNT} × ${(SIZE / 1e6).toFixed(1)} MB through HAProxy, concurrency ${CONCURRENCY}, ${os.cpus().length} cores, load ${os.loadavg()[0].toFixed(1)}`);
    for (let round = 1; round <= ROUNDS; round++) {
      // Alternate the order per round, so the machine's drift does not favour one size.
      const sizes = round % 2 === 1 ? [1, 2, 3] : [3, 2, 1];
      for (const n of sizes) {
        const cluster = await startCluster({ pg, swift, nodes: n, label: `bench${n}`, config: { logLevel: 'warn' } });
        try {
          for (const line of await bench(cluster, `r${round} ${n} node${n > 1 ? 's' : ''}`)) console.log(line);
        } finally {
          await cluster.stop();
          await swift.dropBucket(cluster.bucket).catch(() => undefined);
        }
      }
    }
  } finally {
    agent.destroy();
    await Promise.all([swift.stop(), pg.stop()]);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
