import { randomBytes } from 'node:crypto';
import { utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fakeDisk, TEST_ENGINE, testNode, type TestNode } from '../helpers/test-node.js';
import { reconcile } from '../../src/index/reconcile.js';
import type { SqliteIndex } from '../../src/index/sqlite/sqlite-index.js';
import { headersOnly, isStored, listen, rawRequest, spoolEntries, storedBytes, tmpEntries, type Listening } from './raw-http.js';

/**
 * The disk guard through HTTP (createApp on a real temp data dir) with an
 * injected disk reading, so "how full" is exact. The real full filesystem is
 * test/system/full-disk.test.ts.
 */
const MiB = 1 << 20;
const DISK = { minFreeBytes: 10 * MiB, minFreePercent: 0, highWatermarkPercent: 90, lowWatermarkPercent: 80 };

describe('disk guard over HTTP', () => {
  let node: TestNode;
  let server: Listening;
  const disk = fakeDisk(100 * MiB, 50 * MiB);

  beforeAll(async () => {
    node = await testNode({ config: { disk: DISK }, readDisk: disk });
    server = await listen(node.app);
  });
  afterAll(async () => {
    await server.close();
    await node.close();
  });
  beforeEach(async () => {
    disk.free = 50 * MiB;
    node.ctx.guard.noteFreed();
    await node.ctx.guard.refresh(true);
  });
  afterEach(async () => {
    expect(await spoolEntries(node)).toBe(0);
    expect(node.ctx.guard.snapshot()).toMatchObject({ reservedBytes: 0, uploads: 0 });
  });

  it('refuses an upload that would eat into the reserve with 507 JSON, before reading the body', async () => {
    disk.free = 12 * MiB;
    node.ctx.guard.noteFreed();
    const res = await rawRequest(server.port, {
      method: 'PUT', path: '/upload/pub/acme/big.bin', headers: { 'content-length': 3 * MiB }, body: randomBytes(3 * MiB),
    });
    expect(res.status).toBe(507);
    expect(res.headers.connection).toBe('close');
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    expect(res.json).toMatchObject({
      error: 'insufficient_storage', freeBytes: 12 * MiB, requiredBytes: 3 * MiB + 10 * MiB, reserveBytes: 10 * MiB,
    });
    expect(String(res.json.message)).toMatch(/free.*reserve.*cleanup/);
    expect(await isStored(node, 'pub/acme/big.bin')).toBe(false);
    // Right at the limit it fits.
    await request(node.app).put('/upload/pub/acme/fits.bin').send(randomBytes(2 * MiB)).expect(201);
  });

  it('answers Expect: 100-continue with 507 so the body is never sent', async () => {
    disk.free = 10 * MiB;
    node.ctx.guard.noteFreed();
    const res = await headersOnly(server.port, {
      method: 'PUT', path: '/upload/pub/acme/never.bin', headers: { 'content-length': 1000, expect: '100-continue' },
    });
    expect(res.status).toBe(507);
    expect(res.json.error).toBe('insufficient_storage');
  });

  it('puts multipart uploads through the same reservation', async () => {
    disk.free = 11 * MiB;
    node.ctx.guard.noteFreed();
    const res = await request(node.app).post('/upload/pub/acme/form.bin').attach('file', randomBytes(2 * MiB), 'form.bin');
    expect(res.status).toBe(507);
    expect(res.body.error).toBe('insufficient_storage');
    expect(await isStored(node, 'pub/acme/form.bin')).toBe(false);
  });

  it('cuts a chunked upload when its next 1 MiB step does not fit; nothing under the name', async () => {
    disk.free = 13 * MiB; // 3 MiB of room
    node.ctx.guard.noteFreed();
    let sent = 0;
    const res = await rawRequest(server.port, {
      method: 'PUT', path: '/upload/pub/acme/stream.bin', headers: { 'transfer-encoding': 'chunked' },
      body: Array.from({ length: 96 }, () => randomBytes(64 << 10)),
      between: async () => { sent += 64 << 10; },
    });
    expect(res.status).toBe(507);
    expect(res.json).toMatchObject({ error: 'insufficient_storage', freeBytes: expect.any(Number), requiredBytes: expect.any(Number) });
    expect(String(res.json.message)).toMatch(/grew past the room left/);
    expect(sent).toBeGreaterThan(2 * MiB);
    expect(await isStored(node, 'pub/acme/stream.bin')).toBe(false);
    // A chunked upload that fits its steps is stored.
    const ok = await rawRequest(server.port, {
      method: 'PUT', path: '/upload/pub/acme/small-stream.bin', headers: { 'transfer-encoding': 'chunked' },
      body: Array.from({ length: 20 }, () => randomBytes(64 << 10)),
    });
    expect(ok.status).toBe(201);
  });

  it('when critical: /readyz 503, /usage says so; GET, HEAD, DELETE and /healthz keep working', async () => {
    await request(node.app).put('/upload/pub/acme/keep.txt').send('kept').expect(201);
    await request(node.app).put('/upload/pub/acme/drop.txt').send('dropped').expect(201);
    disk.free = 5 * MiB;
    await node.ctx.guard.refresh(true);
    expect(node.ctx.guard.currentState).toBe('critical');
    const ready = await request(node.app).get('/readyz').expect(503);
    // Rendered from the error table like every other error (no-store, so no cache keeps a node out).
    expect(ready.body).toEqual({ error: 'not_ready', message: 'Not ready: disk check failed.', checks: { index: true, storage: true, disk: false, accepting: true } });
    expect(ready.headers['cache-control']).toBe('no-store');
    const usage = await request(node.app).get('/usage').expect(200);
    expect(usage.body).toMatchObject({ status: 'critical', writable: false, disk: { freeBytes: 5 * MiB, reserveBytes: 10 * MiB } });
    await request(node.app).get('/healthz').expect(200);
    expect((await request(node.app).get('/pub/acme/keep.txt').expect(200)).text).toBe('kept');
    await request(node.app).head('/pub/acme/keep.txt').expect(200);
    await request(node.app).delete('/pub/acme/drop.txt').expect(204);
    expect(await isStored(node, 'pub/acme/drop.txt')).toBe(false);
    const put = await request(node.app).put('/upload/pub/acme/refused.txt').send('no room');
    expect(put.status).toBe(507);
    disk.free = 30 * MiB;
    await node.ctx.guard.refresh(true);
    await request(node.app).get('/readyz').expect(200);
  });

  it('a delete makes room at once: the next upload reads the disk again instead of the cached reading', async () => {
    await request(node.app).put('/upload/pub/acme/old.bin').send(randomBytes(1000)).expect(201);
    disk.free = 10 * MiB;
    await node.ctx.guard.refresh(true);
    await request(node.app).put('/upload/pub/acme/new.bin').send(randomBytes(1000)).expect(507);
    disk.free = 11 * MiB; // what the disk will say once old.bin is gone
    await request(node.app).delete('/pub/acme/old.bin').expect(204);
    await request(node.app).put('/upload/pub/acme/new.bin').send(randomBytes(1000)).expect(201);
  });

  // The stale entry is a file planted in tmp/; the memory engine's contract test covers its own spool.
  it.runIf(TEST_ENGINE === 'fs')('the tmp sweep removes stale entries but never the file of a live upload', async () => {
    const tmpDir = path.join(node.dataDir, 'tmp');
    const stale = path.join(tmpDir, 'stale-from-a-crash');
    writeFileSync(stale, randomBytes(1000));
    const old = new Date(Date.now() - 2 * 3_600_000);
    utimesSync(stale, old, old);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => { release = resolve; });
    const body = randomBytes(256 << 10);
    let chunk = 0;
    const upload = rawRequest(server.port, {
      method: 'PUT', path: '/upload/pub/acme/live.bin', headers: { 'content-length': body.length },
      body: [body.subarray(0, 128 << 10), body.subarray(128 << 10)],
      between: async () => { if (chunk++ === 1) await gate; },
    });
    for (let i = 0; i < 200 && (await tmpEntries(node.dataDir)).length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(await tmpEntries(node.dataDir)).toHaveLength(2);
    // Older than 1 h: only the stale entry.
    expect(await node.runtime.sweeper.sweep()).toEqual({ files: 1, bytes: 1000 });
    // Even "everything", while running, spares the live upload.
    expect(await node.runtime.sweeper.sweep(0)).toEqual({ files: 0, bytes: 0 });
    release();
    expect((await upload).status).toBe(201);
    expect((await storedBytes(node, 'pub/acme/live.bin')).equals(body)).toBe(true);
  });

  it('an index that cannot grow (SQLITE_FULL) neither fails uploads nor blocks deletes; reconcile catches up', async () => {
    // openNode's index is the SQLite engine.
    const index = node.ctx.index as SqliteIndex;
    index.capSize(true);
    try {
      const names = Array.from({ length: 40 }, (_, i) => `pub/full-index/${'x'.repeat(200)}-${i}.bin`);
      for (const name of names) await request(node.app).put(`/upload/${name}`).send(randomBytes(100)).expect(201);
      const unindexed = [];
      for (const name of names) if (await index.files.get(name) === undefined) unindexed.push(name);
      expect(unindexed.length).toBeGreaterThan(0);
      await request(node.app).delete(`/${names[0]}`).expect(204);
      expect(await isStored(node, names[0])).toBe(false);
      await request(node.app).get(`/${names[1]}`).expect(200);
      index.capSize(false);
      const drift = await reconcile(node.ctx.storage, index.files, node.ctx.classifier, { now: Date.now });
      expect(drift.addedCount).toBeGreaterThan(0);
      for (const name of names.slice(1)) expect((await index.files.get(name))?.size).toBe(100);
      expect(await index.files.get(names[0])).toBeUndefined();
    } finally {
      index.capSize(false);
    }
  });

  it('shutdown aborts an upload in flight and releases its reservation', async () => {
    const res = rawRequest(server.port, {
      method: 'PUT', path: '/upload/pub/acme/slow.bin', headers: { 'content-length': 4 * MiB },
      body: Array.from({ length: 64 }, () => randomBytes(64 << 10)),
      between: () => new Promise((resolve) => setTimeout(resolve, 20)),
    });
    for (let i = 0; i < 100 && node.ctx.guard.snapshot().uploads === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(node.ctx.guard.snapshot().uploads).toBe(1);
    await node.ctx.uploader.drain(0);
    const answer = await res;
    expect(answer.status).toBe(503);
    expect(answer.json.error).toBe('shutting_down');
    expect(await isStored(node, 'pub/acme/slow.bin')).toBe(false);
  });
});
