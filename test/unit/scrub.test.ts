import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseName } from '../../src/names.js';
import { MemoryStorage } from '../../src/storage/memory-storage.js';
import { openSqliteIndex, type SqliteIndex } from '../../src/index/sqlite/sqlite-index.js';
import { Pacer } from '../../src/scrub/pacer.js';
import { quarantineFile } from '../../src/scrub/quarantine.js';
import { scrub } from '../../src/scrub/scrub.js';

/**
 * The scrub on an engine without local files (the memory engine): it only
 * needs Storage.open and remove, so it works on s3 the same way. (The
 * `nanocdn scrub` command refuses the memory engine, whose files live in
 * the server process; the fs engine is covered by test/system/scrub-cli.)
 */
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('scrub on a stream-only engine', () => {
  let dir: string;
  let index: SqliteIndex;
  let storage: MemoryStorage;
  const store = async (name: string, body: Buffer, row: { size?: number; sha256?: string } = {}) => {
    await storage.write(parseName(name), Readable.from([body]), new AbortController().signal);
    await index.files.put({
      name, tenant: parseName(name).tenant, class: 'default', size: row.size ?? body.length, sha256: row.sha256 ?? sha(body), createdMs: 1, accessedMs: 1, expiresMs: null,
    });
  };
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-scrub-unit-'));
    index = openSqliteIndex(path.join(dir, 'index.sqlite'));
    storage = new MemoryStorage();
  });
  afterEach(async () => {
    await index.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('finds a size mismatch, a sha256 mismatch and a row without an object; quarantines the corrupt ones by copy', async () => {
    await store('pub/acme/ok.bin', Buffer.alloc(5000, 1));
    await store('pub/acme/short.bin', Buffer.alloc(100, 2), { size: 200 });
    await store('pub/acme/other.bin', Buffer.alloc(300, 3), { sha256: 'f'.repeat(64) });
    await index.files.put({ name: 'pub/acme/gone.bin', tenant: 'acme', class: 'default', size: 7, sha256: 'e'.repeat(64), createdMs: 1, accessedMs: 1, expiresMs: null });
    const quarantineDir = path.join(dir, 'quarantine');
    const result = await scrub({
      storage, files: index.files, pacer: new Pacer(null), now: () => 42,
      quarantine: (name) => quarantineFile(storage, index.files, quarantineDir, name),
    });
    expect(result).toMatchObject({ atMs: 42, checked: 4, ok: 1, corrupt: 2, missing: 1, quarantined: 2, changedMeanwhile: 0, bytes: 5400 });
    expect(result.bad.map((b) => [b.name, b.problem, b.actualSize, b.quarantinedTo])).toEqual([
      ['pub/acme/gone.bin', 'missing', null, null],
      ['pub/acme/other.bin', 'sha256', 300, path.join(quarantineDir, 'pub/acme/other.bin')],
      ['pub/acme/short.bin', 'size', 100, path.join(quarantineDir, 'pub/acme/short.bin')],
    ]);
    expect(readFileSync(path.join(quarantineDir, 'pub/acme/short.bin'))).toEqual(Buffer.alloc(100, 2));
    expect(await storage.stat(parseName('pub/acme/short.bin'))).toBeNull();
    expect(await index.files.get('pub/acme/other.bin')).toBeUndefined();
    expect(await index.files.get('pub/acme/ok.bin')).toBeDefined();
    expect(await index.totals.summary()).toEqual({ files: 2, bytes: 5007 });
  });
});
