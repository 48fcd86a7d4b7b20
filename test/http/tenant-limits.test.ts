import { randomBytes } from 'node:crypto';
import net from 'node:net';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fakeDisk, testNode, type TestNode } from '../helpers/test-node.js';
import { headersOnly, listen, pause, rawRequest, spoolEntries, type Listening } from './raw-http.js';

/**
 * Tenant limits and quotas as a client and monitoring see them (createApp on
 * a temp data dir, an injected disk reading): 429 before the body, the
 * tenant's share of the headroom, /usage per tenant, the alert sentence and
 * the counters without a tenant label. The concurrency of real processes is
 * test/system/tenant-limits.test.ts.
 */
const KiB = 1024;
const MiB = 1024 * KiB;
const CLASSES = {
  tickets: { match: ['*/*/tickets/**'], evictable: false, maxBytesPerTenant: '1MiB' },
  default: { evictable: false, maxBytesPerTenant: null },
};

describe('tenant limits over HTTP', () => {
  let node: TestNode;
  let server: Listening;
  // 100 MiB free, 10 MiB reserve: 90 MiB of room, a tenant may hold half of it.
  const disk = fakeDisk(200 * MiB, 100 * MiB);

  beforeAll(async () => {
    node = await testNode({
      config: {
        disk: { minFreeBytes: 10 * MiB, minFreePercent: 0, highWatermarkPercent: 100, lowWatermarkPercent: 100 },
        classes: CLASSES,
        limits: { tenant: { uploadsPerMinute: 5, bytesPerMinute: null, inflightUploads: 4, inflightBytes: '50%' } },
      },
      readDisk: disk,
    });
    server = await listen(node.app);
  });
  afterAll(async () => {
    await server.close();
    await node.close();
  });
  afterEach(async () => {
    expect(await spoolEntries(node)).toBe(0);
  });

  it('answers 429 rate_limited JSON with Retry-After before reading the body (Expect: 100-continue never sends it)', async () => {
    for (let i = 0; i < 5; i++) await request(node.app).put(`/upload/pub/rush/f${i}.bin`).send('x').expect(201);
    const res = await headersOnly(server.port, { method: 'PUT', path: '/upload/pub/rush/f5.bin', headers: { 'content-length': 1000, expect: '100-continue' } });
    expect(res.status).toBe(429);
    expect(res.json).toMatchObject({ error: 'rate_limited', tenant: 'rush', limit: 'uploadsPerMinute', value: '5 uploads per minute', retryAfterSeconds: 12 });
    expect(res.headers['retry-after']).toBe('12');
    expect(res.headers.connection).toBe('close');
    // Other tenants are not affected.
    await request(node.app).put('/upload/pub/calm/a.bin').send('x').expect(201);
  });

  it('one tenant may hold half the room above the reserve; the disk answers 507 first when it cannot take the upload at all', async () => {
    const tooMuch = await rawRequest(server.port, { method: 'PUT', path: '/upload/pub/hog/big.bin', headers: { 'content-length': 50 * MiB }, body: Buffer.alloc(0) });
    expect(tooMuch.status).toBe(429);
    expect(tooMuch.json).toMatchObject({ error: 'rate_limited', tenant: 'hog', limit: 'inflightBytes' });
    // Half of 90 MiB, less the few bytes written by the tests before (not in a disk reading yet).
    expect(Math.abs(Number(tooMuch.json.limitBytes) - 45 * MiB)).toBeLessThan(KiB);
    const noRoom = await rawRequest(server.port, { method: 'PUT', path: '/upload/pub/hog/bigger.bin', headers: { 'content-length': 95 * MiB }, body: Buffer.alloc(0) });
    expect(noRoom.status).toBe(507);
    expect(noRoom.json.error).toBe('insufficient_storage');
  });

  it('/usage shows per tenant and class the bytes in flight next to stored and quota bytes, and counts refusals', async () => {
    await request(node.app).put('/upload/pub/acme/tickets/a.pdf').send(randomBytes(600 * KiB)).expect(201);
    // An upload in flight: declared 300 KiB, 1 KiB sent so far.
    let more: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => { more = resolve; });
    let sent = 0;
    const slow = rawRequest(server.port, {
      method: 'PUT', path: '/upload/pub/acme/tickets/b.pdf', headers: { 'content-length': 300 * KiB },
      body: [randomBytes(KiB), randomBytes(299 * KiB)], between: async () => { if (sent++ === 1) await gate; },
    });
    let row: { classes: { class: string; bytes: number; inflightBytes: number; quotaBytes: number | null }[]; inflight: { uploads: number } } | undefined;
    for (let i = 0; i < 100 && !row?.inflight.uploads; i++) {
      await pause(10);
      row = (await request(node.app).get('/usage').expect(200)).body.tenants.find((t: { tenant: string }) => t.tenant === 'acme');
    }
    expect(row?.classes.find((c) => c.class === 'tickets')).toEqual({ class: 'tickets', files: 1, bytes: 600 * KiB, inflightBytes: 300 * KiB, quotaBytes: MiB });
    // Stored + in flight leave 124 KiB of the quota.
    const refused = await request(node.app).put('/upload/pub/acme/tickets/c.pdf').send(randomBytes(200 * KiB)).expect(507);
    expect(refused.body).toMatchObject({ error: 'quota_exceeded', usedBytes: 900 * KiB, inflightBytes: 300 * KiB, quotaBytes: MiB });
    more();
    expect((await slow).status).toBe(201);

    const usage = (await request(node.app).get('/usage').expect(200)).body as { tenants: { tenant: string; throttled: unknown; quotaRefused: unknown; lastLimit: string | null }[]; alerts: string[] };
    expect(usage.tenants.find((t) => t.tenant === 'acme')).toMatchObject({ quotaRefused: { last15m: 1, last24h: 1 }, throttled: { last15m: 0, last24h: 0 } });
    // A throttled tenant is listed even though it stores little.
    expect(usage.tenants.find((t) => t.tenant === 'hog')).toMatchObject({ bytes: 0, throttled: { last15m: 1, last24h: 1 }, lastLimit: expect.stringMatching(/^limits\.tenant\.inflightBytes: /) });
    expect(usage.alerts).toEqual(expect.arrayContaining([
      'tenant rush was throttled 1 time in the last 15 min (limit limits.tenant.uploadsPerMinute: 5 uploads per minute)',
      expect.stringMatching(/^tenant hog was throttled 1 time in the last 15 min \(limit limits\.tenant\.inflightBytes: 50 % of the room above the reserve/),
    ]));
  });

  it('counts throttling by limit and quota refusals by class in /metrics, with no tenant label', async () => {
    const text = (await request(node.app).get('/metrics').expect(200)).text;
    expect(text).toMatch(/^nanocdn_tenant_throttled_total\{limit="uploadsPerMinute"\} 1$/m);
    expect(text).toMatch(/^nanocdn_tenant_throttled_total\{limit="inflightBytes"\} 1$/m);
    expect(text).toMatch(/^nanocdn_tenant_throttled_total\{limit="bytesPerMinute"\} 0$/m);
    expect(text).toMatch(/^nanocdn_quota_refusals_total\{class="tickets"\} 1$/m);
    expect(text).toMatch(/^nanocdn_writes_refused_total\{reason="rate_limited"\} 2$/m);
    for (const line of text.split('\n').filter((l) => /^nanocdn_(tenant_throttled|quota_refusals)_total/.test(l))) expect(line).not.toMatch(/tenant=/);
  });
});

/** Sends `head` and `body` on a raw socket, then stays silent; resolves with everything read once the server closes. */
function stallingClient(port: number, head: string, body: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    socket.on('data', (d: Buffer) => { text += d.toString('latin1'); });
    socket.on('error', () => undefined);
    socket.once('close', () => resolve(text));
    socket.once('connect', () => { socket.write(head); socket.write(body); });
  });
}

describe('idle uploads end (upload.idleTimeout) with 408, their holds freed', () => {
  let node: TestNode;
  let server: Listening;
  beforeAll(async () => {
    node = await testNode({ config: { upload: { maxBytes: '10MiB', idleTimeout: '300ms' } } });
    server = await listen(node.app);
  });
  afterAll(async () => {
    await server.close();
    await node.close();
  });

  const bodyJson = (text: string) => JSON.parse(text.slice(text.indexOf('{'), text.lastIndexOf('}') + 1)) as Record<string, unknown>;

  it('a PUT that stops sending mid-body', async () => {
    const text = await stallingClient(server.port, 'PUT /upload/pub/slow/a.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 102400\r\n\r\n', randomBytes(KiB));
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
    expect(text).toMatch(/connection: close/i);
    expect(bodyJson(text)).toMatchObject({ error: 'request_timeout', idleTimeoutSeconds: 0.3, receivedBytes: KiB });
    expect(node.ctx.ledger.inflightOf('slow')).toEqual({ uploads: 0, bytes: 0, byClass: {} });
    expect(node.ctx.guard.snapshot()).toMatchObject({ reservedBytes: 0, uploads: 0 });
    expect(await spoolEntries(node)).toBe(0);
  });

  it('a multipart POST that stalls before its file part', async () => {
    const head = 'POST /upload/pub/slow/b.bin HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: 102400\r\n\r\n';
    const text = await stallingClient(server.port, head, Buffer.from('--XyZ\r\nContent-Disposition: form-da'));
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
    expect(bodyJson(text)).toMatchObject({ error: 'request_timeout' });
    expect(node.ctx.ledger.inflightOf('slow')).toEqual({ uploads: 0, bytes: 0, byClass: {} });
    expect(node.ctx.guard.snapshot()).toMatchObject({ reservedBytes: 0, uploads: 0 });
    expect(await spoolEntries(node)).toBe(0);
  });

  it('a multipart POST that stalls inside its file part', async () => {
    const head = 'POST /upload/pub/slow/c.bin HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: 102400\r\n\r\n';
    const part = Buffer.concat([Buffer.from('--XyZ\r\nContent-Disposition: form-data; name="file"; filename="c.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'), randomBytes(2 * KiB)]);
    const text = await stallingClient(server.port, head, part);
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
    expect(node.ctx.ledger.inflightOf('slow')).toEqual({ uploads: 0, bytes: 0, byClass: {} });
    expect(await spoolEntries(node)).toBe(0);
  });
});
