import { readFileSync } from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { EvictionRun } from '../../src/eviction/report.js';
import type { UsageReport } from '../../src/monitoring/usage-report.js';
import { fakeDisk, testNode, type TestNode } from '../helpers/test-node.js';

const KiB = 1024;
const GiB = 1024 ** 3;
const TOKEN = 'monitoring-token-0123456789';

interface Sample { name: string; labels: Record<string, string>; value: number }

/** Parses the Prometheus text format (enough of it for these tests). */
function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`unparsable line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]] = pair[2];
    samples.push({ name: match[1], labels, value: match[3] === '+Inf' ? Infinity : Number(match[3]) });
  }
  return samples;
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

const put = (node: TestNode, name: string, bytes: number) =>
  request(node.app).put(`/upload/${name}`).set('Content-Type', 'application/octet-stream').send(Buffer.alloc(bytes, 1));
const scrape = async (node: TestNode) => {
  const res = await request(node.app).get('/metrics').expect(200).expect('Content-Type', /^text\/plain; version=0\.0\.4/);
  return parseMetrics(res.text);
};

describe('GET /metrics', () => {
  let node: TestNode;
  beforeAll(async () => {
    // A stopped clock: the disk reading never ages, so /usage and /metrics read the same one (not a timing race).
    const now = Date.now();
    node = await testNode({ now: () => now, readDisk: fakeDisk(100 * GiB, 60 * GiB), config: { durability: 'none', upload: { maxBytes: 64 * KiB } } });
    await put(node, 'pub/acme/cachedtickets/a.pdf', 30 * KiB).expect(201);
    await put(node, 'pub/acme/cachedtickets/a.pdf', 30 * KiB).expect(409);
    await put(node, 'priv/globex/doc.pdf', 10 * KiB).expect(201);
    await put(node, 'pub/acme/huge.bin', 65 * KiB).expect(413);
  });
  afterAll(() => node.close());

  it('gauges equal the /usage document of the same moment', async () => {
    const usage = (await request(node.app).get('/usage').expect(200)).body as UsageReport;
    const m = await scrape(node);
    expect(value(m, 'nanocdn_disk_size_bytes')).toBe(usage.disk.totalBytes);
    expect(value(m, 'nanocdn_disk_free_bytes')).toBe(usage.disk.freeBytes);
    expect(value(m, 'nanocdn_disk_reserve_bytes')).toBe(usage.disk.reserveBytes);
    expect(value(m, 'nanocdn_disk_reserved_inflight_bytes')).toBe(usage.inflight.reservedBytes);
    expect(value(m, 'nanocdn_inflight_uploads')).toBe(usage.inflight.uploads);
    expect(value(m, 'nanocdn_disk_seconds_to_full')).toBe(Infinity);
    expect(usage.fillRate.hoursToFull).toBeNull();
    for (const cls of usage.classes) {
      expect(value(m, 'nanocdn_stored_bytes', { class: cls.class })).toBe(cls.bytes);
      expect(value(m, 'nanocdn_stored_files', { class: cls.class })).toBe(cls.files);
    }
    expect(value(m, 'nanocdn_stored_bytes', { class: 'cache' })).toBe(30 * KiB);
    const tenants = m.filter((s) => s.name === 'nanocdn_tenant_stored_bytes');
    expect(Object.fromEntries(tenants.map((s) => [s.labels.tenant, s.value]))).toEqual(Object.fromEntries(usage.tenants.map((t) => [t.tenant, t.bytes])));
    expect(value(m, 'nanocdn_tmp_files')).toBe(usage.tmp.files);
    expect(value(m, 'nanocdn_tmp_bytes')).toBe(usage.tmp.bytes);
    expect(value(m, 'nanocdn_tmp_oldest_seconds')).toBe(0);
  });

  it('exports nanocdn_build_info{version,node} = 1 and one nanocdn_disk_state series per state', async () => {
    const m = await scrape(node);
    const { version } = JSON.parse(readFileSync(path.join(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string };
    expect(value(m, 'nanocdn_build_info', { version, node: process.version })).toBe(1);
    const states = m.filter((s) => s.name === 'nanocdn_disk_state');
    expect(Object.fromEntries(states.map((s) => [s.labels.state, s.value]))).toEqual({ ok: 1, warning: 0, critical: 0 });
    expect(value(m, 'nanocdn_ready')).toBe(1);
  });

  it('counts uploads by result and refusals by reason', async () => {
    const m = await scrape(node);
    expect(value(m, 'nanocdn_uploads_total', { result: 'created' })).toBe(2);
    expect(value(m, 'nanocdn_uploads_total', { result: 'exists' })).toBe(1);
    expect(value(m, 'nanocdn_uploads_total', { result: 'refused' })).toBe(1);
    expect(value(m, 'nanocdn_uploads_total', { result: 'failed' })).toBe(0);
    expect(value(m, 'nanocdn_writes_refused_total', { reason: 'upload_too_large' })).toBe(1);
    expect(value(m, 'nanocdn_writes_refused_total', { reason: 'insufficient_storage' })).toBe(0);
    expect(value(m, 'nanocdn_eviction_runs_total', { result: 'failed' })).toBe(0);
  });

  it('times requests by route label and status class, never by name', async () => {
    await request(node.app).get('/pub/acme/cachedtickets/a.pdf').expect(200);
    await request(node.app).get('/pub/acme/nothing.pdf').expect(404);
    const m = await scrape(node);
    const count = (route: string, status: string) => value(m, 'nanocdn_http_request_duration_seconds_count', { route, status });
    expect(count('upload', '2xx')).toBe(2);
    expect(count('upload', '4xx')).toBe(2);
    expect(count('download', '2xx')).toBe(1);
    expect(count('download', '4xx')).toBe(1);
    expect(count('usage', '2xx')).toBe(1);
    const routes = new Set(m.filter((s) => s.name.startsWith('nanocdn_http_request_duration_seconds')).map((s) => s.labels.route));
    expect([...routes].every((r) => ['upload', 'download', 'delete', 'usage', 'metrics', 'health', 'admin', 'other'].includes(r))).toBe(true);
  });

  it('counts eviction runs and evicted files/bytes by reason', async () => {
    let listener: ((run: EvictionRun) => void) | undefined;
    node.ctx.monitoring.attachEviction({ lastRun: async () => null, recentRuns: async () => [], lockHolder: async () => null, onRun: (l) => { listener = l; } });
    listener!({ at: Date.now(), files: 3, bytes: 300, durationMs: 5, reason: 'schedule', error: null, byReason: { 'max-idle': { files: 2, bytes: 200 }, expired: { files: 1, bytes: 100 } } });
    listener!({ at: Date.now(), files: 0, bytes: 0, durationMs: 1, reason: 'cli', error: 'EACCES' });
    const m = await scrape(node);
    expect(value(m, 'nanocdn_eviction_runs_total', { result: 'ok' })).toBe(1);
    expect(value(m, 'nanocdn_eviction_runs_total', { result: 'failed' })).toBe(1);
    expect(value(m, 'nanocdn_evicted_files_total', { reason: 'max-idle' })).toBe(2);
    expect(value(m, 'nanocdn_evicted_bytes_total', { reason: 'expired' })).toBe(100);
  });

  it('exports default process metrics, without the gauges named like counters', async () => {
    const m = await scrape(node);
    expect(value(m, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(m.some((s) => s.name === 'nodejs_active_handles')).toBe(true);
    expect(m.some((s) => s.name === 'nodejs_active_handles_total')).toBe(false);
  });
});

describe('GET /metrics with 1,000 tenants', () => {
  let node: TestNode;
  beforeAll(async () => {
    node = await testNode({ config: { durability: 'none', usage: { topTenants: 20 } } });
    for (let i = 0; i < 1000; i++) await put(node, `pub/t${String(i).padStart(4, '0')}/f.bin`, 1 + (i % 97) * 11).expect(201);
  }, 60_000);
  afterAll(() => node.close());

  it('exports only the top usage.topTenants tenants, the same ones /usage lists', async () => {
    const usage = (await request(node.app).get('/usage').expect(200)).body as UsageReport;
    const m = await scrape(node);
    const tenants = m.filter((s) => s.name === 'nanocdn_tenant_stored_bytes');
    expect(tenants).toHaveLength(20);
    expect(usage.tenants).toHaveLength(20);
    expect(tenants.map((s) => [s.labels.tenant, s.value]).sort()).toEqual(usage.tenants.map((t) => [t.tenant, t.bytes]).sort());
    // Sizes are 1 + (i % 97) × 11: ten tenants of each of the two largest sizes.
    expect(tenants.map((s) => s.value).sort()).toEqual([...Array(10).fill(1 + 95 * 11), ...Array(10).fill(1 + 96 * 11)]);
    const series = new Set(m.map((s) => `${s.name}${JSON.stringify(s.labels)}`));
    expect(series.size).toBeLessThan(400);
  });
});

describe('GET /metrics access', () => {
  let node: TestNode | undefined;
  afterEach(async () => { await node?.close(); node = undefined; });

  it('needs a token outside the trusted networks unless monitoring.public', async () => {
    node = await testNode({ config: { auth: { tokens: [TOKEN], trustedNetworks: [], signingSecret: null } } });
    await request(node.app).get('/metrics').expect(401);
    await request(node.app).get('/metrics').set('Authorization', `Bearer ${TOKEN}`).expect(200);
    await node.close();
    node = await testNode({ config: { auth: { tokens: [TOKEN], trustedNetworks: [], signingSecret: null }, monitoring: { public: true } } });
    await request(node.app).get('/metrics').expect(200);
  });
});
