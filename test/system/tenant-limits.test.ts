import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricSample, spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';
import { indexedFiles } from '../helpers/index-file.js';
import { pause, rawRequest } from '../http/raw-http.js';

/**
 * Tenants that cannot take the node down (docs/design.md §7): exact quotas
 * with bytes in flight, limits against retry storms, idle uploads ended —
 * against the built server in its own process, with truly concurrent
 * clients on real sockets.
 */
const KiB = 1024;
const MiB = 1024 * KiB;

const CLASSES = {
  tickets: { match: ['*/*/tickets/**'], evictable: false, maxBytesPerTenant: '1MiB' },
  cache: { match: ['*/*/cache/**'], evictable: true, maxBytesPerTenant: '1MiB' },
  default: { evictable: false, maxBytesPerTenant: null },
};

/** A body fetch sends chunked (no Content-Length). */
function chunked(body: Buffer): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (let i = 0; i < body.length; i += 64 * KiB) controller.enqueue(body.subarray(i, i + 64 * KiB));
      controller.close();
    },
  });
}

async function put(server: SpawnedServer, name: string, body: Buffer, options: { chunked?: boolean; token?: string } = {}): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(`${server.url}/upload/${name}`, {
    method: 'PUT',
    body: options.chunked ? chunked(body) : body,
    headers: options.token ? { authorization: `Bearer ${options.token}` } : {},
    ...(options.chunked ? { duplex: 'half' } : {}),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) as Record<string, unknown> : {}, headers: res.headers };
}

async function usage(server: SpawnedServer): Promise<Record<string, unknown> & { inflight: { uploads: number; reservedBytes: number }; headroomBytes: number; alerts: string[] }> {
  return (await fetch(`${server.url}/usage`)).json() as never;
}

async function storedOf(server: SpawnedServer, tenant: string, cls: string): Promise<number> {
  const rows = await indexedFiles(server.dataDir);
  return rows.filter((r) => r.tenant === tenant && r.class === cls).reduce((sum, r) => sum + r.size, 0);
}

/** Opens a raw connection, sends the head of a PUT declaring `declared` bytes and `sent` bytes of body, then stays silent. */
function stall(server: SpawnedServer, name: string, declared: number, sent: number, headers: Record<string, string> = {}): Promise<{ socket: net.Socket; received: () => string; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(server.port, '127.0.0.1');
    let text = '';
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.on('data', (d: Buffer) => { text += d.toString('latin1'); });
    socket.on('error', () => undefined);
    socket.once('connect', () => {
      const extra = Object.entries(headers).map(([key, value]) => `${key}: ${value}\r\n`).join('');
      socket.write(`PUT /upload/${name} HTTP/1.1\r\nHost: x\r\nContent-Length: ${declared}\r\n${extra}\r\n`);
      socket.write(Buffer.alloc(sent, 1));
      resolve({ socket, received: () => text, closed });
    });
    socket.once('error', reject);
  });
}

async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check()) && Date.now() < deadline) await pause(50);
}

describe('tenant quotas count bytes in flight (built server, concurrent clients)', () => {
  let server: SpawnedServer;
  beforeAll(async () => {
    server = await spawnServer({ config: { disk: { minFreeBytes: '1MiB', minFreePercent: 0, highWatermarkPercent: 100, lowWatermarkPercent: 100 }, classes: CLASSES } });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('10 concurrent 800 KB PUTs into a 1 MiB non-evictable quota: exactly one 201, the rest 507 quota_exceeded', async () => {
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => put(server, `pub/acme/tickets/t-${i}.pdf`, randomBytes(800 * 1000))));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([201, ...Array(9).fill(507)]);
    for (const r of results.filter((x) => x.status === 507)) {
      expect(r.json).toMatchObject({ error: 'quota_exceeded', tenant: 'acme', class: 'tickets', quotaBytes: MiB });
    }
    expect(await storedOf(server, 'acme', 'tickets')).toBeLessThanOrEqual(MiB);
  });

  it('the same with chunked bodies (no Content-Length): exactly one 201', async () => {
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => put(server, `pub/bravo/tickets/t-${i}.pdf`, randomBytes(800 * 1000), { chunked: true })));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([201, ...Array(9).fill(507)]);
    for (const r of results.filter((x) => x.status === 507)) expect(r.json.error).toBe('quota_exceeded');
    expect(await storedOf(server, 'bravo', 'tickets')).toBeLessThanOrEqual(MiB);
  });

  it('an evictable class under the same race ends at or under its quota', async () => {
    for (let round = 0; round < 3; round++) {
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => put(server, `pub/charlie/cache/r${round}-${i}.pdf`, randomBytes(800 * 1000), { chunked: i % 2 === 1 })));
      for (const r of results) expect([201, 507]).toContain(r.status);
      expect(results.some((r) => r.status === 201)).toBe(true);
      expect(await storedOf(server, 'charlie', 'cache')).toBeLessThanOrEqual(MiB);
    }
    const u = await usage(server);
    expect(u.inflight).toEqual({ uploads: 0, reservedBytes: 0 });
  });
});

describe('idle uploads end and a stalled tenant does not stop another (built server)', () => {
  let server: SpawnedServer;
  beforeAll(async () => {
    server = await spawnServer({
      config: {
        upload: { maxBytes: '1TiB', idleTimeout: '1s' },
        disk: { minFreeBytes: '1MiB', minFreePercent: 0, highWatermarkPercent: 100, lowWatermarkPercent: 100 },
      },
    });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('an upload declared as the whole headroom − 0.5 MB that stalls does not make tenant B\'s uploads 507', async () => {
    const headroom = (await usage(server)).headroomBytes;
    const hog = await stall(server, 'pub/hog/big.bin', headroom - 500_000, 10);
    await pause(200);
    const b = await put(server, 'pub/bee/a.bin', randomBytes(MiB));
    expect(b.status).toBe(201);
    hog.socket.destroy();
    await eventually(async () => (await usage(server)).inflight.uploads === 0);
  });

  it('a stalled upload is ended after upload.idleTimeout with 408 request_timeout JSON, its tmp file gone and its holds freed', async () => {
    const a = await stall(server, 'pub/hog/slow.bin', 4 * MiB, 1000);
    await eventually(async () => (await usage(server)).inflight.uploads === 1, 3000);
    expect((await usage(server)).inflight.reservedBytes).toBeGreaterThan(0);
    // Meanwhile tenant B writes.
    expect((await put(server, 'pub/bee/b.bin', randomBytes(100 * KiB))).status).toBe(201);
    await eventually(() => a.received().includes('\r\n\r\n'), 10_000);
    expect(a.received()).toMatch(/^HTTP\/1\.1 408 /);
    const body = a.received().slice(a.received().indexOf('\r\n\r\n') + 4);
    expect(JSON.parse(body.slice(body.indexOf('{'), body.lastIndexOf('}') + 1))).toMatchObject({ error: 'request_timeout' });
    await eventually(async () => (await usage(server)).inflight.uploads === 0);
    expect((await usage(server)).inflight).toEqual({ uploads: 0, reservedBytes: 0 });
    expect(readdirSync(path.join(server.dataDir, 'tmp'))).toEqual([]);
    a.socket.destroy();
  });
});

describe('retry storm: 32 clients hammer tenant A while 2 upload steadily for tenant B (built server)', () => {
  let server: SpawnedServer;
  beforeAll(async () => {
    server = await spawnServer({
      config: {
        disk: { minFreeBytes: '1MiB', minFreePercent: 0, highWatermarkPercent: 100, lowWatermarkPercent: 100 },
        classes: CLASSES,
        limits: { tenant: { uploadsPerMinute: 100, bytesPerMinute: '64MiB', inflightUploads: 8, inflightBytes: '50%' } },
      },
    });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('B gets only 201s, A only 201/429/507, 429s carry Retry-After, and /usage names A', async () => {
    const aStatuses = new Map<number, number>();
    const bStatuses = new Map<number, number>();
    let minRoom = Infinity;
    let running = true;
    let n = 0;
    const storm = Array.from({ length: 32 }, async () => {
      while (running) {
        const res = await put(server, `pub/alpha/tickets/${n++}.pdf`, randomBytes(16 * KiB));
        aStatuses.set(res.status, (aStatuses.get(res.status) ?? 0) + 1);
        if (res.status === 429) {
          expect(res.json).toMatchObject({ error: 'rate_limited', tenant: 'alpha' });
          expect(typeof res.json.limit).toBe('string');
          expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
        }
      }
    });
    const steady = Array.from({ length: 2 }, async (_, c) => {
      for (let i = 0; i < 15; i++) {
        const res = await put(server, `pub/beta/docs/${c}-${i}.pdf`, randomBytes(64 * KiB));
        bStatuses.set(res.status, (bStatuses.get(res.status) ?? 0) + 1);
        const u = await usage(server);
        minRoom = Math.min(minRoom, (u as unknown as { disk: { freeBytes: number; reserveBytes: number } }).disk.freeBytes -
          (u as unknown as { disk: { reserveBytes: number } }).disk.reserveBytes);
        await pause(100);
      }
    });
    await Promise.all(steady);
    running = false;
    await Promise.all(storm);
    expect([...bStatuses.keys()]).toEqual([201]);
    for (const status of aStatuses.keys()) expect([201, 429, 507]).toContain(status);
    expect(aStatuses.get(429) ?? 0).toBeGreaterThan(0);
    expect(minRoom).toBeGreaterThanOrEqual(0);
    const u = await usage(server);
    expect(u.alerts.some((a) => /tenant alpha was throttled \d[\d,]* times in the last 15 min \(limit /.test(a))).toBe(true);
    const alpha = (u.tenants as { tenant: string; throttled: { last15m: number } }[]).find((t) => t.tenant === 'alpha');
    expect(alpha?.throttled.last15m).toBeGreaterThan(0);
  });
});

// Workers admit a tenant's uploads on spare holds (docs/design.md §14): quotas and limits stay exact for the node.
describe('workers 2: spare holds keep quotas and limits exact (built server, real worker processes)', () => {
  let server: SpawnedServer;
  beforeAll(async () => {
    server = await spawnServer({
      env: { NANOCDN_WORKERS: '2' },
      config: {
        disk: { minFreeBytes: '1MiB', minFreePercent: 0, highWatermarkPercent: 100, lowWatermarkPercent: 100 },
        classes: { ...CLASSES, tickets: { ...CLASSES.tickets, maxBytesPerTenant: '20MiB' } },
        limits: { tenant: { uploadsPerMinute: 30, bytesPerMinute: null, inflightUploads: null, inflightBytes: null } },
      },
    });
    await eventually(() => server.output().includes('"message":"nanocdn listening"'));
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('a 20 MiB quota takes exactly 20 uploads of 1 MB from both workers; uploadsPerMinute exactly 30 of another tenant', async () => {
    // One after the other, a new connection each: the primary deals them to the workers in turn, so each worker
    // keeps spares of the tenant while the other asks — at the limit, the other's admission needs a recall.
    const upload = (name: string) => rawRequest(server.port, { method: 'PUT', path: `/upload/${name}`, headers: { 'content-length': 1_000_000, connection: 'close' }, body: randomBytes(1_000_000) });
    const statusesOf = async (names: string[]) => {
      const statuses: number[] = [];
      for (const name of names) statuses.push((await upload(name)).status);
      return statuses;
    };
    // Tenant acme: 28 uploads into its 20 MiB (20.97 MB) quota of tickets. In order: a refusal only once the quota is
    // full, never while room sits in the other worker's spares.
    expect(await statusesOf(Array.from({ length: 28 }, (_, i) => `pub/acme/tickets/q-${i}.pdf`))).toEqual([...Array(20).fill(201), ...Array(8).fill(507)]);
    expect(await storedOf(server, 'acme', 'tickets')).toBe(20_000_000);
    // Tenant zulu, no quota: 36 uploads against 30 a minute (a bucket that refills by one every 2 s).
    const started = Date.now();
    const zulu = await statusesOf(Array.from({ length: 36 }, (_, i) => `pub/zulu/docs/r-${i}.pdf`));
    const refilled = Math.floor((Date.now() - started) / 2000);
    expect(zulu.slice(0, 30)).toEqual(Array(30).fill(201));
    expect(zulu.filter((status) => status === 201).length).toBeLessThanOrEqual(30 + refilled);
    for (const status of zulu.slice(30)) expect([201, 429]).toContain(status);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    // Most went on spares (a worker's first upload of a tenant asks the primary, and whatever came before its spares did).
    expect(metricSample(metrics, 'nanocdn_spare_admissions_total')).toBeGreaterThan(20);
    // Refusals are told once each, however often they were decided around a recall.
    expect(metricSample(metrics, 'nanocdn_quota_refusals_total{class="tickets"}')).toBe(8);
    expect(metricSample(metrics, 'nanocdn_tenant_throttled_total{limit="uploadsPerMinute"}')).toBe(zulu.filter((status) => status === 429).length);
  });

  it('an upload that fits the quota only without the workers\' spares is admitted after a recall, not refused', async () => {
    const upload = (name: string, size: number) => rawRequest(server.port, { method: 'PUT', path: `/upload/${name}`, headers: { 'content-length': size, connection: 'close' }, body: randomBytes(size) });
    const sample = async (name: string) => metricSample(await (await fetch(`${server.url}/metrics`)).text(), name);
    const recallsBefore = await sample('nanocdn_spare_recalls_total');
    const refusalsBefore = await sample('nanocdn_quota_refusals_total{class="tickets"}');
    // 10 MB of tenant kilo's 20 MiB of tickets, through both workers: each keeps 1 MiB spares of kilo's tickets.
    for (let i = 0; i < 10; i++) expect((await upload(`pub/kilo/tickets/s-${i}.pdf`, 1_000_000)).status).toBe(201);
    // The rest of the quota, at once (within the 2 s a spare stays unused): it fits only once the spares are given back.
    const rest = 20 * MiB - 10_000_000;
    expect((await upload('pub/kilo/tickets/rest.pdf', rest)).status).toBe(201);
    expect(await storedOf(server, 'kilo', 'tickets')).toBe(20 * MiB);
    expect(await sample('nanocdn_spare_recalls_total')).toBeGreaterThan(recallsBefore);
    expect(await sample('nanocdn_quota_refusals_total{class="tickets"}')).toBe(refusalsBefore);
    // And the quota is full: one byte more is refused.
    expect((await upload('pub/kilo/tickets/one-more.pdf', 1)).status).toBe(507);
  });

  it('a tenant new to a worker starts on a disk spare; the primary\'s refusal fails it before it is stored (507 JSON, tmp empty); a client waiting for 100 Continue is decided before its body', async () => {
    const upload = (name: string, size: number) => rawRequest(server.port, { method: 'PUT', path: `/upload/${name}`, headers: { 'content-length': size, connection: 'close' }, body: randomBytes(size) });
    const sample = async (name: string) => metricSample(await (await fetch(`${server.url}/metrics`)).text(), name);
    // Uploads of 1 MB through both workers (new connections are dealt in turn): each keeps disk spares of 1 MiB.
    for (let i = 0; i < 4; i++) expect((await upload(`pub/warm${i}/docs/w.pdf`, 1_000_000)).status).toBe(201);
    // Tenant yank fills its 20 MiB of tickets but for 500 KB with one upload too big for spares of any kind:
    // neither worker keeps anything of yank after it (no upload in flight, no spare).
    const first = 20 * MiB - 500_000;
    expect((await upload('pub/yank/tickets/big.pdf', first)).status).toBe(201);
    const onSpares = await sample('nanocdn_spare_admissions_total');
    const refusals = await sample('nanocdn_quota_refusals_total{class="tickets"}');
    // 1 MB more: admitted in the worker on a disk spare, its body sent; the primary refuses it on the quota.
    const refused = await upload('pub/yank/tickets/over.pdf', 1_000_000);
    expect(refused.status).toBe(507);
    expect(JSON.parse(refused.body.toString()) as unknown).toMatchObject({ error: 'quota_exceeded' });
    expect(await sample('nanocdn_spare_admissions_total')).toBe(onSpares + 1);
    expect(await sample('nanocdn_quota_refusals_total{class="tickets"}')).toBe(refusals + 1);
    // Nothing of it stored or left in tmp; the node holds nothing for it.
    expect(await storedOf(server, 'yank', 'tickets')).toBe(first);
    expect((await fetch(`${server.url}/pub/yank/tickets/over.pdf`)).status).toBe(404);
    expect(readdirSync(path.join(server.dataDir, 'tmp'))).toEqual([]);
    expect((await usage(server)).inflight.uploads).toBe(0);
    // A client that waits for 100 Continue is decided before its body, whichever worker takes it: 507 and no 100.
    for (let i = 0; i < 2; i++) {
      const { socket, received, closed } = await stall(server, `pub/yank/tickets/expect-${i}.pdf`, 1_000_000, 0, { expect: '100-continue' });
      await eventually(() => received().includes('\r\n\r\n'));
      expect(received()).toMatch(/^HTTP\/1\.1 507 /);
      socket.destroy();
      await closed;
    }
    // The quota's last 500 KB is still there for the tenant.
    expect((await upload('pub/yank/tickets/last.pdf', 500_000)).status).toBe(201);
  });
});
