/**
 * Micro-benchmark for the disk guard's per-request path (issue 3):
 *   - fs.promises.statfs (one syscall on the libuv threadpool), what the guard uses;
 *   - the `check-disk-space` package, the usual npm choice (spawns `df` per call);
 *   - one admission check: DiskGuard.admit + release with a cached reading.
 *
 *   npx tsc -p . && node dist/bench/statfs.js [dir]      (dir defaults to the OS temp dir)
 *
 * Prints µs per call and one JSON line with the figures.
 */
import fsp from 'node:fs/promises';
import os from 'node:os';
import checkDiskSpaceModule from 'check-disk-space';
import { DiskGuard } from '../src/disk/disk-guard.js';
import { statfsReader } from '../src/disk/statfs.js';
import { silentLogger } from '../src/logger.js';

const dir = process.argv[2] ?? os.tmpdir();
// The package's one .d.ts is read as CommonJS under NodeNext; at run time the ESM build's default is the function.
const checkDiskSpace = checkDiskSpaceModule as unknown as (path: string) => Promise<{ free: number; size: number }>;

/** Runs `fn` `count` times one after the other (after a warm-up) and returns µs per call. */
async function timePerCall(count: number, fn: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < Math.min(100, count); i++) await fn();
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) await fn();
  return Number(process.hrtime.bigint() - start) / 1e3 / count;
}

async function main(): Promise<void> {
  const st = await fsp.statfs(dir);
  const viaDf = await checkDiskSpace(dir);
  const statfsUs = await timePerCall(20_000, () => fsp.statfs(dir));
  const dfUs = await timePerCall(200, () => checkDiskSpace(dir));

  const guard = new DiskGuard({
    readDisk: statfsReader(dir), now: Date.now, logger: silentLogger(),
    minFreeBytes: 0, minFreePercent: 0, highWatermarkPercent: 100, lowWatermarkPercent: 100,
    maxReadingAgeMs: 60_000,
  });
  await guard.refresh(true);
  // Hold some reservations like a busy node would, so the check is not against an empty set.
  const held = await Promise.all(Array.from({ length: 32 }, () => guard.admit(1)));
  const admitUs = await timePerCall(200_000, async () => { (await guard.admit(1024)).release(); });
  for (const r of held) r.release();

  const figures = {
    dir, node: process.version, cpus: os.cpus().length, cpu: os.cpus()[0]?.model,
    statfsUsPerCall: Number(statfsUs.toFixed(2)),
    checkDiskSpaceUsPerCall: Number(dfUs.toFixed(0)),
    ratio: Math.round(dfUs / statfsUs),
    admitReleaseUsPerOp: Number(admitUs.toFixed(3)),
    agree: { statfsFreeBytes: st.bavail * st.bsize, checkDiskSpaceFreeBytes: viaDf.free },
  };
  console.log(`fs.promises.statfs          ${figures.statfsUsPerCall.toFixed(2).padStart(10)} µs/call   (20000 calls)`);
  console.log(`check-disk-space (spawns df) ${String(figures.checkDiskSpaceUsPerCall).padStart(9)} µs/call   (200 calls, ${figures.ratio}x slower)`);
  console.log(`DiskGuard.admit + release   ${figures.admitReleaseUsPerOp.toFixed(3).padStart(10)} µs/op     (cached reading, 32 held, 200000 ops)`);
  console.log(JSON.stringify(figures));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
