/**
 * Micro-benchmark of an upload's admission through the ledger (issue 12):
 * LocalLedger.admit + release with a cached disk reading, 32 uploads in
 * flight and 1,000 tenants, every limit of limits.tenant on — for a class
 * without a quota, and for one with a quota (the index reading of the
 * tenant's stored bytes stubbed, so the ledger's own cost is what is timed).
 *
 *   npx tsc -p . && node dist/bench/ledger.js
 *
 * Prints µs per admission (fastest and slowest of 5 rounds of 100,000) and one JSON line.
 */
import type { StorageClass } from '../src/classes.js';
import { DiskGuard } from '../src/disk/disk-guard.js';
import { LocalLedger } from '../src/accounting/local-ledger.js';
import { silentLogger } from '../src/logger.js';

const MiB = 1 << 20;
const ROUNDS = 5;
const PER_ROUND = 100_000;

async function main(): Promise<void> {
  const guard = new DiskGuard({
    readDisk: () => Promise.resolve({ totalBytes: 1e12, freeBytes: 5e11 }), now: Date.now, logger: silentLogger(),
    minFreeBytes: MiB, minFreePercent: 0, highWatermarkPercent: 100, lowWatermarkPercent: 100, maxReadingAgeMs: 60_000,
  });
  await guard.refresh(true);
  // On, but never reached: what is timed is checking them.
  const limits = { uploadsPerMinute: 1e12, bytesPerMinute: 1e15, inflightUploads: 1e6, inflightBytes: { percent: 50 } };
  const ledger = new LocalLedger({
    guard, now: Date.now, limits: () => limits, storedBytes: () => Promise.resolve(0), makeRoom: () => Promise.resolve(),
    observer: { throttled: () => undefined, quotaRefused: () => undefined },
  });
  const plain: StorageClass = { name: 'default', match: [], evictable: false, maxAge: null, maxIdle: null, maxBytes: null, maxBytesPerTenant: null };
  const quota: StorageClass = { ...plain, name: 'tickets', maxBytesPerTenant: 1e12 };
  const live = [];
  for (let i = 0; i < 32; i++) live.push(await ledger.admit({ tenant: `busy${i}`, cls: plain, declaredBytes: MiB }));
  const figures: Record<string, { minUs: number; maxUs: number }> = {};
  for (const [label, cls] of [['noQuota', plain], ['quota', quota]] as const) {
    const samples: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const start = process.hrtime.bigint();
      for (let i = 0; i < PER_ROUND; i++) (await ledger.admit({ tenant: `acme${i % 1000}`, cls, declaredBytes: 1_600_000 })).release();
      samples.push(Number(process.hrtime.bigint() - start) / 1e3 / PER_ROUND);
    }
    figures[label] = { minUs: Number(Math.min(...samples).toFixed(2)), maxUs: Number(Math.max(...samples).toFixed(2)) };
    console.log(`admit + release, ${label === 'quota' ? 'class with a quota' : 'class without a quota'}: ${figures[label].minUs}–${figures[label].maxUs} µs`);
  }
  for (const hold of live) hold.release();
  console.log(JSON.stringify({ bench: 'ledger', inflight: 32, tenants: 1000, ...figures }));
}

await main();
