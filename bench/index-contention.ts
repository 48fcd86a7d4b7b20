/**
 * Contention on the shared SQLite index of a clustered node (issue 11 item
 * 3, docs/design.md §14): W processes open one index file (WAL, busy
 * timeout, as every worker does) and each writes what an upload writes —
 * one `files.put` per stored file, and an access-time flush of 100 names
 * every 2 s — as fast as it can, then at a fixed rate like the bench's PUT
 * load. Prints the µs of each put (p50/p99/max) and puts per second.
 *
 *   npx tsc -p . && node dist/bench/index-contention.js [--writers 1,2,4] [--seconds 3] [--rate 400]
 *
 * `--rate` is the node's uploads per second across all writers (the bench's
 * PUT 1.6 MB rows run at a few hundred per second on this VM).
 */
import cluster from 'node:cluster';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { openSqliteIndex } from '../src/index/sqlite/sqlite-index.js';

interface Job { file: string; seconds: number; perSecond: number | null; writer: number }

async function writer(job: Job): Promise<{ latencies: number[] }> {
  const index = openSqliteIndex(job.file);
  const latencies: number[] = [];
  const until = Date.now() + job.seconds * 1000;
  const interval = job.perSecond ? 1000 / job.perSecond : 0;
  let next = Date.now();
  let lastFlush = Date.now();
  for (let i = 0; Date.now() < until; i++) {
    const now = Date.now();
    const start = process.hrtime.bigint();
    await index.files.put({ name: `pub/t${i % 50}/w${job.writer}/f${i}.pdf`, tenant: `t${i % 50}`, class: 'default', size: 1_600_000, sha256: 'a'.repeat(64), createdMs: now, accessedMs: now, expiresMs: null });
    latencies.push(Number(process.hrtime.bigint() - start) / 1e3);
    if (now - lastFlush >= 2000) {
      lastFlush = now;
      await index.files.touchMany(Array.from({ length: 100 }, (_, k): [string, number] => [`pub/t${k % 50}/w${job.writer}/f${k}.pdf`, now]));
    }
    if (interval > 0) {
      next += interval;
      const wait = next - Date.now();
      if (wait > 0) await delay(wait);
    }
  }
  await index.close();
  return { latencies };
}

function percentiles(all: number[], seconds: number): { puts: number; perSecond: number; p50: number; p99: number; max: number } {
  const sorted = Float64Array.from(all).sort();
  const at = (q: number) => Number(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))].toFixed(0));
  return { puts: sorted.length, perSecond: Math.round(sorted.length / seconds), p50: at(0.5), p99: at(0.99), max: at(1) };
}

async function primary(): Promise<void> {
  const { values } = parseArgs({ options: { writers: { type: 'string', default: '1,2,4' }, seconds: { type: 'string', default: '3' }, rate: { type: 'string', default: '400' } } });
  const seconds = Number(values.seconds);
  const results: Record<string, ReturnType<typeof percentiles>> = {};
  for (const perSecondTotal of [null, Number(values.rate)]) {
    for (const n of values.writers.split(',').map(Number)) {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-contention-'));
      const file = path.join(dir, 'index.sqlite');
      // Created (and migrated) once, as the primary does before forking.
      await openSqliteIndex(file).close();
      const all: number[] = [];
      await Promise.all(Array.from({ length: n }, (_, writerNo) => new Promise<void>((resolve) => {
        const job: Job = { file, seconds, perSecond: perSecondTotal === null ? null : perSecondTotal / n, writer: writerNo };
        const w = cluster.fork({ BENCH_JOB: JSON.stringify(job) });
        w.on('message', (message: { latencies?: number[] }) => { if (message.latencies) all.push(...message.latencies); });
        w.on('exit', () => resolve());
      })));
      rmSync(dir, { recursive: true, force: true });
      const label = `${perSecondTotal === null ? 'flat out' : `${perSecondTotal}/s`}, ${n} writer(s)`;
      const r = percentiles(all, seconds);
      results[label] = r;
      console.log(`${label}: ${r.puts} puts (${r.perSecond}/s), put p50 ${r.p50} µs, p99 ${r.p99} µs, max ${r.max} µs`);
    }
  }
  console.log(JSON.stringify({ bench: 'index-contention', seconds, results }));
}

if (cluster.isWorker) {
  const result = await writer(JSON.parse(process.env.BENCH_JOB!) as Job);
  process.send!(result, () => process.exit(0));
} else {
  await primary();
}
