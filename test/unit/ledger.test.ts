import { describe, expect, it } from 'vitest';
import { DiskGuard } from '../../src/disk/disk-guard.js';
import { silentLogger } from '../../src/logger.js';
import { LocalLedger } from '../../src/accounting/local-ledger.js';
import type { TenantLimits } from '../../src/accounting/tenant-rates.js';
import type { StorageClass } from '../../src/classes.js';
import type { Hold } from '../../src/accounting/ledger.js';
import { fakeDisk } from '../helpers/test-node.js';
import { refusal } from '../helpers/refusal.js';

const KiB = 1024;
const MiB = 1024 * KiB;

const NO_LIMITS: TenantLimits = { uploadsPerMinute: null, bytesPerMinute: null, inflightUploads: null, inflightBytes: null };

function cls(name: string, quota: number | null, evictable = false): StorageClass {
  return { name, match: [], evictable, maxAge: null, maxIdle: null, maxBytes: null, maxBytesPerTenant: quota };
}

/**
 * A ledger on a fake disk (1 GiB free, 10 MiB reserve) and a fake index:
 * `stored` is what the index says a (tenant, class) holds; `readDelay` makes
 * each reading take that many event-loop turns, so admissions interleave.
 */
function ledgerOn(options: { limits?: Partial<TenantLimits>; free?: number } = {}) {
  let nowMs = 1_000_000;
  const stored = new Map<string, number>();
  const evictions: { tenant: string; bytes: number }[] = [];
  let readDelay = 0;
  const guard = new DiskGuard({
    readDisk: fakeDisk(2048 * MiB, options.free ?? 1024 * MiB), now: () => nowMs, logger: silentLogger(),
    minFreeBytes: 10 * MiB, minFreePercent: 0, highWatermarkPercent: 100, lowWatermarkPercent: 100,
  });
  const throttled: string[] = [];
  const refused: string[] = [];
  const ledger = new LocalLedger({
    guard, now: () => nowMs, limits: () => ({ ...NO_LIMITS, ...options.limits }),
    storedBytes: async (tenant, c) => {
      const value = stored.get(`${tenant}/${c}`) ?? 0;
      for (let i = 0; i < readDelay; i++) await new Promise((r) => setImmediate(r));
      return value;
    },
    makeRoom: async (tenant, c, bytes) => {
      evictions.push({ tenant, bytes });
      // Evicts everything the tenant has in the class.
      stored.set(`${tenant}/${c.name}`, 0);
    },
    observer: { throttled: (tenant, limit) => throttled.push(`${tenant}:${limit}`), quotaRefused: (tenant, c) => refused.push(`${tenant}:${c}`) },
  });
  /** Stores a hold's bytes the way the uploader does: index row first, then commit. */
  const store = (tenant: string, c: string, hold: Hold) => {
    stored.set(`${tenant}/${c}`, (stored.get(`${tenant}/${c}`) ?? 0) + hold.written);
    hold.commit();
  };
  return {
    guard, ledger, stored, evictions, throttled, refused, store,
    setReadDelay: (turns: number) => { readDelay = turns; },
    advance: (ms: number) => { nowMs += ms; },
  };
}

describe('LocalLedger: exact quotas with bytes in flight', () => {
  const tickets = cls('tickets', MiB);

  it('admits exactly one of 10 concurrent 800 KB uploads into a 1 MiB quota; the rest 507 quota_exceeded', async () => {
    const { ledger, setReadDelay, refused } = ledgerOn();
    setReadDelay(3);
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => ledger.admit({ tenant: 'acme', cls: tickets, declaredBytes: 800_000 })));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results.filter((x): x is PromiseRejectedResult => x.status === 'rejected')) {
      expect(r.reason).toMatchObject({ code: 'quota_exceeded', details: { tenant: 'acme', class: 'tickets', quotaBytes: MiB, inflightBytes: 800_000 } });
    }
    expect(refused).toHaveLength(9);
    expect(ledger.inflightOf('acme')).toMatchObject({ uploads: 1, byClass: { tickets: 800_000 } });
  });

  it('counts an upload committed while a reading of the index was in flight (the reading may not contain it)', async () => {
    const { ledger, setReadDelay, store } = ledgerOn();
    const first = await ledger.admit({ tenant: 'acme', cls: tickets, declaredBytes: 800_000 });
    await first.wrote(800_000);
    setReadDelay(5);
    // The second admission reads "0 stored" (before the first commits) ...
    const second = ledger.admit({ tenant: 'acme', cls: tickets, declaredBytes: 800_000 });
    // ... and the first is stored and released meanwhile.
    store('acme', 'tickets', first);
    expect((await refusal(second)).code).toBe('quota_exceeded');
    // Afterwards a fresh reading sees the stored bytes.
    setReadDelay(0);
    expect((await refusal(ledger.admit({ tenant: 'acme', cls: tickets, declaredBytes: 300_000 }))).details).toMatchObject({ usedBytes: 800_000 });
    const fits = await ledger.admit({ tenant: 'acme', cls: tickets, declaredBytes: MiB - 800_000 });
    fits.release();
  });

  it('holds a chunked body up to one step of the room, grows it as bytes arrive, and cuts it at the quota', async () => {
    const { ledger } = ledgerOn();
    const hold = await ledger.admit({ tenant: 'acme', cls: cls('small', 3 * MiB / 2), declaredBytes: null });
    expect(ledger.inflightOf('acme').byClass.small).toBe(MiB);
    await hold.wrote(MiB);
    await hold.wrote(MiB / 2); // grows by what is left: 0.5 MiB
    expect(ledger.inflightOf('acme').byClass.small).toBe(3 * MiB / 2);
    const err = await refusal(() => hold.wrote(1));
    expect(err.code).toBe('quota_exceeded');
    expect(err.message).toMatch(/grew past the quota/);
    hold.release();
    expect(ledger.inflightOf('acme')).toEqual({ uploads: 0, bytes: 0, byClass: {} });
  });

  it('refuses a chunked body only when no room is left; other tenants keep their own quota', async () => {
    const { ledger } = ledgerOn();
    const a = await ledger.admit({ tenant: 'acme', cls: tickets, declaredBytes: null });
    expect((await refusal(ledger.admit({ tenant: 'acme', cls: tickets, declaredBytes: null }))).code).toBe('quota_exceeded');
    const b = await ledger.admit({ tenant: 'globex', cls: tickets, declaredBytes: null });
    a.release();
    b.release();
  });

  it('an evictable class makes room from that tenant\'s own files, at admission and while a chunked body grows', async () => {
    const { ledger, stored, evictions, store } = ledgerOn();
    const cache = cls('cache', MiB, true);
    stored.set('acme/cache', 900 * KiB);
    const hold = await ledger.admit({ tenant: 'acme', cls: cache, declaredBytes: 500 * KiB });
    expect(evictions).toEqual([{ tenant: 'acme', bytes: 900 * KiB + 500 * KiB - MiB }]);
    await hold.wrote(500 * KiB);
    store('acme', 'cache', hold);
    const chunked = await ledger.admit({ tenant: 'acme', cls: cache, declaredBytes: null });
    await chunked.wrote(MiB / 2);
    // Past the room left: the grow waits for eviction of the tenant's own files, then goes on.
    await chunked.wrote(MiB / 2);
    expect(evictions.length).toBeGreaterThanOrEqual(2);
    expect(evictions.every((e) => e.tenant === 'acme')).toBe(true);
    chunked.release();
    // Even an empty quota cannot hold more than the quota: nothing is evicted for it.
    const before = evictions.length;
    expect((await refusal(ledger.admit({ tenant: 'acme', cls: cache, declaredBytes: MiB + 1 }))).code).toBe('quota_exceeded');
    expect(evictions).toHaveLength(before);
  });

  it('releases the quota hold when the disk reserve refuses', async () => {
    const { ledger } = ledgerOn({ free: 12 * MiB });
    expect((await refusal(ledger.admit({ tenant: 'acme', cls: cls('big', 100 * MiB), declaredBytes: 5 * MiB }))).code).toBe('insufficient_storage');
    expect(ledger.inflightOf('acme')).toEqual({ uploads: 0, bytes: 0, byClass: {} });
    const ok = await ledger.admit({ tenant: 'acme', cls: cls('big', 100 * MiB), declaredBytes: 2 * MiB });
    ok.release();
  });
});

describe('LocalLedger: limits.tenant (429 rate_limited with Retry-After)', () => {
  const plain = cls('default', null);

  it('uploadsPerMinute: a token bucket with a minute as burst; Retry-After is when the next one fits', async () => {
    const { ledger, advance, throttled } = ledgerOn({ limits: { uploadsPerMinute: 6 } });
    for (let i = 0; i < 6; i++) (await ledger.admit({ tenant: 'acme', cls: plain, declaredBytes: 1 })).release();
    const err = await refusal(ledger.admit({ tenant: 'acme', cls: plain, declaredBytes: 1 }));
    expect(err.status).toBe(429);
    expect(err.details).toMatchObject({ tenant: 'acme', limit: 'uploadsPerMinute', value: '6 uploads per minute', retryAfterSeconds: 10 });
    expect(err.headers['Retry-After']).toBe('10');
    expect(throttled).toEqual(['acme:uploadsPerMinute']);
    // Another tenant has its own bucket.
    (await ledger.admit({ tenant: 'globex', cls: plain, declaredBytes: 1 })).release();
    advance(10_000);
    (await ledger.admit({ tenant: 'acme', cls: plain, declaredBytes: 1 })).release();
  });

  it('bytesPerMinute: declared bytes at admission, a chunked body\'s bytes as they arrive', async () => {
    const { ledger, advance } = ledgerOn({ limits: { bytesPerMinute: 10 * MiB } });
    const a = await ledger.admit({ tenant: 'acme', cls: plain, declaredBytes: 8 * MiB });
    a.release();
    const err = await refusal(ledger.admit({ tenant: 'acme', cls: plain, declaredBytes: 4 * MiB }));
    expect(err.details).toMatchObject({ limit: 'bytesPerMinute', retryAfterSeconds: 12 });
    advance(12_000);
    const chunked = await ledger.admit({ tenant: 'acme', cls: plain, declaredBytes: null });
    await chunked.wrote(4 * MiB);
    chunked.release();
    expect((await refusal(ledger.admit({ tenant: 'acme', cls: plain, declaredBytes: 1 }))).details).toMatchObject({ limit: 'bytesPerMinute' });
  });

  it('inflightUploads and inflightBytes (a size, or a share of the room above the reserve) count live holds only', async () => {
    const { ledger } = ledgerOn({ limits: { inflightUploads: 2 } });
    const holds = [await ledger.admit({ tenant: 'acme', cls: plain, declaredBytes: 1 }), await ledger.admit({ tenant: 'acme', cls: plain, declaredBytes: 1 })];
    expect((await refusal(ledger.admit({ tenant: 'acme', cls: plain, declaredBytes: 1 }))).details).toMatchObject({ limit: 'inflightUploads' });
    holds[0].release();
    (await ledger.admit({ tenant: 'acme', cls: plain, declaredBytes: 1 })).release();
    holds[1].release();

    // 1 GiB free − 10 MiB reserve: half of it is 507 MiB.
    const share = ledgerOn({ limits: { inflightBytes: { percent: 50 } } });
    const big = await share.ledger.admit({ tenant: 'acme', cls: plain, declaredBytes: 500 * MiB });
    const err = await refusal(share.ledger.admit({ tenant: 'acme', cls: plain, declaredBytes: 8 * MiB }));
    expect(err.details).toMatchObject({ limit: 'inflightBytes', inflightBytes: 500 * MiB, limitBytes: 507 * MiB });
    // Another tenant still gets its share of what is left.
    (await share.ledger.admit({ tenant: 'globex', cls: plain, declaredBytes: 200 * MiB })).release();
    // A chunked body that grows past the share is cut with 429.
    big.release();
    const chunked = await share.ledger.admit({ tenant: 'acme', cls: plain, declaredBytes: null });
    expect(() => chunked.wrote(600 * MiB)).toThrow(/inflightBytes/);
    chunked.release();

    const fixed = ledgerOn({ limits: { inflightBytes: { bytes: 4 * MiB } } });
    expect((await refusal(fixed.ledger.admit({ tenant: 'acme', cls: plain, declaredBytes: 5 * MiB }))).details).toMatchObject({ limitBytes: 4 * MiB });
  });
});
