import { closeSync, fstatSync, mkdtempSync, openSync, rmSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { FileRecord } from '../../src/index/index.js';
import { ReadCache, type CachedFile } from '../../src/http/read/read-cache.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-read-cache-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A file on disk and the index row that describes it. */
function stored(name: string, size: number, sha = 'a'.repeat(64)): { path: string; record: FileRecord } {
  const file = path.join(dir, name);
  writeFileSync(file, Buffer.alloc(size, name.charCodeAt(0)));
  return { path: file, record: { name, tenant: 't', class: 'default', size, sha256: sha, createdMs: 1000, accessedMs: 1000, expiresMs: null } };
}

/** cache.load on the file at `file`, opened as an engine's openFile does (then closed). */
async function load(cache: ReadCache, name: string, file: string, record: FileRecord, contentType: string): Promise<CachedFile> {
  const fd = openSync(file, 'r');
  try {
    const st = fstatSync(fd);
    return await cache.load(name, record, { fd, size: st.size, mtimeMs: st.mtimeMs }, contentType);
  } finally {
    closeSync(fd);
  }
}

describe('ReadCache', () => {
  it('loads metadata and the whole body of a small file, then answers from memory', async () => {
    const cache = new ReadCache({ maxBodyBytes: 100 });
    const f = stored('small', 50);
    utimesSync(f.path, new Date('2026-01-02T03:04:05Z'), new Date('2026-01-02T03:04:05Z'));
    const entry = await load(cache, 'small', f.path, f.record, 'text/plain; charset=utf-8');
    expect(entry).toMatchObject({ size: 50, etag: `"${'a'.repeat(64)}"`, lastModified: 'Fri, 02 Jan 2026 03:04:05 GMT', contentType: 'text/plain; charset=utf-8' });
    expect(entry.body?.equals(Buffer.alloc(50, 's'.charCodeAt(0)))).toBe(true);
    rmSync(f.path);
    expect(cache.get('small', f.record)).toBe(entry);
  });

  it('keeps only metadata of a file larger than maxBodyBytes', async () => {
    const cache = new ReadCache({ maxBodyBytes: 100 });
    const f = stored('large', 101);
    const entry = await load(cache, 'large', f.path, f.record, 'application/octet-stream');
    expect(entry.body).toBeUndefined();
    expect(entry.size).toBe(101);
    expect(cache.cachedBodyBytes).toBe(0);
    expect(cache.get('large', f.record)).toBe(entry);
  });

  it('drops an entry whose index row changed (re-upload after a delete, reconcile) or is asked with another row', async () => {
    const cache = new ReadCache();
    const f = stored('changing', 10);
    await load(cache, 'changing', f.path, f.record, 'x/y');
    expect(cache.get('changing', { ...f.record, sha256: 'b'.repeat(64) })).toBeUndefined();
    expect(cache.size).toBe(0);
    await load(cache, 'changing', f.path, f.record, 'x/y');
    expect(cache.get('changing', { ...f.record, createdMs: 2000 })).toBeUndefined();
    await load(cache, 'changing', f.path, f.record, 'x/y');
    expect(cache.get('changing', f.record)).toBeDefined();
  });

  it('serves but does not cache a file whose size differs from its row', async () => {
    const cache = new ReadCache();
    const f = stored('drifted', 10);
    truncateSync(f.path, 4);
    const entry = await load(cache, 'drifted', f.path, f.record, 'x/y');
    expect(entry.size).toBe(4);
    expect(entry.body?.length).toBe(4);
    expect(cache.size).toBe(0);
  });

  it('evicts the least recently used entry beyond maxEntries', async () => {
    const cache = new ReadCache({ maxEntries: 2 });
    const a = stored('a1', 1);
    const b = stored('b1', 1);
    const c = stored('c1', 1);
    await load(cache, 'a1', a.path, a.record, 'x/y');
    await load(cache, 'b1', b.path, b.record, 'x/y');
    cache.get('a1', a.record); // a1 is now the most recently used
    await load(cache, 'c1', c.path, c.record, 'x/y');
    expect(cache.size).toBe(2);
    expect(cache.get('b1', b.record)).toBeUndefined();
    expect(cache.get('a1', a.record)).toBeDefined();
    expect(cache.get('c1', c.record)).toBeDefined();
  });

  it('keeps the total of cached bodies under maxTotalBodyBytes, evicting the oldest', async () => {
    const cache = new ReadCache({ maxBodyBytes: 100, maxTotalBodyBytes: 250 });
    const files = ['p', 'q', 'r'].map((n) => stored(`${n}2`, 100));
    for (const f of files) await load(cache, f.record.name, f.path, f.record, 'x/y');
    expect(cache.cachedBodyBytes).toBe(200);
    expect(cache.get('p2', files[0].record)).toBeUndefined();
    expect(cache.get('r2', files[2].record)).toBeDefined();
    cache.delete('r2');
    expect(cache.cachedBodyBytes).toBe(100);
  });
});
