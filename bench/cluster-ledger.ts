/**
 * Admission latency of a clustered node's ledger (issue 11, docs/design.md
 * §14): N forked workers, each with C loops, admit declared 1.6 MB uploads
 * (R a second per worker, or as fast as they can), then commit, through
 * RemoteLedger (a spare hold when the worker has one,
 * else IPC → the primary's LedgerHost and LocalLedger; every limit of
 * limits.tenant on, the disk reading cached), then commit. The uploads go
 * round-robin over T tenants: 1 (a burst of one customer's files) and
 * 1,000 (the worst case for spares, which are per tenant). What is timed is
 * admit() as a worker sees it. The same loop in one process (LocalLedger
 * directly) is the baseline.
 *
 *   npx tsc -p . && node dist/bench/cluster-ledger.js [--workers 1,2,4] [--tenants 1,1000] [--rate 2000] [--busy] [--loops 1] [--seconds 3] [--disk-spares 8]
 *
 * The default rate, 2,000 admissions a second per worker, is ten times what
 * `npm run bench` uploads through the whole node; between admissions a
 * loop sleeps (a timer), as a worker waits for its sockets, and when it is
 * behind time it still yields to the event loop once (setImmediate): a
 * worker's requests each arrive in a callback of their own, so what the
 * ledger queued for the primary goes out between them. `--busy` spins
 * instead (setImmediate), so every worker takes a whole core: with more
 * workers than cores the primary then waits for the CPU. `--rate 0` admits
 * as fast as the ledger answers: the primary drowns in the workers'
 * notices and spares run out faster than they are replaced.
 *
 * Prints p50/p99/max µs per admission per worker count and one JSON line.
 */
import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises';
import type { StorageClass } from '../src/classes.js';
import { Classifier } from '../src/classes.js';
import { DiskGuard } from '../src/disk/disk-guard.js';
import { LocalLedger } from '../src/accounting/local-ledger.js';
import { DISK_SPARES_PER_WORKER, RemoteLedger } from '../src/accounting/remote-ledger.js';
import type { Ledger } from '../src/accounting/ledger.js';
import { IpcPeer, type Port } from '../src/cluster/ipc.js';
import { LedgerHost } from '../src/cluster/ledger-host.js';
import { silentLogger } from '../src/logger.js';

const MiB = 1 << 20;

interface Load { loops: number; seconds: number; tenants: number; rate: number; busy: boolean; diskSpares: number }
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

/**
 * `loops` concurrent admit + commit loops for `seconds`; the µs of every
 * admit(), and of every wait of an upload's end for the primary's verdict
 * (an upload admitted on a disk spare; the body is counted at once, so
 * this is the longest such a wait can be).
 */
async function admissions(ledger: Ledger, { loops, seconds, tenants, rate, busy }: Load): Promise<{ latencies: number[]; verdictWaits: number[] }> {
  const latencies: number[] = [];
  const verdictWaits: number[] = [];
  const until = Date.now() + seconds * 1000;
  const gapNs = rate > 0 ? BigInt(Math.round((1e9 * loops) / rate)) : 0n;
  let n = 0;
  await Promise.all(Array.from({ length: loops }, async () => {
    let next = process.hrtime.bigint();
    while (Date.now() < until) {
      next += gapNs;
      if (busy) while (process.hrtime.bigint() < next) await yieldToLoop();
      else if (next > process.hrtime.bigint()) await sleep(Number(next - process.hrtime.bigint()) / 1e6);
      // Behind time (a timer fired late): the next admission still comes from the event loop, as a request's does.
      else await yieldToLoop();
      const start = process.hrtime.bigint();
      const hold = await ledger.admit({ tenant: `acme${n++ % tenants}`, cls: PLAIN, declaredBytes: 1_600_000 });
      const admitted = process.hrtime.bigint();
      latencies.push(Number(admitted - start) / 1e3);
      void hold.wrote(1_600_000);
      const waiting = hold.decided?.();
      if (waiting) {
        await waiting;
        verdictWaits.push(Number(process.hrtime.bigint() - admitted) / 1e3);
      }
      hold.commit();
    }
  }));
  return { latencies, verdictWaits };
}

function percentiles(all: number[]): { n: number; p50: number; p99: number; max: number } {
  const sorted = Float64Array.from(all).sort();
  const at = (q: number) => Number(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))].toFixed(1));
  return { n: sorted.length, p50: at(0.5), p99: at(0.99), max: at(1) };
}

async function worker(): Promise<void> {
  const peer = new IpcPeer(process as unknown as Port);
  const load = JSON.parse(process.env.BENCH_ARGS!) as Load;
  const ledger = new RemoteLedger(peer, Date.now, load.diskSpares);
  let onSpares = 0;
  ledger.onSpareAdmission = () => { onSpares++; };
  const { latencies, verdictWaits } = await admissions(ledger, load);
  process.send!({ latencies, verdictWaits, onSpares }, () => process.exit(0));
}

async function primary(): Promise<void> {
  const { values } = parseArgs({ options: {
    workers: { type: 'string', default: '1,2,4' }, tenants: { type: 'string', default: '1,1000' },
    rate: { type: 'string', default: '2000' }, busy: { type: 'boolean', default: false }, loops: { type: 'string', default: '1' }, seconds: { type: 'string', default: '3' },
    'disk-spares': { type: 'string', default: String(DISK_SPARES_PER_WORKER) },
  } });
  const loops = Number(values.loops);
  const seconds = Number(values.seconds);
  const rate = Number(values.rate);
  const results: Record<string, ReturnType<typeof percentiles> & { onSparesPercent?: number; verdictWaits?: ReturnType<typeof percentiles> }> = {};
  for (const tenants of values.tenants.split(',').map(Number)) {
    const load: Load = { loops, seconds, tenants, rate, busy: values.busy, diskSpares: Number(values['disk-spares']) };
    const inProcess = results[`inProcess-tenants${tenants}`] = percentiles((await admissions(localLedger(), load)).latencies);
    console.log(`${tenants} tenant(s), in one process (LocalLedger), ${loops} loops: p50 ${inProcess.p50} µs, p99 ${inProcess.p99} µs, max ${inProcess.max} µs`);
    for (const n of values.workers.split(',').map(Number)) {
      const host = new LedgerHost(localLedger(), new Classifier({ default: PLAIN }));
      const all: number[] = [];
      const waits: number[] = [];
      let onSpares = 0;
      await Promise.all(Array.from({ length: n }, (_, i) => new Promise<void>((resolve) => {
        const w = cluster.fork({ BENCH_ARGS: JSON.stringify(load) });
        host.attach(new IpcPeer(w), i + 1);
        w.on('message', (message: { latencies?: number[]; verdictWaits?: number[]; onSpares?: number }) => {
          if (message.latencies) for (const l of message.latencies) all.push(l);
          if (message.verdictWaits) for (const l of message.verdictWaits) waits.push(l);
          onSpares += message.onSpares ?? 0;
        });
        w.on('exit', () => resolve());
      })));
      const r = results[`workers${n}-tenants${tenants}`] = {
        ...percentiles(all), onSparesPercent: Number(((100 * onSpares) / all.length).toFixed(1)),
        ...(waits.length ? { verdictWaits: percentiles(waits) } : {}),
      };
      const v = r.verdictWaits;
      console.log(`${tenants} tenant(s), ${n} worker(s) × ${loops} loops: ${r.n} admissions (${r.onSparesPercent} % on spares), p50 ${r.p50} µs, p99 ${r.p99} µs, max ${r.max} µs` +
        (v ? `; ${v.n} ends waited for the verdict: p50 ${v.p50} µs, p99 ${v.p99} µs, max ${v.max} µs` : ''));
    }
  }
  console.log(JSON.stringify({ bench: 'cluster-ledger', loops, seconds, rate, busy: values.busy, ...results }));
}

if (cluster.isWorker) await worker();
else await primary();
