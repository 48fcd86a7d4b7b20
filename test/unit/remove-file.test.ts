import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { MetadataIndex } from '../../src/index/index.js';
import { openSqliteIndex } from '../../src/index/sqlite/sqlite-index.js';
import { parseName, type StoredName } from '../../src/names.js';
import { removeFile, removeFiles, type RemoveFileDeps } from '../../src/remove-file.js';
import { FsStorage } from '../../src/storage/fs-storage.js';
import type { Logger } from '../../src/logger.js';

/** removeFile (src/remove-file.ts) on a real fs engine and a real index; access times, guard and logger record what they were told. */
describe('removeFile', () => {
  let dataDir: string;
  let storage: FsStorage;
  let index: MetadataIndex;
  let forgotten: string[];
  let freed: number;
  let errors: string[];
  let deps: RemoveFileDeps;

  beforeEach(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'nanocdn-remove-'));
    storage = new FsStorage({ dataDir, fsync: false });
    await storage.init();
    index = openSqliteIndex(':memory:');
    forgotten = [];
    freed = 0;
    errors = [];
    const logger = { error: (message: string) => { errors.push(message); } } as unknown as Logger;
    deps = { storage, files: index.files, access: { forget: (name) => { forgotten.push(name); } }, guard: { noteFreed: () => { freed++; } }, logger };
  });
  afterEach(async () => {
    await index.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  async function store(name: string): Promise<StoredName> {
    const stored = parseName(name);
    const { size } = await storage.write(stored, Readable.from([Buffer.from(name)]), new AbortController().signal);
    await index.files.put({ name, tenant: stored.tenant, class: 'default', size, sha256: 'x', createdMs: 1, accessedMs: 1, expiresMs: null });
    return stored;
  }
  const onDisk = (name: string) => existsSync(path.join(dataDir, 'files', name));

  it('removes the file, then its row, forgets its access time and tells the guard', async () => {
    const stored = await store('pub/acme/a.txt');
    expect(await removeFile(deps, stored)).toBe(true);
    expect(onDisk('pub/acme/a.txt')).toBe(false);
    expect(await index.files.get('pub/acme/a.txt')).toBeUndefined();
    expect(await index.totals.summary()).toEqual({ files: 0, bytes: 0 });
    expect(forgotten).toEqual(['pub/acme/a.txt']);
    expect(freed).toBe(1);
  });

  it('drops a stale row whose file is already gone, and says nothing was removed', async () => {
    await index.files.put({ name: 'pub/acme/orphan.txt', tenant: 'acme', class: 'default', size: 9, sha256: 'x', createdMs: 1, accessedMs: 1, expiresMs: null });
    expect(await removeFile(deps, parseName('pub/acme/orphan.txt'))).toBe(false);
    expect(await index.files.get('pub/acme/orphan.txt')).toBeUndefined();
    expect(forgotten).toEqual(['pub/acme/orphan.txt']);
    expect(freed).toBe(0);
  });

  it('still removes the file when the index refuses (a full disk): logged, reconcile catches up', async () => {
    const stored = await store('pub/acme/b.txt');
    const refusing = { ...deps, files: { get: (name: string) => index.files.get(name), remove: () => Promise.reject(new Error('SQLITE_FULL')), removeMany: index.files.removeMany } };
    expect(await removeFile(refusing, stored)).toBe(true);
    expect(onDisk('pub/acme/b.txt')).toBe(false);
    expect(errors).toEqual(['index delete failed; reconcile will catch up']);
    expect(forgotten).toEqual(['pub/acme/b.txt']);
    expect(freed).toBe(1);
  });

  it('retires a pub name with its row (not a priv one); an index that refuses the retired row still drops the row', async () => {
    const retiring = { ...deps, retired: { retireAt: (s: StoredName) => (s.visibility === 'pub' ? 7000 : null) } };
    await index.files.put({ name: 'priv/acme/p.txt', tenant: 'acme', class: 'default', size: 1, sha256: 'y', createdMs: 1, accessedMs: 1, expiresMs: null });
    expect(await removeFile(retiring, await store('pub/acme/r.txt'))).toBe(true);
    expect(await removeFile(retiring, parseName('priv/acme/p.txt'))).toBe(false);
    expect(await index.retired.get('pub/acme/r.txt')).toEqual({ name: 'pub/acme/r.txt', sha256: 'x', retiredMs: 7000 });
    expect(await index.retired.get('priv/acme/p.txt')).toBeUndefined();
    const warnings: string[] = [];
    const logger = { ...deps.logger, warn: (message: string) => { warnings.push(message); } } as unknown as Logger;
    // Retiring needs a new row; a full index refuses it, but the row goes anyway.
    const refuseRetiring = { get: (name: string) => index.files.get(name), remove: (name: string, retiredMs?: number | null) => (retiredMs != null ? Promise.reject(new Error('SQLITE_FULL')) : index.files.remove(name)),
      removeMany: (names: Iterable<string>, retiredMs?: (name: string) => number | null) => ([...names].some((name) => retiredMs?.(name) != null)
        ? Promise.reject(new Error('SQLITE_FULL')) : index.files.removeMany(names)) };
    const full = { ...retiring, logger, files: refuseRetiring };
    expect(await removeFile(full, await store('pub/acme/s.txt'))).toBe(true);
    await removeFiles(full, [await store('pub/acme/t.txt')], 4);
    expect(await index.files.get('pub/acme/s.txt')).toBeUndefined();
    expect(await index.files.get('pub/acme/t.txt')).toBeUndefined();
    expect(await index.retired.get('pub/acme/s.txt')).toBeUndefined();
    expect(warnings).toEqual(['removed without retiring the pub names: the index refused the retired rows', 'removed without retiring the pub names: the index refused the retired rows']);
    expect(errors).toEqual([]);
  });

  it('keeps the row when storage fails to remove the file', async () => {
    const stored = await store('pub/acme/c.txt');
    const failing = { ...deps, storage: { remove: () => Promise.reject(new Error('EACCES')) } };
    await expect(removeFile(failing, stored)).rejects.toThrow('EACCES');
    expect(await index.files.get('pub/acme/c.txt')).toBeDefined();
    expect(forgotten).toEqual([]);
  });

  it('removeFiles: outcomes in the given order, rows of the removed files dropped, failures kept, the guard told once', async () => {
    const names = ['pub/acme/1.txt', 'pub/acme/2.txt', 'pub/acme/3.txt', 'pub/acme/4.txt', 'pub/acme/5.txt'];
    const stored = await Promise.all(names.map(store));
    const remove = storage.remove.bind(storage);
    const flaky = { ...deps, storage: { remove: (s: StoredName) => (s.name === 'pub/acme/3.txt' ? Promise.reject(new Error('EIO')) : remove(s)) } };
    const outcomes = await removeFiles(flaky, stored, 2);
    expect(outcomes.map((o) => [o.name, o.ok])).toEqual(names.map((name) => [name, name !== 'pub/acme/3.txt']));
    expect(outcomes[2]).toMatchObject({ ok: false, error: { message: 'EIO' } });
    for (const name of names) expect(onDisk(name)).toBe(name === 'pub/acme/3.txt');
    const left = [];
    for await (const name of index.files.names()) left.push(name);
    expect(left).toEqual(['pub/acme/3.txt']);
    expect(forgotten).toEqual(names.filter((name) => name !== 'pub/acme/3.txt'));
    expect(freed).toBe(1);
  });
});
