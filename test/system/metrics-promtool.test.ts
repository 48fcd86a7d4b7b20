// /metrics and /usage of the BUILT server: the exposition passes
// `promtool check metrics`, and index changes made by other processes (a
// second index handle on the same index.sqlite, `nanocdn cleanup`) show
// in both.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteIndex } from '../../src/index/sqlite/sqlite-index.js';
import type { UsageReport } from '../../src/monitoring/usage-report.js';
import { walkFiles } from '../http/raw-http.js';
import { CLI, spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';
import { hasTool, requirement } from '../helpers/system-tools.js';

const KiB = 1024;

function gauge(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  if (line === undefined) return undefined;
  const raw = line.slice(line.lastIndexOf(' ') + 1);
  return raw === '+Inf' ? Infinity : Number(raw);
}

describe.runIf(requirement('promtool', hasTool('promtool'), 'apt-get install prometheus'))('GET /metrics on a running server', () => {
  let server: SpawnedServer;
  const upload = (name: string, bytes: number) =>
    fetch(`${server.url}/upload/${name}`, { method: 'PUT', body: Buffer.alloc(bytes, 3) }).then((r) => r.status);
  const usage = async () => (await (await fetch(`${server.url}/usage`)).json()) as UsageReport;
  const metrics = async () => (await fetch(`${server.url}/metrics`)).text();

  beforeAll(async () => {
    server = await spawnServer({ config: { logLevel: 'error', upload: { maxBytes: 64 * KiB }, eviction: { schedule: '0 0 1 1 *' } } });
    expect(await upload('pub/acme/cachedtickets/a.pdf', 10 * KiB)).toBe(201);
    expect(await upload('pub/acme/cachedtickets/a.pdf', 10 * KiB)).toBe(409);
    expect(await upload('priv/globex/b.pdf', 20 * KiB)).toBe(201);
    expect(await upload('pub/acme/too-big.bin', 100 * KiB)).toBe(413);
    expect((await fetch(`${server.url}/pub/acme/cachedtickets/a.pdf`)).status).toBe(200);
  });
  afterAll(async () => {
    await server?.stop();
    if (server) rmSync(server.dataDir, { recursive: true, force: true });
  });

  it('passes `promtool check metrics`', async () => {
    const body = await metrics();
    const check = spawnSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8' });
    expect(check.stdout + check.stderr).toBe('');
    expect(check.status).toBe(0);
    expect(gauge(body, 'nanocdn_uploads_total', '{result="created"}')).toBe(2);
    expect(gauge(body, 'nanocdn_writes_refused_total', '{reason="upload_too_large"}')).toBe(1);
    expect(gauge(body, 'nanocdn_disk_seconds_to_full')).toBe(Infinity);
  });

  it('a file added by another process shows in /usage and /metrics alike', async () => {
    const name = 'pub/initech/exports/report.csv';
    const file = path.join(server.dataDir, 'files', name);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, Buffer.alloc(300 * KiB, 9));
    const other = openSqliteIndex(path.join(server.dataDir, 'index.sqlite'));
    try {
      await other.files.put({ name, tenant: 'initech', class: 'cache', size: 300 * KiB, sha256: '0'.repeat(64), createdMs: Date.now(), accessedMs: Date.now(), expiresMs: null });
    } finally {
      await other.close();
    }
    const report = await usage();
    expect(report.tenants.map((t) => [t.tenant, t.files, t.bytes])).toEqual([['initech', 1, 300 * KiB], ['globex', 1, 20 * KiB], ['acme', 1, 10 * KiB]]);
    expect(report.classes.find((c) => c.class === 'cache')).toMatchObject({ files: 2, bytes: 310 * KiB });
    const body = await metrics();
    expect(gauge(body, 'nanocdn_tenant_stored_bytes', '{tenant="initech"}')).toBe(300 * KiB);
    expect(gauge(body, 'nanocdn_stored_bytes', '{class="cache"}')).toBe(310 * KiB);
    expect(gauge(body, 'nanocdn_stored_files', '{class="default"}')).toBe(1);
    expect(gauge(body, 'nanocdn_disk_size_bytes')).toBe(report.disk.totalBytes);
    expect(gauge(body, 'nanocdn_disk_reserve_bytes')).toBe(report.disk.reserveBytes);
  });

  it('a cleanup run by the CLI in another process: totals equal the files left, lastEviction names it', async () => {
    const cli = spawnSync(process.execPath, [CLI, 'cleanup', '--class', 'cache', '--max-age', '0s', '--yes', '--json'], {
      env: { ...process.env, NANOCDN_DATA_DIR: server.dataDir }, encoding: 'utf8',
    });
    expect(cli.status, cli.stderr).toBe(0);
    expect(JSON.parse(cli.stdout)).toMatchObject({ files: 2, bytes: 310 * KiB, error: null });
    const report = await usage();
    const onDisk = await walkFiles(path.join(server.dataDir, 'files'));
    expect(onDisk).toEqual(['priv/globex/b.pdf']);
    expect(report.tenants.map((t) => [t.tenant, t.files, t.bytes])).toEqual([['globex', 1, 20 * KiB]]);
    expect(report.classes.map((c) => [c.class, c.files, c.bytes])).toEqual([['cache', 0, 0], ['default', 1, 20 * KiB]]);
    expect(report.lastEviction).toMatchObject({ files: 2, bytes: 310 * KiB, reason: 'cli' });
    const body = await metrics();
    expect(gauge(body, 'nanocdn_stored_bytes', '{class="cache"}')).toBe(0);
    expect(gauge(body, 'nanocdn_tenant_stored_bytes', '{tenant="acme"}')).toBeUndefined();
  });

  it('the CLI run is in the node\'s eviction counters once, however often it is scraped; the node\'s own runs count once too', async () => {
    const counted = (body: string) => ({
      files: gauge(body, 'nanocdn_evicted_files_total', '{reason="max-age"}'),
      bytes: gauge(body, 'nanocdn_evicted_bytes_total', '{reason="max-age"}'),
      ok: gauge(body, 'nanocdn_eviction_runs_total', '{result="ok"}'),
    });
    const first = await metrics();
    expect(counted(first)).toEqual({ files: 2, bytes: 310 * KiB, ok: 1 });
    expect(counted(await metrics())).toEqual(counted(first));
    const lastSuccess = gauge(first, 'nanocdn_eviction_last_success_timestamp_seconds')!;
    expect(lastSuccess * 1000).toBe(Date.parse((await usage()).lastRun!.at));
    // A run of the node itself that removes nothing: one more run, no more files, and lastEviction still the CLI's.
    const admin = await fetch(`${server.url}/admin/evict`, { method: 'POST' });
    expect(admin.status).toBe(200);
    const after = await metrics();
    expect(counted(after)).toEqual({ files: 2, bytes: 310 * KiB, ok: 2 });
    expect(counted(await metrics())).toEqual(counted(after));
    expect(gauge(after, 'nanocdn_eviction_last_success_timestamp_seconds')).toBeGreaterThanOrEqual(lastSuccess);
    const report = await usage();
    expect(report.lastEviction).toMatchObject({ files: 2, reason: 'cli' });
    expect(report.lastRun).toMatchObject({ files: 0, reason: 'admin', error: null });
  });
});
