import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { MetadataIndex } from '../../src/index/index.js';
import { openIndex } from '../../src/index/open.js';
import type { SqliteFiles } from '../../src/index/sqlite/files.js';
import { file, indexContract } from './contract.js';

indexContract('sqlite', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-sqlite-index-'));
  const config = { index: { engine: 'sqlite' as const, url: null } };
  return {
    index: await openIndex(config, dir),
    // Another connection to the same file, as another process has.
    open: () => openIndex(config, dir),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
});

describe('sqlite files: rows kept between changes', () => {
  let dir: string;
  let index: MetadataIndex;
  let other: MetadataIndex;
  beforeEach(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-sqlite-rows-'));
    const config = { index: { engine: 'sqlite' as const, url: null } };
    index = await openIndex(config, dir);
    other = await openIndex(config, dir);
  });
  afterEach(async () => {
    await other.close();
    await index.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const reads = () => ({ ...(index.files as SqliteFiles).reads });

  it('answers a get again without a query until anything changes, from this connection or another', async () => {
    const record = file('pub/acme/a.txt');
    await index.files.put(record);
    expect(await index.files.get(record.name)).toEqual(record);
    expect(await index.files.get('pub/acme/absent')).toBeUndefined();
    const before = reads();
    expect(await index.files.get(record.name)).toEqual(record);
    expect(await index.files.get('pub/acme/absent')).toBeUndefined();
    expect(reads()).toEqual({ kept: before.kept + 2, queried: before.queried });

    // Another process's writes (a worker, the cleanup command): PRAGMA data_version.
    await other.files.touchMany([[record.name, 5000]]);
    expect(await index.files.get(record.name)).toEqual({ ...record, accessedMs: 5000 });
    await other.files.put(file('pub/acme/absent'));
    expect(await index.files.get('pub/acme/absent')).toEqual(file('pub/acme/absent'));
    await other.files.remove(record.name);
    expect(await index.files.get(record.name)).toBeUndefined();
    // This connection's own writes: total_changes().
    await index.files.put(record);
    expect(await index.files.get(record.name)).toEqual(record);
    await index.files.removeMany([record.name]);
    expect(await index.files.get(record.name)).toBeUndefined();
    expect(reads().queried).toBe(before.queried + 5);
  });

  it('keeps frozen records: a caller cannot change what the next one reads', async () => {
    await index.files.put(file('pub/acme/a.txt'));
    const record = (await index.files.get('pub/acme/a.txt'))!;
    expect(() => { record.size = 1; }).toThrow(TypeError);
  });
});
