import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HttpError } from '../../src/errors.js';
import { parseName } from '../../src/names.js';
import type { Storage } from '../../src/storage/storage.js';

/**
 * The contract every storage engine passes (docs/design.md §9), so a new engine needs no change elsewhere.
 * Engine-agnostic: it only uses the Storage interface, so "nothing left
 * behind" is checked through stat() and tmpStats(), never the engine's files.
 * Engine-specific checks (paths on disk, stale tmp files) live in the
 * engine's own test file.
 */
export function storageContract(
  name: string,
  makeStorage: () => Promise<{ storage: Storage; cleanup(): Promise<void> }>,
): void {
  describe(`storage contract: ${name}`, () => {
    let storage: Storage;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      ({ storage, cleanup } = await makeStorage());
    });
    afterEach(async () => {
      await storage.close();
      await cleanup();
    });

    const signal = () => new AbortController().signal;

    it('writes, stats, opens, lists and removes an object', async () => {
      const n = parseName('pub/acme/dir/sub/file-1.bin');
      const body = randomBytes(200_000);
      const { size } = await storage.write(n, Readable.from([body.subarray(0, 70_000), body.subarray(70_000)]), signal());
      expect(size).toBe(body.length);

      const info = await storage.stat(n);
      expect(info).not.toBeNull();
      expect(info!.name).toBe(n.name);
      expect(info!.size).toBe(body.length);
      expect(info!.mtimeMs).toBeGreaterThan(0);
      if (info!.sha256 !== undefined) expect(info!.sha256).toBe(sha256(body));

      expect(sha256(await readAll(await storage.open(n)))).toBe(sha256(body));

      const listed = await collect(storage.list());
      expect(listed.map((o) => o.name)).toContain(n.name);
      expect(listed.find((o) => o.name === n.name)!.size).toBe(body.length);

      expect(await storage.remove(n)).toBe(true);
      expect(await storage.stat(n)).toBeNull();
      expect(await storage.remove(n)).toBe(false);
      expect((await collect(storage.list())).map((o) => o.name)).not.toContain(n.name);
    });

    it('opens an inclusive byte range', async () => {
      const n = parseName('pub/acme/range.txt');
      await storage.write(n, Readable.from([Buffer.from('0123456789abcdef')]), signal());
      expect((await readAll(await storage.open(n, { start: 2, end: 5 }))).toString()).toBe('2345');
      expect((await readAll(await storage.open(n, { start: 0, end: 0 }))).toString()).toBe('0');
      expect((await readAll(await storage.open(n, { start: 10, end: 15 }))).toString()).toBe('abcdef');
    });

    it('stores an empty body', async () => {
      const n = parseName('pub/acme/empty.txt');
      expect((await storage.write(n, Readable.from([]), signal())).size).toBe(0);
      expect((await storage.stat(n))!.size).toBe(0);
      expect((await readAll(await storage.open(n))).length).toBe(0);
    });

    it('keeps names apart: a file directly under pub/ and files of two tenants', async () => {
      const names = ['pub/top.txt', 'pub/a/x.txt', 'priv/a/x.txt', 'pub/b/x.txt'].map(parseName);
      for (const n of names) await storage.write(n, Readable.from([Buffer.from(n.name)]), signal());
      for (const n of names) expect((await readAll(await storage.open(n))).toString()).toBe(n.name);
      const listed = (await collect(storage.list())).map((o) => o.name).sort();
      expect(listed).toEqual(names.map((n) => n.name).sort());
    });

    it('reports an absent object: stat null, open not_found, remove false', async () => {
      const n = parseName('pub/acme/missing.txt');
      expect(await storage.stat(n)).toBeNull();
      await expect(storage.open(n)).rejects.toMatchObject({ code: 'not_found', status: 404 });
      expect(await storage.remove(n)).toBe(false);
      expect(await collect(storage.list())).toEqual([]);
    });

    it('treats a prefix of other names as absent: stat null, open not_found, remove false', async () => {
      await storage.write(parseName('pub/acme/dir/inner.txt'), Readable.from([Buffer.from('x')]), signal());
      const prefix = parseName('pub/acme/dir');
      expect(await storage.stat(prefix)).toBeNull();
      await expect(storage.open(prefix)).rejects.toMatchObject({ code: 'not_found' });
      expect(await storage.remove(prefix)).toBe(false);
      expect((await readAll(await storage.open(parseName('pub/acme/dir/inner.txt')))).toString()).toBe('x');
    });

    it('is create-only: a second write of a name fails with exists and leaves the first intact', async () => {
      const n = parseName('pub/acme/once.txt');
      await storage.write(n, Readable.from([Buffer.from('first')]), signal());
      const err = await storage.write(n, Readable.from([Buffer.from('second, longer body')]), signal()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HttpError);
      expect(err).toMatchObject({ code: 'exists', status: 409 });
      expect((await readAll(await storage.open(n))).toString()).toBe('first');
      expect((await storage.stat(n))!.size).toBe(5);
      expect((await storage.tmpStats(Date.now())).files).toBe(0);
    });

    it('lets exactly one of two concurrent writes of a name win; the stored bytes are one body whole', async () => {
      const n = parseName('pub/acme/race.bin');
      const a = randomBytes(300_000);
      const b = randomBytes(300_000);
      const sa = new PassThrough();
      const sb = new PassThrough();
      const results = Promise.allSettled([storage.write(n, sa, signal()), storage.write(n, sb, signal())]);
      // Interleave the two bodies so both writes are in flight at once.
      for (let off = 0; off < a.length; off += 50_000) {
        sa.write(a.subarray(off, off + 50_000));
        sb.write(b.subarray(off, off + 50_000));
        await tick();
      }
      sa.end();
      sb.end();
      const settled = await results;
      const ok = settled.filter((r) => r.status === 'fulfilled');
      const failed = settled.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(ok).toHaveLength(1);
      expect(failed).toHaveLength(1);
      expect(failed[0].reason).toMatchObject({ code: 'exists' });
      const stored = sha256(await readAll(await storage.open(n)));
      expect([sha256(a), sha256(b)]).toContain(stored);
      expect((await storage.tmpStats(Date.now())).files).toBe(0);
    });

    it('leaves nothing behind when the write is aborted mid-stream', async () => {
      const n = parseName('pub/acme/aborted.bin');
      const source = new PassThrough();
      const ac = new AbortController();
      const pending = storage.write(n, source, ac.signal);
      source.write(randomBytes(100_000));
      await settle();
      ac.abort();
      // The abort itself, not some other failure on the way.
      await expect(pending).rejects.toHaveProperty('name', 'AbortError');
      source.destroy();
      expect(await storage.stat(n)).toBeNull();
      expect((await storage.tmpStats(Date.now())).files).toBe(0);
      expect(await collect(storage.list())).toEqual([]);
      // The name is still free: a later write succeeds.
      await storage.write(n, Readable.from([Buffer.from('retry')]), signal());
      expect((await readAll(await storage.open(n))).toString()).toBe('retry');
    });

    it('rejects an already aborted signal without storing anything', async () => {
      const n = parseName('pub/acme/pre-aborted.bin');
      const ac = new AbortController();
      ac.abort();
      await expect(storage.write(n, Readable.from([Buffer.from('x')]), ac.signal)).rejects.toHaveProperty('name', 'AbortError');
      expect(await storage.stat(n)).toBeNull();
      expect((await storage.tmpStats(Date.now())).files).toBe(0);
    });

    it('leaves nothing behind when the source stream fails', async () => {
      const n = parseName('pub/acme/failing.bin');
      const source = new PassThrough();
      const pending = storage.write(n, source, signal());
      source.write(randomBytes(100_000));
      await settle();
      source.destroy(new Error('client went away'));
      // The source's own error comes out, not a translation that would hide it.
      await expect(pending).rejects.toThrow(/^client went away$/);
      expect(await storage.stat(n)).toBeNull();
      expect((await storage.tmpStats(Date.now())).files).toBe(0);
      expect(await collect(storage.list())).toEqual([]);
    });

    it('reports an empty spool and sweeps nothing when no write is in flight', async () => {
      const stats = await storage.tmpStats(Date.now());
      expect(stats).toEqual({ files: 0, bytes: 0, oldestAgeMs: null });
      expect(await storage.sweepTmp(0, Date.now() + 3_600_000)).toEqual({ files: 0, bytes: 0 });
    });

    it('never sweeps the spool of a live write, even with max age 0', async () => {
      const n = parseName('pub/acme/live.bin');
      const body = randomBytes(150_000);
      const source = new PassThrough();
      const pending = storage.write(n, source, signal());
      source.write(body.subarray(0, 100_000));
      // The write has a spool entry before the sweep, so the sweep has something it could wrongly take.
      await until(async () => (await storage.tmpStats(Date.now())).files === 1);
      expect(await storage.sweepTmp(0, Date.now() + 3_600_000)).toEqual({ files: 0, bytes: 0 });
      expect((await storage.tmpStats(Date.now())).files).toBe(1);
      source.end(body.subarray(100_000));
      expect((await pending).size).toBe(body.length);
      expect(sha256(await readAll(await storage.open(n)))).toBe(sha256(body));
      expect((await storage.tmpStats(Date.now())).files).toBe(0);
    });

    it('passes check() on a fresh store', async () => {
      await expect(storage.check()).resolves.toBeUndefined();
    });
  });
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
/** Lets a pending write consume what was pushed (not an assertion on time). */
const settle = () => new Promise<void>((resolve) => setTimeout(resolve, 50));

/** Polls until `condition` holds; fails after 10 s (a hang, not a timing assertion). */
async function until(condition: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not reached within 10 s');
    await tick();
  }
}
