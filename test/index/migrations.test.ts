import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSqliteIndex } from '../../src/index/sqlite/sqlite-index.js';
import { IndexVersionError, MIGRATIONS, SCHEMA_VERSION } from '../../src/index/sqlite/schema.js';
import { LEGACY_CANDIDATES, LEGACY_FILE_INDEX, LEGACY_RUN_LOG, LEGACY_S3_PENDING, LEGACY_USAGE_HISTORY } from './legacy-schema.js';

/**
 * Versioned migrations of the SQLite index (src/index/sqlite/schema.ts). The
 * tests of the SQLite engine are the one place besides src/index/ that
 * touches SQL: they must write a database the way older code did.
 */
const HOUR = 3_600_000;
const SHA = 'a'.repeat(64);

/** What a node of the releases before migrations left on disk: tables in the order its modules created them, rows written the way they wrote them. */
function writeLegacyIndex(file: string, options: { s3: boolean }): void {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec(LEGACY_FILE_INDEX);
  db.exec(LEGACY_CANDIDATES);
  db.exec(LEGACY_RUN_LOG);
  db.exec(LEGACY_USAGE_HISTORY);
  if (options.s3) db.exec(LEGACY_S3_PENDING);
  const insert = db.prepare(`INSERT INTO files (name, tenant, class, size, sha256, created_ms, accessed_ms, expires_ms)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
  insert.run('pub/acme/a.bin', 'acme', 'default', 100, SHA, 1000, 2000, null);
  insert.run('pub/acme/cachedtickets/b.pdf', 'acme', 'cache', 250, SHA, 1100, 1200, 9000);
  insert.run('pub/globex/c.bin', 'globex', 'default', 40, SHA, 1300, 1300, null);
  db.prepare('INSERT INTO usage_samples (at_ms, used_bytes) VALUES (?, ?)').run(10 * HOUR, 5000);
  db.prepare('INSERT INTO usage_samples (at_ms, used_bytes) VALUES (?, ?)').run(10 * HOUR + 60_000, 5100);
  db.prepare('INSERT INTO tenant_hourly (hour_ms, tenant, bytes) VALUES (?, ?, ?)').run(10 * HOUR, 'acme', 300);
  db.prepare('INSERT INTO tenant_hourly (hour_ms, tenant, bytes) VALUES (?, ?, ?)').run(10 * HOUR, 'globex', 40);
  db.prepare('INSERT INTO eviction_runs (at_ms, reason, files, bytes, duration_ms, error) VALUES (?, ?, ?, ?, ?, ?)').run(7000, 'schedule', 2, 500, 12, null);
  if (options.s3) db.prepare('INSERT INTO s3_pending (name, started_ms, upload_id) VALUES (?, ?, ?)').run('pub/acme/pending.bin', 8000, 'upload-1');
  db.close();
}

function userVersion(file: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return db.pragma('user_version', { simple: true }) as number;
  } finally {
    db.close();
  }
}

/** Tables, indexes and triggers of a database, by type and name. */
function schemaObjects(file: string): string[] {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare("SELECT type || ' ' || name AS object FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY 1").all() as { object: string }[])
      .map((row) => row.object);
  } finally {
    db.close();
  }
}

describe('index schema migrations', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-migrate-'));
    file = path.join(dir, 'index.sqlite');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('upgrades an index written by the releases before migrations (s3 node) with every row intact', async () => {
    writeLegacyIndex(file, { s3: true });
    expect(userVersion(file)).toBe(0);
    const index = openSqliteIndex(file);
    try {
      expect(index.created).toBe(false);
      expect(await index.files.get('pub/acme/cachedtickets/b.pdf')).toEqual({
        name: 'pub/acme/cachedtickets/b.pdf', tenant: 'acme', class: 'cache', size: 250, sha256: SHA, createdMs: 1100, accessedMs: 1200, expiresMs: 9000,
      });
      const names = [];
      for await (const name of index.files.names()) names.push(name);
      expect(names).toEqual(['pub/acme/a.bin', 'pub/acme/cachedtickets/b.pdf', 'pub/globex/c.bin']);
      expect(await index.totals.summary()).toEqual({ files: 3, bytes: 390 });
      expect(await index.totals.tenantClass('acme', 'cache')).toEqual({ tenant: 'acme', class: 'cache', files: 1, bytes: 250 });
      expect(await index.history.samplesSince(0)).toEqual([{ atMs: 10 * HOUR, usedBytes: 5000 }, { atMs: 10 * HOUR + 60_000, usedBytes: 5100 }]);
      expect(await index.history.baselineAt(10 * HOUR + 5)).toEqual({ hourMs: 10 * HOUR, totalBytes: 340, bytes: new Map([['acme', 300], ['globex', 40]]) });
      expect(await index.runs.last()).toEqual({ atMs: 7000, reason: 'schedule', files: 2, bytes: 500, durationMs: 12, error: null });
      expect(await index.claims.all()).toEqual([{ name: 'pub/acme/pending.bin', startedMs: 8000, uploadId: 'upload-1', nodeId: null, leaseUntilMs: null }]);
      // The triggers still keep the totals.
      await index.files.remove('pub/acme/a.bin');
      await index.files.put({ name: 'pub/globex/d.bin', tenant: 'globex', class: 'default', size: 60, sha256: SHA, createdMs: 1, accessedMs: 1, expiresMs: null });
      expect(await index.totals.all()).toEqual(expect.arrayContaining([
        { tenant: 'acme', class: 'cache', files: 1, bytes: 250 }, { tenant: 'globex', class: 'default', files: 2, bytes: 100 },
      ]));
      expect((await index.totals.all()).find((t) => t.tenant === 'acme' && t.class === 'default')).toBeUndefined();
    } finally {
      await index.close();
    }
    expect(userVersion(file)).toBe(SCHEMA_VERSION);
  });

  it('upgrades an fs node\'s index (it never had s3_pending) to the schema a new index gets', async () => {
    writeLegacyIndex(file, { s3: false });
    const index = openSqliteIndex(file);
    expect(await index.claims.claim('pub/acme/new.bin', 1)).toBe(true);
    expect(await index.claims.claim('pub/acme/a.bin', 1)).toBe(false);
    expect(await index.totals.summary()).toEqual({ files: 3, bytes: 390 });
    await index.close();
    const fresh = path.join(dir, 'fresh.sqlite');
    await openSqliteIndex(fresh).close();
    expect(schemaObjects(file)).toEqual(schemaObjects(fresh));
    expect(schemaObjects(fresh)).toContain('index files_global_lru');
    expect(userVersion(fresh)).toBe(SCHEMA_VERSION);
  });

  it('adds retired_names to an index at version 1 (rows intact); removing a row can retire its name with its checksum', async () => {
    // Version 1 exactly as it was released: the legacy tables, migrated by the first migration only.
    writeLegacyIndex(file, { s3: false });
    const v1 = new Database(file);
    v1.exec(MIGRATIONS[0]);
    v1.pragma('user_version = 1');
    v1.close();
    expect(schemaObjects(file)).not.toContain('table retired_names');
    const index = openSqliteIndex(file);
    try {
      expect(schemaObjects(file)).toEqual(expect.arrayContaining(['table retired_names', 'index retired_names_age']));
      expect(await index.totals.summary()).toEqual({ files: 3, bytes: 390 });
      expect(await index.files.remove('pub/acme/a.bin', 5000)).toBe(true);
      expect(await index.files.remove('pub/globex/c.bin')).toBe(true);
      expect(await index.retired.get('pub/acme/a.bin')).toEqual({ name: 'pub/acme/a.bin', sha256: SHA, retiredMs: 5000 });
      expect(await index.retired.get('pub/globex/c.bin')).toBeUndefined();
      // A batch retires the names it is told to, all in one transaction with the removal.
      await index.files.put({ name: 'pub/acme/d.bin', tenant: 'acme', class: 'default', size: 1, sha256: 'b'.repeat(64), createdMs: 1, accessedMs: 1, expiresMs: null });
      expect(await index.files.removeMany(['pub/acme/cachedtickets/b.pdf', 'pub/acme/d.bin'], (name) => (name.endsWith('d.bin') ? 6000 : null))).toBe(2);
      expect(await index.retired.get('pub/acme/d.bin')).toEqual({ name: 'pub/acme/d.bin', sha256: 'b'.repeat(64), retiredMs: 6000 });
      expect(await index.retired.get('pub/acme/cachedtickets/b.pdf')).toBeUndefined();
      expect(await index.totals.summary()).toEqual({ files: 0, bytes: 0 });
      expect(await index.retired.prune(5000)).toBe(1);
      expect(await index.retired.get('pub/acme/a.bin')).toBeUndefined();
      expect(await index.retired.drop('pub/acme/d.bin')).toBe(true);
      expect(await index.retired.drop('pub/acme/d.bin')).toBe(false);
    } finally {
      await index.close();
    }
    expect(userVersion(file)).toBe(SCHEMA_VERSION);
  });

  it('migration 3: an index of version 2 keeps its runs (without per-reason figures), then records per-reason runs and scrub runs', async () => {
    const v2 = new Database(file);
    v2.pragma('journal_mode = WAL');
    v2.exec(MIGRATIONS[0]);
    v2.exec(MIGRATIONS[1]);
    v2.pragma('user_version = 2');
    v2.prepare('INSERT INTO eviction_runs (at_ms, reason, files, bytes, duration_ms, error) VALUES (?, ?, ?, ?, ?, ?)').run(7000, 'cli', 2, 500, 12, null);
    v2.prepare('INSERT INTO eviction_runs (at_ms, reason, files, bytes, duration_ms, error) VALUES (?, ?, ?, ?, ?, ?)').run(8000, 'schedule', 0, 0, 3, null);
    v2.close();
    const index = openSqliteIndex(file);
    try {
      expect(userVersion(file)).toBe(SCHEMA_VERSION);
      expect(await index.runs.last()).toEqual({ atMs: 8000, reason: 'schedule', files: 0, bytes: 0, durationMs: 3, error: null });
      expect(await index.runs.last('removed')).toEqual({ atMs: 7000, reason: 'cli', files: 2, bytes: 500, durationMs: 12, error: null });
      const id = await index.runs.record({ atMs: 9000, reason: 'cli', files: 1, bytes: 10, durationMs: 1, error: null, byReason: { 'max-age': { files: 1, bytes: 10 } } });
      expect(await index.runs.since(id - 1, 10)).toEqual([
        { id, atMs: 9000, reason: 'cli', files: 1, bytes: 10, durationMs: 1, error: null, byReason: { 'max-age': { files: 1, bytes: 10 } } },
      ]);
      expect(await index.scrubs.last()).toBeNull();
      await index.scrubs.record({ atMs: 10_000, durationMs: 5, files: 3, bytes: 30, corrupt: 1, missing: 0, quarantined: 1 });
      expect(await index.scrubs.last()).toEqual({ atMs: 10_000, durationMs: 5, files: 3, bytes: 30, corrupt: 1, missing: 0, quarantined: 1 });
    } finally {
      await index.close();
    }
    const fresh = path.join(dir, 'fresh.sqlite');
    await openSqliteIndex(fresh).close();
    expect(schemaObjects(file)).toEqual(schemaObjects(fresh));
    expect(schemaObjects(fresh)).toContain('table scrub_runs');
  });

  it('opening an up-to-date index again changes nothing', async () => {
    const first = openSqliteIndex(file);
    expect(first.created).toBe(true);
    await first.files.put({ name: 'pub/acme/a.bin', tenant: 'acme', class: 'default', size: 5, sha256: SHA, createdMs: 1, accessedMs: 1, expiresMs: null });
    await first.close();
    const again = openSqliteIndex(file);
    expect(again.created).toBe(false);
    expect(await again.totals.summary()).toEqual({ files: 1, bytes: 5 });
    await again.close();
    expect(userVersion(file)).toBe(SCHEMA_VERSION);
  });

  it('refuses an index of a newer schema version with a clear error, and leaves it as it was', async () => {
    await openSqliteIndex(file).close();
    const db = new Database(file);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    const open = () => openSqliteIndex(file);
    expect(open).toThrow(IndexVersionError);
    expect(open).toThrow(new RegExp(`schema version ${SCHEMA_VERSION + 1}; this nanocdn knows versions up to ${SCHEMA_VERSION}`));
    expect(() => openSqliteIndex(file, { readonly: true })).toThrow(IndexVersionError);
    expect(userVersion(file)).toBe(SCHEMA_VERSION + 1);
  });
});
