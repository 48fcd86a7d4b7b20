/**
 * Admission latency of a clustered node's ledger (issue 11, docs/design.md
 * §14): N forked workers, each with C admission loops, admit declared
 * 1.6 MB uploads through RemoteLedger → IPC → the primary's LedgerHost and
 * LocalLedger (every limit of limits.tenant on, 1,000 tenants, the disk
 * reading cached), then commit. What is timed is admit() as a worker sees
 * it: one IPC round trip plus the primary's decision. The same loop in one
 * process (LocalLedger directly) is the baseline.
 *
 *   npx tsc -p . && node dist/bench/cluster-ledger.js [--workers 1,2,4] [--loops 1] [--seconds 3]
 *
 * Prints p50/p99/max µs per admission per worker count and one JSON line.
 */
import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import type { StorageClass } from '../src/classes.js';
import { Classifier } from '../src/classes.js';
import { DiskGuard } from '../src/disk/disk-guard.js';
import { LocalLedger } from '../src/accounting/local-ledger.js';
import { RemoteLedger } from '../src/accounting/remote-ledger.js';
import type { Ledger } from '../src/accounting/ledger.js';
import { IpcPeer, type Port } from '../src/cluster/ipc.js';
import { LedgerHost } from '../src/cluster/ledger-host.js';
import { silentLogger } from '../src/logger.js';

const MiB = 1 << 20;
const PLAIN: StorageClass = { name: 'default', match: [], evictable: false, maxAge: null, maxIdle: null, maxBytes: null, maxBytesPerTenant: null };

function localLedger(): LocalLedger {
  const guard = new DiskGuard({
    readDisk: () => Promise.resolve({ totalBytes: 1e12, freeBytes: 5e11 }), now: Date.now, logger: silentLogger(),
    minFreeBytes: MiB, minFreePercent: 0, highWatermarkPercent: 100, lowWatermarkPercent: 100, maxReadingAgeMs: 60_000,
  });
  const limits = { uploadsPerMinute: 1e12, bytesPerMinute: 1e15, inflightUploads: 1e6, inflightBytes: { percent: 50 } };
  return new LocalLedger({
    guard, now: Date.now, limits: () => limits, storedBytes: () => Promise.resolve(0), makeRoom: () => Promise.resolve(),
    observer: { throttled: () => undefined, quotaRefused: () => undefined },
  });
}

/** `loops` concurrent admit + commit loops for `seconds`; the µs of every admit(). */
async function admissions(ledger: Ledger, loops: number, seconds: number): Promise<number[]> {
  const latencies: number[] = [];
  const until = Date.now() + seconds * 1000;
  let n = 0;
  await Promise.all(Array.from({ length: loops }, async () => {
    while (Date.now() < until) {
      const start = process.hrtime.bigint();
      const hold = await ledger.admit({ tenant: `acme${n++ % 1000}`, cls: PLAIN, declaredBytes: 1_600_000 });
      latencies.push(Number(process.hrtime.bigint() - start) / 1e3);
      hold.commit();
    }
  }));
  return latencies;
}

function percentiles(all: number[]): { n: number; p50: number; p99: number; max: number } {
  const sorted = Float64Array.from(all).sort();
  const at = (q: number) => Number(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))].toFixed(1));
  return { n: sorted.length, p50: at(0.5), p99: at(0.99), max: at(1) };
}

async function worker(): Promise<void> {
  const peer = new IpcPeer(process as unknown as Port);
  const { loops, seconds } = JSON.parse(process.env.BENCH_ARGS!) as { loops: number; seconds: number };
  const latencies = await admissions(new RemoteLedger(peer), loops, seconds);
  process.send!({ latencies }, () => process.exit(0));
}

async function primary(): Promise<void> {
  const { values } = parseArgs({ options: { workers: { type: 'string', default: '1,2,4' }, loops: { type: 'string', default: '1' }, seconds: { type: 'string', default: '3' } } });
  const loops = Number(values.loops);
  const seconds = Number(values.seconds);
  const results: Record<string, ReturnType<typeof percentiles>> = {};
  results.inProcess = percentiles(await admissions(localLedger(), loops, seconds));
  console.log(`in one process (LocalLedger), ${loops} loops: p50 ${results.inProcess.p50} µs, p99 ${results.inProcess.p99} µs, max ${results.inProcess.max} µs`);
  for (const n of values.workers.split(',').map(Number)) {
    const host = new LedgerHost(localLedger(), new Classifier({ default: PLAIN }));
    const all: number[] = [];
    await Promise.all(Array.from({ length: n }, (_, i) => new Promise<void>((resolve) => {
      const w = cluster.fork({ BENCH_ARGS: JSON.stringify({ loops, seconds }) });
      host.attach(new IpcPeer(w), i + 1);
      w.on('message', (message: { latencies?: number[] }) => { if (message.latencies) all.push(...message.latencies); });
      w.on('exit', () => resolve());
    })));
    results[`workers${n}`] = percentiles(all);
    const r = results[`workers${n}`];
    console.log(`${n} worker(s) × ${loops} loops over IPC: ${r.n} admissions, p50 ${r.p50} µs, p99 ${r.p99} µs, max ${r.max} µs`);
  }
  console.log(JSON.stringify({ bench: 'cluster-ledger', loops, seconds, ...results }));
}

if (cluster.isWorker) await worker();
else await primary();
