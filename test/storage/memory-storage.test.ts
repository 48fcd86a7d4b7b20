import { randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { parseName } from '../../src/names.js';
import { MemoryStorage } from '../../src/storage/memory-storage.js';
import { readAll, storageContract } from './contract.js';

storageContract('memory', async () => ({ storage: new MemoryStorage(), cleanup: async () => undefined }));

describe('MemoryStorage specifics', () => {
  const signal = () => new AbortController().signal;

  it('reports a live write in tmpStats with the bytes it holds, and nothing once it ended', async () => {
    const storage = new MemoryStorage();
    const source = new PassThrough();
    const pending = storage.write(parseName('pub/acme/live.bin'), source, signal());
    source.write(randomBytes(70_000));
    for (let i = 0; i < 100 && (await storage.tmpStats(Date.now())).bytes < 70_000; i++) await new Promise((r) => setImmediate(r));
    const during = await storage.tmpStats(Date.now() + 5000);
    expect(during).toMatchObject({ files: 1, bytes: 70_000 });
    expect(during.oldestAgeMs).toBeGreaterThanOrEqual(5000);
    source.end();
    expect((await pending).size).toBe(70_000);
    expect(await storage.tmpStats(Date.now())).toEqual({ files: 0, bytes: 0, oldestAgeMs: null });
  });

  it('clamps a range that runs past the end, like a file read stream', async () => {
    const storage = new MemoryStorage();
    const n = parseName('pub/acme/short.txt');
    await storage.write(n, Readable.from([Buffer.from('0123')]), signal());
    expect((await readAll(await storage.open(n, { start: 2, end: 99 }))).toString()).toBe('23');
    expect((await readAll(await storage.open(n, { start: 9, end: 12 }))).length).toBe(0);
  });

  it('streams a large object in bounded chunks rather than one buffer', async () => {
    const storage = new MemoryStorage();
    const n = parseName('pub/acme/large.bin');
    const body = randomBytes(1_000_000);
    await storage.write(n, Readable.from([body]), signal());
    const chunks: Buffer[] = [];
    for await (const chunk of await storage.open(n)) chunks.push(chunk as Buffer);
    expect(chunks.length).toBeGreaterThan(1);
    expect(Math.max(...chunks.map((c) => c.length))).toBeLessThanOrEqual(64 * 1024);
    expect(Buffer.concat(chunks).equals(body)).toBe(true);
  });

  it('stores a name and a prefix of it side by side (no directories, unlike the fs engine)', async () => {
    const storage = new MemoryStorage();
    await storage.write(parseName('pub/acme/a.txt'), Readable.from([Buffer.from('file')]), signal());
    await storage.write(parseName('pub/acme/a.txt/b.txt'), Readable.from([Buffer.from('under')]), signal());
    expect((await readAll(await storage.open(parseName('pub/acme/a.txt')))).toString()).toBe('file');
    expect((await readAll(await storage.open(parseName('pub/acme/a.txt/b.txt')))).toString()).toBe('under');
  });

  it('keeps its objects across close(), so a node can be reopened on the same instance', async () => {
    const storage = new MemoryStorage();
    const n = parseName('pub/acme/kept.txt');
    await storage.write(n, Readable.from([Buffer.from('kept')]), signal());
    await storage.close();
    expect((await storage.stat(n))!.size).toBe(4);
  });
});
