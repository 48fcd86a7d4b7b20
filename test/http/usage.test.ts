import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteIndex } from '../../src/index/sqlite/sqlite-index.js';
import type { EvictionReport, EvictionRun } from '../../src/eviction/report.js';
import type { UsageReport } from '../../src/monitoring/usage-report.js';
import { fakeDisk, TEST_ENGINE, testNode, type TestNode } from '../helpers/test-node.js';

const KiB = 1024;
const GiB = 1024 ** 3;
const HOUR = 3_600_000;
const TOKEN = 'monitoring-token-0123456789';

const put = (node: TestNode, name: string, bytes: number) =>
  request(node.app).put(`/upload/${name}`).set('Content-Type', 'application/octet-stream').send(Buffer.alloc(bytes, 7));
const usage = async (node: TestNode): Promise<UsageReport> => {
  const res = await request(node.app).get('/usage').expect(200).expect('Content-Type', /json/);
  return res.body as UsageReport;
};

/** Files and bytes per tenant and per class, from the storage engine itself (the truth) and the index's class of each. */
async function sumsOnDisk(node: TestNode) {
  const byTenant = new Map<string, { files: number; bytes: number }>();
  const byClass = new Map<string, { files: number; bytes: number }>();
  for await (const { name, size } of node.ctx.storage.list()) {
    const segments = name.split('/');
    const tenant = segments.length > 2 ? segments[1] : '-';
    const cls = (await node.ctx.index.files.get(name))?.class ?? 'unindexed';
    for (const [map, key] of [[byTenant, tenant], [byClass, cls]] as const) {
      const entry = map.get(key) ?? { files: 0, bytes: 0 };
      entry.files++; entry.bytes += size; map.set(key, entry);
    }
  }
  return { byTenant, byClass };
}

async function expectTotalsMatchDisk(node: TestNode): Promise<UsageReport> {
  const report = await usage(node);
  const { byTenant, byClass } = await sumsOnDisk(node);
  expect(Object.fromEntries(report.tenants.map((t) => [t.tenant, { files: t.files, bytes: t.bytes }]))).toEqual(Object.fromEntries(byTenant));
  const classes = Object.fromEntries(report.classes.filter((c) => c.files > 0).map((c) => [c.class, { files: c.files, bytes: c.bytes }]));
  expect(classes).toEqual(Object.fromEntries(byClass));
  return report;
}

describe('GET /usage on a populated node', () => {
  let node: TestNode;
  beforeAll(async () => {
    node = await testNode({ config: { durability: 'none' } });
    await put(node, 'pub/acme/cachedtickets/order-1.pdf', 30 * KiB).expect(201);
    await put(node, 'pub/acme/cachedtickets/order-2.pdf', 20 * KiB).expect(201);
    await put(node, 'priv/acme/invoices/inv-1.pdf', 5 * KiB).expect(201);
    await put(node, 'pub/globex/exports/e.csv', 40 * KiB).expect(201);
    await put(node, 'pub/top-level.txt', 1 * KiB).expect(201);
    await node.ctx.monitoring.sample();
  });
  afterAll(() => node.close());

  it('has exactly the fields of docs/design.md §8 and docs/monitoring.md, with their types', async () => {
    const report = await usage(node);
    expect(Object.keys(report).sort()).toEqual(['alertDetails', 'alerts', 'classes', 'disk', 'eviction', 'fillRate', 'headroomBytes', 'inflight',
      'lastEviction', 'lastRun', 'scrub', 'status', 'tenants', 'tmp', 'typicalUploadBytes', 'writable', 'writableReason', 'writes']);
    expect(Object.keys(report.disk).sort()).toEqual(['freeBytes', 'highWatermarkPercent', 'lowWatermarkPercent', 'path', 'reserveBytes',
      'totalBytes', 'usedBytes', 'usedPercent']);
    expect(report.disk.path).toBe(node.dataDir);
    for (const key of ['totalBytes', 'freeBytes', 'usedBytes', 'usedPercent', 'reserveBytes'] as const) expect(typeof report.disk[key]).toBe('number');
    expect(report.disk.totalBytes).toBeGreaterThan(0);
    expect(report.disk.usedBytes).toBe(report.disk.totalBytes - report.disk.freeBytes);
    expect(['ok', 'warning', 'critical']).toContain(report.status);
    expect(report.writable).toBe(true);
    expect(report.writableReason).toBeNull();
    expect(report.headroomBytes).toBe(report.disk.freeBytes - report.disk.reserveBytes);
    expect(report.inflight).toEqual({ uploads: 0, reservedBytes: 0 });
    expect(report.tmp).toEqual({ files: 0, bytes: 0, oldestSeconds: null });
    expect(report.classes.map((c) => Object.keys(c).sort())).toEqual(report.classes.map(() => ['bytes', 'class', 'files', 'quotaBytes']));
    expect(report.classes.map((c) => c.class).sort()).toEqual(['cache', 'default']);
    expect(report.classes.find((c) => c.class === 'cache')).toEqual({ class: 'cache', files: 3, bytes: 90 * KiB, quotaBytes: null });
    expect(report.tenants[0]).toEqual({
      tenant: 'acme', files: 3, bytes: 55 * KiB, growth24hBytes: 0,
      // Per class with the class's maxBytesPerTenant (the shipped cache class: 5 GiB; default: none).
      classes: [
        { class: 'cache', files: 2, bytes: 50 * KiB, inflightBytes: 0, quotaBytes: 5 * GiB },
        { class: 'default', files: 1, bytes: 5 * KiB, inflightBytes: 0, quotaBytes: null },
      ],
      // Uploads in flight, and refusals by the tenant's limits (429) and quotas (507).
      inflight: { uploads: 0, bytes: 0 },
      throttled: { last15m: 0, last24h: 0 },
      quotaRefused: { last15m: 0, last24h: 0 },
      lastLimit: null,
    });
    expect(report.tenants.map((t) => t.tenant)).toEqual(['acme', 'globex', '-']);
    expect(Object.keys(report.fillRate).sort()).toEqual(['bytesPerHour', 'hoursToFull']);
    expect(report.fillRate).toEqual({ bytesPerHour: null, hoursToFull: null });
    expect(report.lastEviction).toBeNull();
    expect(report.lastRun).toBeNull();
    expect(report.scrub).toBeNull();
    expect(report.alerts).toEqual([]);
    expect(await put(node, 'pub/acme/cachedtickets/order-3.pdf', KiB).then((r) => r.status)).toBe(201);
    expect((await usage(node)).tenants[0].growth24hBytes).toBe(KiB);
  });

  it('totals equal the sums of stored files after uploads and deletes', async () => {
    await put(node, 'pub/initech/cachedtickets/a.pdf', 7 * KiB).expect(201);
    await expectTotalsMatchDisk(node);
    await request(node.app).delete('/pub/acme/cachedtickets/order-1.pdf').expect(204);
    await request(node.app).delete('/pub/top-level.txt').expect(204);
    const report = await expectTotalsMatchDisk(node);
    expect(report.tenants.map((t) => t.tenant)).not.toContain('-');
  });

  it('files indexed behind the server by another handle on the same index show up', async () => {
    const before = await usage(node);
    const other = openSqliteIndex(path.join(node.dataDir, 'index.sqlite'));
    try {
      await other.files.put({ name: 'pub/hooli/x.bin', tenant: 'hooli', class: 'default', size: 3 * GiB, sha256: '0'.repeat(64), createdMs: 1, accessedMs: 1, expiresMs: null });
      const after = await usage(node);
      expect(after.tenants[0]).toMatchObject({ tenant: 'hooli', files: 1, bytes: 3 * GiB, growth24hBytes: 3 * GiB });
      const defaultBefore = before.classes.find((c) => c.class === 'default')!;
      expect(after.classes.find((c) => c.class === 'default')).toEqual({ ...defaultBefore, files: defaultBefore.files + 1, bytes: defaultBefore.bytes + 3 * GiB });
      await other.files.remove('pub/hooli/x.bin');
      expect((await usage(node)).tenants.map((t) => t.tenant)).not.toContain('hooli');
    } finally {
      await other.close();
    }
  });

  it('lastEviction and "eviction failed" come from the eviction report', async () => {
    let last: EvictionRun | null = null;
    const listeners: ((run: EvictionRun) => void)[] = [];
    const eviction: EvictionReport = { lastRun: async () => last, recentRuns: async () => (last ? [last] : []), lockHolder: async () => ({ pid: 4242, sinceMs: Date.now() - 90_000 }), onRun: (l) => { listeners.push(l); } };
    node.ctx.monitoring.attachEviction(eviction);
    last = { at: Date.UTC(2026, 10, 27, 4, 15), files: 12, bytes: 3 * KiB, durationMs: 41, reason: 'schedule', error: 'EACCES' };
    const report = await usage(node);
    expect(report.lastEviction).toEqual({ at: '2026-11-27T04:15:00.000Z', files: 12, bytes: 3 * KiB, durationMs: 41, reason: 'schedule', error: 'EACCES' });
    expect(report.lastRun).toEqual(report.lastEviction);
    expect(report.eviction).toMatchObject({ lockHolderPid: 4242, lockSinceSeconds: 90 });
    expect(report.alerts).toContain('eviction failed at 04:15: EACCES');
  });
});

describe('GET /usage after an eviction run', () => {
  let node: TestNode;
  let clock = Date.now();
  beforeAll(async () => {
    node = await testNode({ now: () => clock, config: { durability: 'none' } });
    for (let i = 0; i < 3; i++) await put(node, `pub/acme/cachedtickets/old-${i}.pdf`, (i + 1) * KiB).expect(201);
    await put(node, 'pub/acme/invoices/keep.pdf', 9 * KiB).expect(201);
  });
  afterAll(() => node.close());

  it('totals equal the files left, lastEviction and the eviction counters report the run', async () => {
    clock += 31 * 24 * 3_600_000; // past the cache class maxAge (30d)
    const run = await request(node.app).post('/admin/evict').expect(200);
    expect(run.body.files).toBe(3);
    const report = await expectTotalsMatchDisk(node);
    expect(report.tenants).toMatchObject([{ tenant: 'acme', files: 1, bytes: 9 * KiB, growth24hBytes: null }]);
    expect(report.lastEviction).toMatchObject({ at: new Date(clock).toISOString(), files: 3, bytes: 6 * KiB, reason: 'admin' });
    expect(report.eviction.runs).toEqual([{ ...report.lastEviction, error: null }]);
    expect(report.eviction.lockHolderPid).toBeNull();
    expect(typeof report.lastEviction!.durationMs).toBe('number');
    const metrics = (await request(node.app).get('/metrics').expect(200)).text;
    expect(metrics).toContain('nanocdn_evicted_files_total{reason="max-age"} 3');
    expect(metrics).toContain(`nanocdn_evicted_bytes_total{reason="max-age"} ${6 * KiB}`);
    expect(metrics).toContain('nanocdn_eviction_runs_total{result="ok"} 1');
    expect(metrics).toContain(`nanocdn_eviction_last_success_timestamp_seconds ${clock / 1000}`);
  });

  it('an empty run after it is lastRun; lastEviction stays the run that removed files; a failed run is lastRun and an alert', async () => {
    const removing = (await usage(node)).lastEviction;
    expect(removing).toMatchObject({ files: 3, reason: 'admin' });
    clock += 60_000;
    await request(node.app).post('/admin/evict').expect(200);
    let report = await usage(node);
    expect(report.lastEviction).toEqual(removing);
    expect(report.lastRun).toMatchObject({ at: new Date(clock).toISOString(), files: 0, bytes: 0, reason: 'admin', error: null });
    expect(report.eviction.lastSuccessAt).toBe(new Date(clock).toISOString());
    const succeededAt = clock;
    clock += 60_000;
    await node.ctx.evictor.recordFailure('schedule', 'EACCES: permission denied');
    report = await usage(node);
    expect(report.lastEviction).toEqual(removing);
    expect(report.lastRun).toMatchObject({ at: new Date(clock).toISOString(), files: 0, reason: 'schedule', error: 'EACCES: permission denied' });
    expect(report.eviction.lastSuccessAt).toBe(new Date(succeededAt).toISOString());
    expect(report.alerts.some((a) => a.startsWith('eviction failed at ') && a.endsWith('EACCES: permission denied'))).toBe(true);
    const metrics = (await request(node.app).get('/metrics').expect(200)).text;
    expect(metrics).toContain(`nanocdn_eviction_last_success_timestamp_seconds ${succeededAt / 1000}`);
    expect(metrics).toContain('nanocdn_eviction_runs_total{result="ok"} 2');
    expect(metrics).toContain('nanocdn_eviction_runs_total{result="failed"} 1');
    expect(metrics).toContain('nanocdn_evicted_files_total{reason="max-age"} 3');
  });

  it('a scrub recorded by another process shows in /usage, its alert and /metrics', async () => {
    const other = openSqliteIndex(path.join(node.dataDir, 'index.sqlite'));
    try {
      await other.scrubs.record({ atMs: Date.UTC(2026, 10, 27, 4, 15), durationMs: 900, files: 10, bytes: 10 * KiB, corrupt: 2, missing: 1, quarantined: 2 });
    } finally {
      await other.close();
    }
    const report = await usage(node);
    expect(report.scrub).toEqual({ at: '2026-11-27T04:15:00.000Z', durationMs: 900, files: 10, bytes: 10 * KiB, corrupt: 2, missing: 1, quarantined: 2 });
    expect(report.alerts).toContain('scrub at 04:15 found 3 bad files (2 quarantined): `nanocdn scrub --json` lists them');
    const metrics = (await request(node.app).get('/metrics').expect(200)).text;
    expect(metrics).toContain(`nanocdn_scrub_last_run_timestamp_seconds ${Date.UTC(2026, 10, 27, 4, 15) / 1000}`);
    expect(metrics).toContain('nanocdn_scrub_corrupt_files 3');
  });
});

describe('GET /usage writable and headroom', () => {
  let node: TestNode | undefined;
  afterEach(async () => { await node?.close(); node = undefined; });
  const MiB = 1024 * KiB;

  it('every 1.6 MB upload gets 507 with 12 MiB reserve on a 48 MiB disk: not writable, with the reason and the headroom', async () => {
    const disk = fakeDisk(48 * MiB, 13 * MiB);
    node = await testNode({ readDisk: disk, config: { disk: { minFreeBytes: '12MiB', minFreePercent: 0, highWatermarkPercent: 100, lowWatermarkPercent: 100 } } });
    for (let i = 0; i < 3; i++) await put(node, `pub/acme/big-${i}.bin`, 1_600_000).expect(507);
    const report = await usage(node);
    expect(report.status).toBe('ok');
    expect(report.headroomBytes).toBe(1 * MiB);
    expect(report.typicalUploadBytes).toBe(1_600_000);
    expect(report.writable).toBe(false);
    expect(report.writableReason).toMatch(/1\.00 MiB of headroom above the 12\.0 MiB reserve is less than a typical upload \(1\.53 MiB, the median/);
    expect(report.alerts[0]).toMatch(/^not writable: /);
    // Space comes back: writable again.
    disk.free = 40 * MiB;
    await node.ctx.guard.refresh(true);
    const after = await usage(node);
    expect(after.headroomBytes).toBe(28 * MiB);
    expect(after.writable).toBe(true);
    expect(after.writableReason).toBeNull();
  });

  it('without upload history a floor of 64 KiB stands for a typical upload', async () => {
    node = await testNode({ readDisk: fakeDisk(48 * MiB, 12 * MiB + 32 * KiB), config: { disk: { minFreeBytes: '12MiB', minFreePercent: 0, highWatermarkPercent: 100, lowWatermarkPercent: 100 } } });
    const report = await usage(node);
    expect(report.typicalUploadBytes).toBe(64 * KiB);
    expect(report.headroomBytes).toBe(32 * KiB);
    expect(report.writable).toBe(false);
    expect(report.writableReason).toContain('the floor');
  });

  it('disk.path is absolute when dataDir is relative', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-rel-'));
    node = await testNode({ dataDir: dir, config: { dataDir: path.relative(process.cwd(), dir) } });
    expect((await usage(node)).disk.path).toBe(dir);
  });
});

describe('GET /usage alerts', () => {
  let node: TestNode | undefined;
  afterEach(async () => { await node?.close(); node = undefined; });

  it('critical disk: free below the reserve, writes refused, and refusals counted', async () => {
    const disk = fakeDisk(100 * GiB, 20 * GiB);
    node = await testNode({ readDisk: disk, config: { disk: { minFreeBytes: '5GiB', minFreePercent: 0, highWatermarkPercent: 90, lowWatermarkPercent: 80 } } });
    expect((await usage(node)).status).toBe('ok');
    disk.free = 1.2 * GiB;
    await node.ctx.guard.refresh(true);
    for (let i = 0; i < 3; i++) await put(node, `pub/acme/f${i}.bin`, 10).expect(507);
    const report = await usage(node);
    expect(report.status).toBe('critical');
    expect(report.writable).toBe(false);
    expect(report.alerts).toEqual([
      'disk critical: 1.20 GiB free, below the 5.00 GiB reserve — writes refused',
      '3 writes refused in the last 15 min (insufficient_storage 3)',
    ]);
  });

  it('refused writes by size limit are counted; client mistakes are not', async () => {
    node = await testNode({ config: { upload: { maxBytes: 100 } } });
    await put(node, 'pub/acme/big.bin', 1000).expect(413);
    await put(node, 'pub/acme/ok.bin', 10).expect(201);
    await put(node, 'pub/acme/ok.bin', 10).expect(409);
    expect((await usage(node)).alerts).toEqual(['1 write refused in the last 15 min (upload_too_large 1)']);
  });

  it('a growing tenant, against injected hourly history', async () => {
    const disk = fakeDisk(1024 * KiB, 900 * KiB);
    node = await testNode({ readDisk: disk, config: { durability: 'none' } });
    const dayAgo = Date.now() - 24 * HOUR;
    await node.ctx.monitoring.history.recordTenant(dayAgo, 'acme', 20 * KiB);
    await node.ctx.monitoring.history.recordTenant(dayAgo, 'globex', 50 * KiB);
    await put(node, 'pub/acme/a.bin', 80 * KiB).expect(201);
    await put(node, 'pub/globex/g.bin', 50 * KiB).expect(201);
    // The baseline says acme held 20 KiB and globex 50 KiB a day ago (the files above are "now").
    const report = await usage(node);
    expect(report.tenants).toMatchObject([
      { tenant: 'acme', files: 1, bytes: 80 * KiB, growth24hBytes: 60 * KiB },
      { tenant: 'globex', files: 1, bytes: 50 * KiB, growth24hBytes: 0 },
    ]);
    expect(report.alerts).toEqual(['tenant acme grew 60.0 KiB in 24 h (100 % of growth)']);
  });

  // A file planted in tmp/: only the fs engine's spool can hold what a dead process left.
  it.runIf(TEST_ENGINE === 'fs')('a stuck tmp file older than eviction.tmpMaxAge', async () => {
    node = await testNode();
    const stuck = path.join(node.dataDir, 'tmp', 'crashed-upload');
    writeFileSync(stuck, Buffer.alloc(4 * KiB));
    const twoHoursAgo = new Date(Date.now() - 2 * HOUR);
    utimesSync(stuck, twoHoursAgo, twoHoursAgo);
    const report = await usage(node);
    expect(report.tmp.files).toBe(1);
    expect(report.tmp.bytes).toBe(4 * KiB);
    expect(report.tmp.oldestSeconds).toBeGreaterThanOrEqual(2 * 3600);
    expect(report.alerts).toEqual(['tmp holds 1 file (4.00 KiB), the oldest 2 h old: uploads older than 1 h are not being swept']);
  });

  it('a steady fill in the recorded history: fillRate and "disk full in"', async () => {
    const now = Date.now();
    const disk = fakeDisk(100 * GiB, 40 * GiB);
    node = await testNode({ readDisk: disk, config: { disk: { minFreeBytes: '10GiB', minFreePercent: 0, highWatermarkPercent: 90, lowWatermarkPercent: 80 } } });
    // 6 h at 2 GiB/h up to the 60 GiB used now; 30 GiB of headroom left → 15 h.
    for (let m = 360; m >= 1; m--) await node.ctx.monitoring.history.record(now - m * 60_000, 60 * GiB - (m / 60) * 2 * GiB);
    const report = await usage(node);
    expect(report.fillRate.bytesPerHour! / GiB).toBeCloseTo(2, 3);
    expect(report.fillRate.hoursToFull).toBeCloseTo(15, 1);
    expect(report.alerts).toEqual([expect.stringMatching(/^disk full in 15\.0 h at 2\.00 GiB\/h$/)]);
  });
});

describe('usage history', () => {
  it('survives a restart: growth and fill rate come back from the index', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-history-'));
    const disk = fakeDisk(100 * GiB, 40 * GiB);
    const now = Date.now();
    try {
      const first = await testNode({ dataDir, readDisk: disk, config: { durability: 'none' } });
      await first.ctx.monitoring.history.recordTenant(now - 24 * HOUR, 'acme', 2 * KiB);
      for (let m = 360; m >= 1; m--) await first.ctx.monitoring.history.record(now - m * 60_000, 60 * GiB - (m / 60) * GiB);
      await put(first, 'pub/acme/a.bin', 10 * KiB).expect(201);
      await first.ctx.monitoring.sample();
      const before = await usage(first);
      await first.close();

      // The same store across the restart (the memory engine's objects live in the instance).
      const second = await testNode({ dataDir, readDisk: disk, storage: first.ctx.storage });
      const after = await usage(second);
      await second.close();
      expect(after.tenants).toMatchObject([{ tenant: 'acme', files: 1, bytes: 10 * KiB, growth24hBytes: 8 * KiB }]);
      // The same history; only "now" (the last point of the fit) moved on.
      expect(before.fillRate.hoursToFull).toBe(40);
      expect(after.fillRate.hoursToFull).toBe(40);
      expect(after.fillRate.bytesPerHour! / GiB).toBeCloseTo(1, 3);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('GET /usage access', () => {
  let node: TestNode | undefined;
  afterEach(async () => { await node?.close(); node = undefined; });

  it('needs a token outside the trusted networks unless monitoring.public', async () => {
    node = await testNode({ config: { auth: { tokens: [TOKEN], trustedNetworks: [], signingSecret: null } } });
    const res = await request(node.app).get('/usage').expect(401);
    expect(res.body.error).toBe('unauthorized');
    await request(node.app).get('/usage').set('Authorization', `Bearer ${TOKEN}`).expect(200);
    await request(node.app).get('/usage').set('Authorization', 'Bearer wrong-token-0123456789').expect(401);
    await node.close();
    node = await testNode({ config: { auth: { tokens: [TOKEN], trustedNetworks: [], signingSecret: null }, monitoring: { public: true } } });
    await request(node.app).get('/usage').expect(200);
  });

  it('trusted networks read it without a token', async () => {
    node = await testNode();
    await request(node.app).get('/usage').expect(200);
  });
});

describe('GET /usage: the figures of the status page', () => {
  let node: TestNode | undefined;
  afterEach(async () => { await node?.close(); node = undefined; });

  it('headroom, watermarks, uploads and refusals over 15 min and 24 h, the next scheduled eviction', async () => {
    node = await testNode({
      readDisk: fakeDisk(100 * GiB, 40 * GiB),
      config: { durability: 'none', upload: { maxBytes: '1KiB' }, disk: { minFreeBytes: '10GiB', minFreePercent: 0, highWatermarkPercent: 85, lowWatermarkPercent: 75 } },
    });
    await put(node, 'pub/acme/a.bin', 512).expect(201);
    await put(node, 'pub/acme/a.bin', 512).expect(409);
    await put(node, 'pub/acme/b.bin', 2 * KiB).expect(413);
    const report = await usage(node);
    expect(report.disk).toMatchObject({ highWatermarkPercent: 85, lowWatermarkPercent: 75, reserveBytes: 10 * GiB });
    expect(report.headroomBytes).toBe(report.disk.freeBytes - 10 * GiB);
    const counted = { uploads: { created: 1, exists: 1, refused: 1, failed: 0 }, refused: { count: 1, byReason: { upload_too_large: 1 } } };
    expect(report.writes.last15m).toMatchObject(counted);
    expect(report.writes.last24h).toMatchObject(counted);
    // The node began a moment ago: the 24 h window is counted since then.
    expect(Date.now() - report.writes.last24h.sinceMs).toBeLessThan(60_000);
    expect(report.alertDetails).toEqual([{ severity: 'warning', text: '1 write refused in the last 15 min (upload_too_large 1)' }]);
    expect(report.eviction).toEqual({ runs: [], nextRunAt: null, lastSuccessAt: null, lockHolderPid: null, lockSinceSeconds: null });

    // The schedule starts with the background work (close() stops it).
    node.runtime.startBackground();
    const next = Date.parse((await usage(node)).eviction.nextRunAt!);
    // eviction.schedule "*/15 * * * *": the next quarter hour.
    expect(next % (15 * 60_000)).toBe(0);
    expect(next - Date.now()).toBeGreaterThan(0);
    expect(next - Date.now()).toBeLessThanOrEqual(15 * 60_000);
  });
});
