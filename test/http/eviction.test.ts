import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { holdLockInChild } from '../helpers/lock-holder.js';
import { testNode, type TestNode } from '../helpers/test-node.js';
import { isStored } from './raw-http.js';

const MiB = 1024 * 1024;
const HOUR = 3_600_000;
const body = (n: number, fill: number) => Buffer.alloc(n, fill);

/** Classes of these tests: a cache with a 5 MiB tenant quota, a scratch area idle after 1 h, an archive refused over 2 MiB. */
const classes = {
  cache: { match: ['*/*/cachedtickets/**'], evictable: true, maxAge: null, maxIdle: null, maxBytesPerTenant: '5MiB' },
  scratch: { match: ['*/*/scratch/**'], evictable: true, maxAge: null, maxIdle: '1h', maxBytesPerTenant: null },
  archive: { match: ['*/*/archive/**'], evictable: false, maxBytesPerTenant: '2MiB' },
  default: { evictable: false, maxBytesPerTenant: null },
};

describe('eviction over HTTP', () => {
  let node: TestNode;
  let clock: number;
  const tick = () => { clock += 1000; return clock; };

  beforeEach(async () => {
    clock = Date.UTC(2026, 10, 27, 3);
    node = await testNode({ config: { classes }, now: () => clock });
  });
  afterEach(async () => { await node.close(); });

  async function put(name: string, bytes: Buffer, headers: Record<string, string> = {}) {
    tick();
    return request(node.app).put(`/upload/${name}`).set(headers).send(bytes);
  }
  const status = async (name: string) => (await request(node.app).head(`/${name}`)).status;
  /** Whether the file is on disk and indexed, without reading it (a HEAD counts as a read). */
  const stored = async (name: string) => (await isStored(node, name)) && (await node.ctx.index.files.get(name)) !== undefined;

  it('makes room for a tenant at its cache quota from its least recently used unread file, touching nobody else', async () => {
    const acme = (i: number) => `pub/acme/cachedtickets/t-${i}.pdf`;
    for (let i = 1; i <= 5; i++) expect((await put(acme(i), body(MiB, i))).status).toBe(201);
    expect((await put('pub/globex/cachedtickets/g-1.pdf', body(MiB, 9))).status).toBe(201);
    expect((await put('pub/acme/invoices/inv-1.pdf', body(MiB, 8))).status).toBe(201);
    tick();
    // Read the oldest file: it becomes the most recently used (not flushed to the index yet).
    expect((await request(node.app).get(`/${acme(1)}`)).status).toBe(200);
    expect(node.ctx.access.get(acme(1))).toBe(clock);

    expect((await put(acme(6), body(MiB - 1000, 6))).status).toBe(201);

    expect(await status(acme(2))).toBe(404);
    for (const name of [acme(1), acme(3), acme(4), acme(5), acme(6), 'pub/globex/cachedtickets/g-1.pdf', 'pub/acme/invoices/inv-1.pdf']) {
      expect(await status(name), name).toBe(200);
    }
    expect(await node.ctx.index.files.get(acme(2))).toBeUndefined();
    expect((await node.ctx.index.totals.tenantClass('acme', 'cache')).bytes).toBe(5 * MiB - 1000);
    expect(await node.ctx.evictor.lastRun()).toMatchObject({ reason: 'admission', files: 1, bytes: MiB, error: null });
  });

  it('refuses an upload larger than the whole tenant quota without evicting anything', async () => {
    expect((await put('pub/acme/cachedtickets/a.pdf', body(MiB, 1))).status).toBe(201);
    const res = await put('pub/acme/cachedtickets/huge.pdf', body(5 * MiB + 1, 2));
    expect(res.status).toBe(507);
    expect(res.body).toMatchObject({ error: 'quota_exceeded', tenant: 'acme', class: 'cache', usedBytes: MiB, quotaBytes: 5 * MiB });
    expect(await status('pub/acme/cachedtickets/a.pdf')).toBe(200);
  });

  it('answers 507 quota_exceeded for a non-evictable class over its tenant quota, and deletes nothing', async () => {
    expect((await put('pub/acme/archive/a.pdf', body(MiB, 1))).status).toBe(201);
    expect((await put('pub/acme/archive/b.pdf', body(MiB, 2))).status).toBe(201);
    const res = await put('pub/acme/archive/c.pdf', body(10, 3));
    expect(res.status).toBe(507);
    expect(res.body).toMatchObject({ error: 'quota_exceeded', tenant: 'acme', class: 'archive', usedBytes: 2 * MiB, quotaBytes: 2 * MiB });
    expect(typeof res.body.message).toBe('string');
    expect(await status('pub/acme/archive/a.pdf')).toBe(200);
    expect(await status('pub/acme/archive/c.pdf')).toBe(404);
    // Another tenant has its own quota.
    expect((await put('pub/globex/archive/c.pdf', body(10, 3))).status).toBe(201);
  });

  it('POST /admin/evict?dryRun=1 lists what a run would remove and removes nothing; the real run removes exactly that', async () => {
    expect((await put('pub/acme/scratch/old.bin', body(1000, 1))).status).toBe(201);
    expect((await put('pub/acme/scratch/read.bin', body(1000, 2))).status).toBe(201);
    expect((await put('pub/acme/keep.bin', body(1000, 3), { 'X-Expire-After': '60' })).status).toBe(201);
    expect((await put('pub/acme/kept.bin', body(1000, 4))).status).toBe(201);
    clock += 2 * HOUR;
    expect((await request(node.app).get('/pub/acme/scratch/read.bin')).status).toBe(200);

    const dry = await request(node.app).post('/admin/evict?dryRun=1');
    expect(dry.status).toBe(200);
    expect(dry.body).toMatchObject({ dryRun: true, reason: 'admin', files: 2, bytes: 2000 });
    const planned = dry.body.victims.map((v: { name: string; reason: string }) => `${v.name}:${v.reason}`).sort();
    expect(planned).toEqual(['pub/acme/keep.bin:expired', 'pub/acme/scratch/old.bin:max-idle']);
    expect(await stored('pub/acme/scratch/old.bin')).toBe(true);
    expect(await stored('pub/acme/keep.bin')).toBe(true);
    expect(await node.ctx.evictor.lastRun()).toBeNull();

    const real = await request(node.app).post('/admin/evict');
    expect(real.status).toBe(200);
    expect(real.body.victims.map((v: { name: string; reason: string }) => `${v.name}:${v.reason}`).sort()).toEqual(planned);
    expect(real.body.groups).toEqual([{ tenant: 'acme', class: expect.any(String), files: 1, bytes: 1000, reasons: expect.any(Object) },
      { tenant: 'acme', class: expect.any(String), files: 1, bytes: 1000, reasons: expect.any(Object) }]);
    expect(await stored('pub/acme/scratch/old.bin')).toBe(false);
    expect(await stored('pub/acme/keep.bin')).toBe(false);
    expect(await stored('pub/acme/scratch/read.bin')).toBe(true);
    expect(await stored('pub/acme/kept.bin')).toBe(true);
    expect(await node.ctx.evictor.lastRun()).toMatchObject({ reason: 'admin', files: 2, bytes: 2000, error: null });
  });

  it('POST /admin/evict answers 409 eviction_running while another process holds the lock; /usage names the holder', async () => {
    const holder = await holdLockInChild(node.dataDir);
    try {
      const res = await request(node.app).post('/admin/evict');
      expect(res.status).toBe(409);
      expect(res.body).toMatchObject({ error: 'eviction_running', holderPid: holder.pid });
      const usage = await request(node.app).get('/usage');
      expect(usage.body.eviction).toMatchObject({ lockHolderPid: holder.pid, lockSinceSeconds: expect.any(Number) });
    } finally {
      await holder.kill9();
    }
    expect((await request(node.app).get('/usage')).body.eviction).toMatchObject({ lockHolderPid: null, lockSinceSeconds: null });
    expect((await request(node.app).post('/admin/evict')).status).toBe(200);
  });
});

describe('POST /admin/evict auth', () => {
  it('needs a token when the source address is not trusted', async () => {
    const token = 'admin-token-0123456789';
    const node = await testNode({ config: { auth: { tokens: [token], trustedNetworks: [], signingSecret: null } } });
    try {
      expect((await request(node.app).post('/admin/evict?dryRun=1')).status).toBe(401);
      const ok = await request(node.app).post('/admin/evict?dryRun=1').set('Authorization', `Bearer ${token}`);
      expect(ok.status).toBe(200);
      expect(ok.body).toMatchObject({ dryRun: true, files: 0 });
    } finally {
      await node.close();
    }
  });
});
