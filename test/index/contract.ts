import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CandidateRow, FileRecord, MetadataIndex, RunRecord } from '../../src/index/index.js';

/** What an engine's test file gives the contract: a fresh, empty store per test. */
export interface IndexStore {
  /** The first handle on the store (opened on an empty store: `created` is true). */
  index: MetadataIndex;
  /** Another handle on the same store: another process or node, with its own connection(s). */
  open(): Promise<MetadataIndex>;
  cleanup(): Promise<void>;
}

const HOUR = 3_600_000;

export function file(name: string, over: Partial<FileRecord> = {}): FileRecord {
  const tenant = name.split('/')[1] ?? '-';
  return { name, tenant, class: 'default', size: 100, sha256: 'a'.repeat(64), createdMs: 1000, accessedMs: 1000, expiresMs: null, ...over };
}

async function collect(batches: AsyncGenerator<CandidateRow[]>): Promise<{ names: string[]; sizes: number[] }> {
  const names: string[] = [];
  const sizes: number[] = [];
  for await (const batch of batches) {
    sizes.push(batch.length);
    names.push(...batch.map((row) => row.name));
  }
  return { names, sizes };
}

async function all<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

/** Byte order (what both engines sort names by): for ASCII names, JavaScript's default string order. */
const byteOrder = (names: string[]) => [...names].sort();

const run = (atMs: number, files: number, error: string | null = null): RunRecord =>
  ({ atMs, reason: 'cli', files, bytes: files * 10, durationMs: 1.4, error, byReason: files ? { 'max-age': { files, bytes: files * 10 } } : {} });

/**
 * The behaviour every metadata index engine has (src/index/index.ts), run on
 * each engine by its own test file, so the node works the same on any of
 * them. Engine-agnostic: it only uses the MetadataIndex interface.
 */
export function indexContract(name: string, makeStore: () => Promise<IndexStore>): void {
  describe(`index contract: ${name}`, () => {
    let store: IndexStore;
    let index: MetadataIndex;
    const others: MetadataIndex[] = [];
    const open = async () => {
      const other = await store.open();
      others.push(other);
      return other;
    };

    beforeEach(async () => {
      store = await makeStore();
      index = store.index;
    });
    afterEach(async () => {
      for (const other of others.splice(0)) await other.close();
      await index.close();
      await store.cleanup();
    });

    it('opens: created on an empty store, not again; answers until closed', async () => {
      expect(index.created).toBe(true);
      expect(await index.isOpen()).toBe(true);
      const again = await open();
      expect(again.created).toBe(false);
      await again.close();
      expect(await again.isOpen()).toBe(false);
      expect(await index.isOpen()).toBe(true);
    });

    it('files: put, get, replace, remove; another handle sees the same rows', async () => {
      const record = file('pub/acme/a.txt', { size: 123, expiresMs: 9000, class: 'cache' });
      expect(await index.files.get(record.name)).toBeUndefined();
      await index.files.put(record);
      expect(await index.files.get(record.name)).toEqual(record);
      const other = await open();
      expect(await other.files.get(record.name)).toEqual(record);
      await other.files.put({ ...record, size: 7, expiresMs: null, sha256: 'b'.repeat(64) });
      expect(await index.files.get(record.name)).toEqual({ ...record, size: 7, expiresMs: null, sha256: 'b'.repeat(64) });
      expect(await index.files.remove(record.name)).toBe(true);
      expect(await index.files.remove(record.name)).toBe(false);
      expect(await other.files.get(record.name)).toBeUndefined();
    });

    it('files: sizes and times beyond 32 bits come back as the same numbers', async () => {
      const big = file('pub/acme/big.bin', { size: 5 * 1024 ** 4, createdMs: 1_795_000_000_123, accessedMs: 1_795_000_000_456, expiresMs: 4_102_444_800_000 });
      await index.files.put(big);
      expect(await index.files.get(big.name)).toEqual(big);
      expect(await index.totals.summary()).toEqual({ files: 1, bytes: 5 * 1024 ** 4 });
    });

    it('files: putMany and removeMany all at once, a name listed twice counted once', async () => {
      const records = ['pub/a/1', 'pub/a/2', 'pub/b/3', 'priv/a/4'].map((n) => file(n));
      await index.files.putMany([...records, { ...records[0], size: 999 }]);
      expect((await index.files.get('pub/a/1'))?.size).toBe(999);
      expect(await index.totals.summary()).toEqual({ files: 4, bytes: 999 + 300 });
      expect(await index.files.removeMany(['pub/a/1', 'pub/a/2', 'pub/a/1', 'pub/none'])).toBe(2);
      expect(await all(index.files.names())).toEqual(['priv/a/4', 'pub/b/3']);
      expect(await index.files.removeMany([])).toBe(0);
      await index.files.putMany([]);
    });

    it('files: names() in byte order, across pages, upper case before lower case', async () => {
      const names = Array.from({ length: 2300 }, (_, i) => `pub/t${i % 7}/${i % 3 === 0 ? 'B' : 'a'}-${String(i).padStart(5, '0')}.bin`);
      names.push('pub/-/Z', 'pub/-/_x', 'pub/-/.x', 'pub/-/0');
      await index.files.putMany(names.map((n) => file(n)));
      expect(await all(index.files.names())).toEqual(byteOrder(names));
    });

    it('files: touchMany moves access times forward only, the latest of a name wins', async () => {
      await index.files.putMany([file('pub/a/x', { accessedMs: 5000 }), file('pub/a/y', { accessedMs: 5000 })]);
      await index.files.touchMany([['pub/a/x', 7000], ['pub/a/x', 6000], ['pub/a/y', 4000], ['pub/a/gone', 9000]]);
      expect((await index.files.get('pub/a/x'))?.accessedMs).toBe(7000);
      expect((await index.files.get('pub/a/y'))?.accessedMs).toBe(5000);
      await index.files.touchMany(Array.from({ length: 2500 }, (_, i): [string, number] => ['pub/a/y', 10_000 + i]));
      expect((await index.files.get('pub/a/y'))?.accessedMs).toBe(12_499);
    });

    it('retired names: remove and removeMany retire with the row\'s checksum; drop and prune', async () => {
      await index.files.putMany([
        file('pub/a/1', { sha256: '1'.repeat(64) }), file('pub/a/2', { sha256: '2'.repeat(64) }), file('pub/a/3', { sha256: '3'.repeat(64) }),
      ]);
      expect(await index.files.remove('pub/a/1', 5000)).toBe(true);
      expect(await index.retired.get('pub/a/1')).toEqual({ name: 'pub/a/1', sha256: '1'.repeat(64), retiredMs: 5000 });
      expect(await index.files.remove('pub/a/none', 5000)).toBe(false);
      expect(await index.retired.get('pub/a/none')).toBeUndefined();
      expect(await index.files.removeMany(['pub/a/2', 'pub/a/3'], (n) => (n === 'pub/a/2' ? 6000 : null))).toBe(2);
      expect(await index.retired.get('pub/a/2')).toEqual({ name: 'pub/a/2', sha256: '2'.repeat(64), retiredMs: 6000 });
      expect(await index.retired.get('pub/a/3')).toBeUndefined();
      // Stored and removed again: the newer checksum and time.
      await index.files.put(file('pub/a/1', { sha256: '9'.repeat(64) }));
      await index.files.remove('pub/a/1', 8000);
      expect(await index.retired.get('pub/a/1')).toEqual({ name: 'pub/a/1', sha256: '9'.repeat(64), retiredMs: 8000 });
      expect(await index.retired.prune(6000)).toBe(1);
      expect(await index.retired.get('pub/a/2')).toBeUndefined();
      expect(await index.retired.drop('pub/a/1')).toBe(true);
      expect(await index.retired.drop('pub/a/1')).toBe(false);
    });

    it('totals: exact per tenant and class as rows come, change and go', async () => {
      await index.files.putMany([
        file('pub/acme/1', { size: 10 }), file('pub/acme/2', { size: 20, class: 'cache' }), file('pub/acme/3', { size: 30, class: 'cache' }),
        file('pub/beta/1', { size: 60 }), file('pub/zeta/1', { size: 60 }), file('pub/-/top', { tenant: '-', size: 1 }),
      ]);
      expect(await index.totals.tenantClass('acme', 'cache')).toEqual({ tenant: 'acme', class: 'cache', files: 2, bytes: 50 });
      expect(await index.totals.tenantClass('acme', 'none')).toEqual({ tenant: 'acme', class: 'none', files: 0, bytes: 0 });
      expect(await index.totals.summary()).toEqual({ files: 6, bytes: 181 });
      expect((await index.totals.byClass()).sort((a, b) => a.class.localeCompare(b.class)))
        .toEqual([{ class: 'cache', files: 2, bytes: 50 }, { class: 'default', files: 4, bytes: 131 }]);
      expect(await index.totals.topTenants(3)).toEqual([
        { tenant: 'acme', files: 3, bytes: 60 }, { tenant: 'beta', files: 1, bytes: 60 }, { tenant: 'zeta', files: 1, bytes: 60 },
      ]);
      expect(await index.totals.ofTenant('acme')).toEqual([{ class: 'cache', files: 2, bytes: 50 }, { class: 'default', files: 1, bytes: 10 }]);
      // A replaced row moves between tenants and classes; a removed one leaves no empty total behind.
      await index.files.put(file('pub/acme/2', { tenant: 'beta', class: 'default', size: 5 }));
      await index.files.put(file('pub/acme/3', { class: 'cache', size: 31 }));
      await index.files.remove('pub/zeta/1');
      const key = (t: { tenant: string; class: string }) => `${t.tenant}/${t.class}`;
      const totals = (await index.totals.all()).sort((a, b) => (key(a) < key(b) ? -1 : 1));
      expect(totals).toEqual([
        { tenant: '-', class: 'default', files: 1, bytes: 1 },
        { tenant: 'acme', class: 'cache', files: 1, bytes: 31 },
        { tenant: 'acme', class: 'default', files: 1, bytes: 10 },
        { tenant: 'beta', class: 'default', files: 2, bytes: 65 },
      ]);
      await index.files.removeMany(['pub/-/top', 'pub/acme/1', 'pub/acme/2', 'pub/acme/3', 'pub/beta/1']);
      expect(await index.totals.all()).toEqual([]);
      expect(await index.totals.summary()).toEqual({ files: 0, bytes: 0 });
    });

    it('totals stay exact when handles write the same tenant at once', async () => {
      const handles = [index, await open(), await open()];
      await Promise.all(handles.map((h, i) => (async () => {
        for (let j = 0; j < 20; j++) await h.files.put(file(`pub/acme/${i}-${j}`, { size: j + 1 }));
        await h.files.removeMany([`pub/acme/${i}-0`, `pub/acme/${i}-1`]);
      })()));
      expect(await index.totals.tenantClass('acme', 'default')).toEqual({ tenant: 'acme', class: 'default', files: 54, bytes: 3 * (210 - 3) });
    });

    it('candidates: expired by expiry time then name, in batches, scoped by tenant and class', async () => {
      await index.files.putMany([
        file('pub/a/e3', { expiresMs: 300 }), file('pub/a/e1', { expiresMs: 100 }), file('pub/b/e2', { expiresMs: 200, class: 'cache' }),
        file('pub/a/e2b', { expiresMs: 200 }), file('pub/a/later', { expiresMs: 10_000 }), file('pub/a/never'),
      ]);
      const expired = await collect(index.candidates.expired(300, {}, 2));
      expect(expired.names).toEqual(['pub/a/e1', 'pub/a/e2b', 'pub/b/e2', 'pub/a/e3']);
      expect(expired.sizes).toEqual([2, 2]);
      expect((await collect(index.candidates.expired(300, { tenant: 'a' }, 10))).names).toEqual(['pub/a/e1', 'pub/a/e2b', 'pub/a/e3']);
      expect((await collect(index.candidates.expired(300, { class: 'cache' }, 10))).names).toEqual(['pub/b/e2']);
      const [row] = (await index.candidates.expired(100, {}, 1).next()).value as CandidateRow[];
      expect(row).toEqual({ name: 'pub/a/e1', tenant: 'a', class: 'default', size: 100, createdMs: 1000, accessedMs: 1000, expiresMs: 100 });
    });

    it('candidates: aged files of a class by name, created or last read before the limits', async () => {
      await index.files.putMany([
        file('pub/a/old', { class: 'cache', createdMs: 100, accessedMs: 5000 }),
        file('pub/a/idle', { class: 'cache', createdMs: 5000, accessedMs: 100 }),
        file('pub/b/old', { class: 'cache', createdMs: 100, accessedMs: 100 }),
        file('pub/a/fresh', { class: 'cache', createdMs: 5000, accessedMs: 5000 }),
        file('pub/a/other', { class: 'default', createdMs: 100, accessedMs: 100 }),
      ]);
      const aged = await collect(index.candidates.aged('cache', 1000, 1000, {}, 2));
      expect(aged.names).toEqual(['pub/a/idle', 'pub/a/old', 'pub/b/old']);
      expect(aged.sizes).toEqual([2, 1]);
      expect((await collect(index.candidates.aged('cache', 1000, 0, { tenant: 'a' }, 5))).names).toEqual(['pub/a/old']);
    });

    it('candidates: least recently used first, per tenant and across tenants, ties by creation then name', async () => {
      await index.files.putMany([
        file('pub/a/3', { class: 'cache', accessedMs: 300 }),
        file('pub/a/1', { class: 'cache', accessedMs: 100, createdMs: 50 }),
        file('pub/a/0', { class: 'cache', accessedMs: 100, createdMs: 60 }),
        file('pub/a/2', { class: 'cache', accessedMs: 100, createdMs: 60 }),
        file('pub/b/1', { class: 'cache', accessedMs: 200 }),
        file('pub/b/k', { class: 'keep', accessedMs: 1 }),
        file('pub/a/d', { class: 'default', accessedMs: 1 }),
      ]);
      const tenant = await collect(index.candidates.tenantLru('a', 'cache', 2));
      expect(tenant.names).toEqual(['pub/a/1', 'pub/a/0', 'pub/a/2', 'pub/a/3']);
      expect(tenant.sizes).toEqual([2, 2]);
      expect((await collect(index.candidates.globalLru(['cache', 'keep'], {}, 3))).names)
        .toEqual(['pub/b/k', 'pub/a/1', 'pub/a/0', 'pub/a/2', 'pub/b/1', 'pub/a/3']);
      expect((await collect(index.candidates.globalLru(['cache', 'keep'], { tenant: 'b' }, 3))).names).toEqual(['pub/b/k', 'pub/b/1']);
      expect((await collect(index.candidates.globalLru(['cache', 'keep'], { class: 'cache', tenant: 'b' }, 3))).names).toEqual(['pub/b/1']);
      expect((await collect(index.candidates.globalLru([], {}, 3))).names).toEqual([]);
    });

    it('history: samples, the hourly rollup from the totals (the first reading of an hour wins), pruning, baselines', async () => {
      const h0 = 100 * HOUR;
      await index.files.putMany([file('pub/a/1', { size: 10 }), file('pub/b/1', { size: 20 }), file('priv/a/2', { size: 5, class: 'cache' })]);
      await index.history.record({ atMs: h0 + 10, usedBytes: 1000 }, { hourMs: h0, samplesFromMs: 0, hourlyFromMs: 0 });
      await index.files.put(file('pub/a/3', { size: 1000 }));
      await index.history.record({ atMs: h0 + 20, usedBytes: 2000 }, { hourMs: h0, samplesFromMs: 0, hourlyFromMs: 0 });
      await index.history.record({ atMs: h0 + 20, usedBytes: 2500 });
      expect(await index.history.samplesSince(h0 + 15)).toEqual([{ atMs: h0 + 20, usedBytes: 2500 }]);
      expect(await index.history.samplesSince(0)).toEqual([{ atMs: h0 + 10, usedBytes: 1000 }, { atMs: h0 + 20, usedBytes: 2500 }]);
      const base = await index.history.baselineAt(h0 + HOUR - 1);
      expect(base).toEqual({ hourMs: h0, totalBytes: 35, bytes: new Map([['a', 15], ['b', 20]]) });
      // The hour that began within the hour before, else the earliest after; none without history.
      expect((await index.history.baselineAt(h0 - 5 * HOUR))?.hourMs).toBe(h0);
      await index.history.recordTenant(h0 + HOUR, 'a', 77);
      await index.history.recordTenant(h0 + HOUR, 'a', 88);
      expect(await index.history.baselineAt(h0 + HOUR + 5)).toEqual({ hourMs: h0 + HOUR, totalBytes: 77, bytes: new Map([['a', 77]]) });
      await index.history.record({ atMs: h0 + 2 * HOUR, usedBytes: 3000 }, { hourMs: h0 + 2 * HOUR, samplesFromMs: h0 + 15, hourlyFromMs: h0 + HOUR });
      expect((await index.history.samplesSince(0)).map((s) => s.atMs)).toEqual([h0 + 20, h0 + 2 * HOUR]);
      expect((await index.history.baselineAt(h0 + 10))?.hourMs).toBe(h0 + HOUR);
      const empty = await open();
      await index.history.record({ atMs: 1, usedBytes: 1 }, { hourMs: 0, samplesFromMs: 0, hourlyFromMs: Number.MAX_SAFE_INTEGER });
      expect(await empty.history.baselineAt(h0)).toBeNull();
    });

    it('runs: ids that grow, last by filter, recent, cursor and since, per-reason figures kept', async () => {
      expect(await index.runs.last()).toBeNull();
      expect(await index.runs.cursor()).toBe(0);
      const other = await open();
      const a = await index.runs.record(run(1000, 3));
      const b = await other.runs.record(run(2000, 0));
      const c = await index.runs.record(run(3000, 0, 'EACCES'));
      expect(a).toBeGreaterThan(0);
      expect(b).toBeGreaterThan(a);
      expect(c).toBeGreaterThan(b);
      expect(await other.runs.cursor()).toBe(c);
      expect(await index.runs.last()).toEqual({ atMs: 3000, reason: 'cli', files: 0, bytes: 0, durationMs: 1, error: 'EACCES', byReason: {} });
      expect((await index.runs.last('removed'))?.byReason).toEqual({ 'max-age': { files: 3, bytes: 30 } });
      expect((await index.runs.last('succeeded'))?.atMs).toBe(2000);
      expect((await index.runs.recent(2)).map((r) => r.atMs)).toEqual([3000, 2000]);
      expect((await other.runs.since(a, 10)).map((r) => [r.id, r.atMs])).toEqual([[b, 2000], [c, 3000]]);
      expect((await other.runs.since(a, 1)).map((r) => r.id)).toEqual([b]);
      expect(await other.runs.since(c, 10)).toEqual([]);
      const { byReason: _none, ...withoutReasons } = run(4000, 1);
      await index.runs.record(withoutReasons);
      expect(await index.runs.last()).toEqual({ ...withoutReasons, durationMs: 1 });
    });

    it('runs: keeps the last 100, and every run of the last 10 minutes', async () => {
      // Each run 11 minutes after the one before: only the last 100 stay.
      for (let i = 0; i < 105; i++) await index.runs.record(run(i * 11 * 60_000, 1));
      expect((await index.runs.recent(1000)).length).toBe(100);
      const now = 200 * 11 * 60_000;
      for (let i = 0; i < 120; i++) await index.runs.record(run(now + i, 1));
      expect((await index.runs.recent(1000)).length).toBe(120);
    });

    it('scrubs: the last run; the last 100 kept', async () => {
      expect(await index.scrubs.last()).toBeNull();
      const scrub = { atMs: 5000, durationMs: 12.6, files: 3, bytes: 300, corrupt: 1, missing: 1, quarantined: 0 };
      await index.scrubs.record(scrub);
      expect(await index.scrubs.last()).toEqual({ ...scrub, durationMs: 13 });
      for (let i = 0; i < 101; i++) await index.scrubs.record({ ...scrub, atMs: 6000 + i });
      expect(await index.scrubs.last()).toEqual({ ...scrub, atMs: 6100, durationMs: 13 });
    });

    it('claims: one claim per name, none of an indexed name; upload id, release, all oldest first', async () => {
      expect(await index.claims.claim('pub/a/x', 2000)).toBe(true);
      expect(await index.claims.claim('pub/a/x', 2001)).toBe(false);
      expect(await index.claims.claim('pub/a/y', 1000)).toBe(true);
      await index.files.put(file('pub/a/stored'));
      expect(await index.claims.claim('pub/a/stored', 3000)).toBe(false);
      await index.claims.setUploadId('pub/a/x', 'upload-1');
      expect(await index.claims.get('pub/a/x')).toEqual({ name: 'pub/a/x', startedMs: 2000, uploadId: 'upload-1', nodeId: null, leaseUntilMs: null });
      expect(await index.claims.get('pub/a/none')).toBeUndefined();
      expect(await index.claims.all()).toEqual([
        { name: 'pub/a/y', startedMs: 1000, uploadId: null, nodeId: null, leaseUntilMs: null },
        { name: 'pub/a/x', startedMs: 2000, uploadId: 'upload-1', nodeId: null, leaseUntilMs: null },
      ]);
      await index.claims.release('pub/a/x');
      expect(await index.claims.get('pub/a/x')).toBeUndefined();
      expect(await index.claims.claim('pub/a/x', 4000)).toBe(true);
    });

    it('claims: of 24 concurrent claims of one name from 4 handles, exactly one wins (each of 5 names)', async () => {
      const handles = [index, await open(), await open(), await open()];
      for (let n = 0; n < 5; n++) {
        const name = `pub/race/${n}`;
        const results = await Promise.all(Array.from({ length: 24 }, (_, i) => handles[i % handles.length].claims.claim(name, 1000 + i)));
        expect(results.filter(Boolean).length, name).toBe(1);
        expect((await index.claims.all()).filter((c) => c.name === name).length).toBe(1);
      }
    });
  });
}
