/**
 * Eviction throughput (issue 4): builds a data dir with N indexed files
 * (default 100 000), then measures with the real engine:
 *   - a scheduled pass that finds nothing to remove (the cost of a run),
 *   - a dry run that selects every file,
 *   - a real run that deletes every file (files/s, ms per 10 k files),
 * and the longest event-loop stall during the real run.
 *
 *   npx tsc -p . && node dist/bench/eviction.js [files]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { configWith } from '../src/config/load.js';
import { openNode } from '../src/node.js';
import { silentLogger } from '../src/logger.js';

const total = Number(process.argv[2] ?? 100_000);
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-bench-evict-'));
const config = configWith({
  dataDir, logLevel: 'error', durability: 'none',
  disk: { minFreeBytes: 0, minFreePercent: 0, highWatermarkPercent: 100, lowWatermarkPercent: 100 },
  classes: {
    cache: { match: ['*/*/cachedtickets/**'], evictable: true, maxAge: '30d', maxIdle: '7d', maxBytesPerTenant: '5GiB' },
    default: { evictable: false, maxBytesPerTenant: null },
  },
});

const seconds = (ms: number) => Number((ms / 1000).toFixed(3));
const now = Date.now();
const runtime = await openNode(config, { logger: silentLogger() });
const { index, evictor } = runtime.ctx;

let started = performance.now();
const tenants = 100;
for (let t = 0; t < tenants; t++) mkdirSync(path.join(dataDir, 'files', 'pub', `t${t}`, 'cachedtickets'), { recursive: true });
await index.files.putMany((function* () {
  for (let i = 0; i < total; i++) {
    const tenant = `t${i % tenants}`;
    const name = `pub/${tenant}/cachedtickets/f${i}.pdf`;
    writeFileSync(path.join(dataDir, 'files', name), 'x');
    yield { name, tenant, class: 'cache', size: 1, sha256: '0'.repeat(64), createdMs: now - total + i, accessedMs: now - total + i, expiresMs: null };
  }
})());
const setupMs = performance.now() - started;

started = performance.now();
const noop = await evictor.run({ reason: 'schedule' });
const noopMs = performance.now() - started;

started = performance.now();
const dry = await evictor.run({ reason: 'cli', dryRun: true, overrides: { maxAgeMs: 0 } });
const dryMs = performance.now() - started;

const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
started = performance.now();
const real = await evictor.run({ reason: 'cli', overrides: { maxAgeMs: 0 } });
const realMs = performance.now() - started;
loop.disable();

await runtime.close();
rmSync(dataDir, { recursive: true, force: true });

const result = {
  files: total,
  setupSeconds: seconds(setupMs),
  noopScheduledRun: { files: noop.files, seconds: seconds(noopMs) },
  dryRunSelectAll: { files: dry.files, seconds: seconds(dryMs), filesPerSecond: Math.round(dry.files / (dryMs / 1000)) },
  realRunDeleteAll: {
    files: real.files, failed: real.failed, seconds: seconds(realMs),
    filesPerSecond: Math.round(real.files / (realMs / 1000)),
    msPer10kFiles: Math.round((realMs / real.files) * 10_000),
    maxEventLoopStallMs: Math.round(loop.max / 1e6),
    p99EventLoopDelayMs: Math.round(loop.percentile(99) / 1e6),
  },
};
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
