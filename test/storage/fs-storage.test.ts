import { mkdir, mkdtemp, readdir, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { existsSync } from 'node:fs';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseName } from '../../src/names.js';
import { FsStorage } from '../../src/storage/fs-storage.js';
import { requirement } from '../helpers/system-tools.js';
import { storageContract } from './contract.js';

storageContract('fs', async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'nanocdn-fs-'));
  const storage = new FsStorage({ dataDir, fsync: true });
  await storage.init();
  return { storage, cleanup: () => rm(dataDir, { recursive: true, force: true }) };
});

describe('FsStorage specifics', () => {
  let dataDir: string;
  let storage: FsStorage;
  const signal = () => new AbortController().signal;
  beforeEach(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'nanocdn-fs-'));
    storage = new FsStorage({ dataDir, fsync: false });
    await storage.init();
  });
  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('keeps bytes under files/<name> and the spool under tmp/', async () => {
    await storage.write(parseName('pub/acme/a/b.txt'), Readable.from([Buffer.from('hi')]), signal());
    expect(await readFile(path.join(dataDir, 'files', 'pub', 'acme', 'a', 'b.txt'), 'utf8')).toBe('hi');
    expect(storage.localPath(parseName('pub/acme/a/b.txt'))).toBe(path.join(dataDir, 'files', 'pub', 'acme', 'a', 'b.txt'));
    expect(await readdir(path.join(dataDir, 'tmp'))).toEqual([]);
  });

  it('openFile (LocalFiles): an open descriptor with size and mtime; not_found for an absent name, a directory of names, a name under a file', async () => {
    const { closeSync, readSync } = await import('node:fs');
    await storage.write(parseName('pub/acme/dir/a.txt'), Readable.from([Buffer.from('hello')]), signal());
    const file = await storage.openFile(parseName('pub/acme/dir/a.txt'));
    const buffer = Buffer.alloc(5);
    expect(readSync(file.fd, buffer, 0, 5, 0)).toBe(5);
    closeSync(file.fd);
    expect(buffer.toString()).toBe('hello');
    expect(file.size).toBe(5);
    expect(file.mtimeMs).toBeGreaterThan(0);
    for (const name of ['pub/acme/none.txt', 'pub/acme/dir', 'pub/acme/dir/a.txt/b.txt']) {
      await expect(storage.openFile(parseName(name))).rejects.toMatchObject({ code: 'not_found', status: 404 });
    }
  });

  it('refuses a name under a stored file, and a name that is a directory, with invalid_name (not exists, not a raw errno)', async () => {
    await storage.write(parseName('pub/acme/a.txt'), Readable.from([Buffer.from('file')]), signal());
    await storage.write(parseName('pub/acme/dir/x.txt'), Readable.from([Buffer.from('inner')]), signal());
    await expect(storage.write(parseName('pub/acme/a.txt/b.txt'), Readable.from([Buffer.from('x')]), signal()))
      .rejects.toMatchObject({ code: 'invalid_name', status: 400 });
    await expect(storage.write(parseName('pub/acme/a.txt/deeper/b.txt'), Readable.from([Buffer.from('x')]), signal()))
      .rejects.toMatchObject({ code: 'invalid_name' });
    await expect(storage.write(parseName('pub/acme/dir'), Readable.from([Buffer.from('x')]), signal()))
      .rejects.toMatchObject({ code: 'invalid_name' });
    expect(await readdir(path.join(dataDir, 'tmp'))).toEqual([]);
    expect(await readFile(path.join(dataDir, 'files', 'pub', 'acme', 'a.txt'), 'utf8')).toBe('file');
  });

  it('sweeps stale tmp entries older than the max age, reports them, and keeps young ones', async () => {
    const now = Date.now();
    await writeFile(path.join(dataDir, 'tmp', 'stale-1'), Buffer.alloc(1000));
    await writeFile(path.join(dataDir, 'tmp', 'young-1'), Buffer.alloc(10));
    const old = new Date(now - 2 * 3_600_000);
    await utimes(path.join(dataDir, 'tmp', 'stale-1'), old, old);
    const stats = await storage.tmpStats(now);
    expect(stats.files).toBe(2);
    expect(stats.bytes).toBe(1010);
    expect(stats.oldestAgeMs).toBeGreaterThanOrEqual(2 * 3_600_000);
    expect(await storage.sweepTmp(3_600_000, now)).toEqual({ files: 1, bytes: 1000 });
    expect(await readdir(path.join(dataDir, 'tmp'))).toEqual(['young-1']);
    expect(await storage.sweepTmp(0, now + 1000)).toEqual({ files: 1, bytes: 10 });
    expect(await storage.tmpStats(now)).toEqual({ files: 0, bytes: 0, oldestAgeMs: null });
  });

  it('lists only regular files with valid names (skips junk dropped into files/)', async () => {
    await storage.write(parseName('pub/acme/ok.txt'), Readable.from([Buffer.from('x')]), signal());
    await writeFile(path.join(dataDir, 'files', 'pub', 'acme', '.hidden'), 'x');
    await writeFile(path.join(dataDir, 'files', 'stray.txt'), 'x');
    await mkdir(path.join(dataDir, 'files', 'pub', 'acme', 'bad name'), { recursive: true });
    await writeFile(path.join(dataDir, 'files', 'pub', 'acme', 'bad name', 'x.txt'), 'x');
    const names: string[] = [];
    for await (const info of storage.list()) names.push(info.name);
    expect(names).toEqual(['pub/acme/ok.txt']);
  });

  it.runIf(requirement('/dev/shm (a second filesystem)', existsSync('/dev/shm'), 'Linux provides it'))('refuses to start when tmp/ and files/ are on different filesystems', async () => {
    // /dev/shm is a tmpfs on Linux; a symlinked tmp/ there puts it on another filesystem.
    const other = await mkdtemp(path.join('/dev/shm', 'nanocdn-'));
    const dir = await mkdtemp(path.join(os.tmpdir(), 'nanocdn-fs-'));
    try {
      await symlink(other, path.join(dir, 'tmp'));
      await expect(new FsStorage({ dataDir: dir, fsync: false }).init()).rejects.toThrow(/different filesystems/);
    } finally {
      await rm(dir, { recursive: true, force: true });
      await rm(other, { recursive: true, force: true });
    }
  });
});
