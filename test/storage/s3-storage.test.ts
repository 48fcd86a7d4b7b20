import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { CreateMultipartUploadCommand, DeleteObjectsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteIndex } from '../../src/index/sqlite/sqlite-index.js';
import { silentLogger } from '../../src/logger.js';
import { parseName } from '../../src/names.js';
import { S3Storage } from '../../src/storage/s3-storage.js';
import { translateS3Error } from '../../src/storage/s3-client.js';
import { readAll, sha256, storageContract } from './contract.js';
import { startSwift, swiftRequirement, type SwiftCluster } from '../helpers/swift.js';

const runs = swiftRequirement();
let swift: SwiftCluster;
let bucket: string;

/** One engine on a fresh prefix of the shared bucket, with its own index. */
function makeEngine() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-s3-index-'));
  const index = openSqliteIndex(path.join(dir, 'index.sqlite'));
  const prefix = `t-${randomBytes(4).toString('hex')}/`;
  const storage = new S3Storage({
    endpoint: swift.endpoint, region: swift.region, bucket, prefix, accessKeyId: swift.accessKeyId,
    secretAccessKey: swift.secretAccessKey, forcePathStyle: true, claims: index.claims, logger: silentLogger(),
  });
  return {
    storage, index, prefix,
    async cleanup() {
      await index.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** In-progress multipart uploads of the shared bucket under one engine's prefix. */
async function uploadsUnder(prefix: string) {
  return (await swift.multipartUploads(bucket)).filter((u) => u.key.startsWith(prefix));
}

/** Runs `test` on a fresh engine, then closes it and removes its index. */
async function withEngine(test: (engine: ReturnType<typeof makeEngine>) => Promise<void>): Promise<void> {
  const engine = makeEngine();
  try {
    await test(engine);
  } finally {
    await engine.storage.close();
    await engine.cleanup();
  }
}

describe.runIf(runs)('s3 engine on OpenStack Swift', () => {
  beforeAll(async () => {
    swift = await startSwift();
    bucket = await swift.newBucket('contract');
  }, 180_000);
  afterAll(async () => {
    if (!swift) return;
    await swift.dropBucket(bucket).catch(() => undefined);
    await swift.stop();
  }, 60_000);

  storageContract('s3 (Swift s3api)', async () => makeEngine());

  describe('engine specifics', () => {
    it('writes a body larger than one part as a multipart upload, and leaves no upload behind', () => withEngine(async ({ storage, prefix }) => {
      const n = parseName('pub/acme/big.bin');
      const body = randomBytes(12 * 1024 * 1024 + 123);
      const source = new PassThrough();
      const pending = storage.write(n, source, new AbortController().signal);
      for (let off = 0; off < body.length; off += 1 << 20) source.write(body.subarray(off, off + (1 << 20)));
      source.end();
      expect((await pending).size).toBe(body.length);
      expect(sha256(await readAll(await storage.open(n)))).toBe(sha256(body));
      expect((await readAll(await storage.open(n, { start: 6 * 1024 * 1024, end: 6 * 1024 * 1024 + 9 }))).equals(body.subarray(6 * 1024 * 1024, 6 * 1024 * 1024 + 10))).toBe(true);
      expect(await uploadsUnder(prefix)).toEqual([]);
      expect(await storage.claims.all()).toEqual([]);
    }));

    it('aborts the multipart upload when the write is aborted after some parts were sent', () => withEngine(async ({ storage, prefix }) => {
      const n = parseName('pub/acme/aborted-big.bin');
      const source = new PassThrough();
      const ac = new AbortController();
      const pending = storage.write(n, source, ac.signal);
      // Two whole parts: enough for the engine to start a multipart upload.
      source.write(randomBytes(17 * 1024 * 1024));
      // Wait until the store handed out an upload id (recorded on the claim).
      while (!(await storage.claims.get(n.name))?.uploadId) await new Promise((r) => setTimeout(r, 20));
      ac.abort();
      await expect(pending).rejects.toHaveProperty('name', 'AbortError');
      expect(await uploadsUnder(prefix)).toEqual([]);
      expect(await swift.keys(bucket, prefix)).toEqual([]);
      expect(await storage.claims.all()).toEqual([]);
    }));

    it('refuses a name whose object is already in the bucket (no index row) with exists', () => withEngine(async ({ storage, prefix }) => {
      await swift.s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}pub/acme/outside.txt`, Body: 'from elsewhere' }));
      const err = await storage.write(parseName('pub/acme/outside.txt'), Readable.from([Buffer.from('mine')]), new AbortController().signal).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'exists' });
      expect((await readAll(await storage.open(parseName('pub/acme/outside.txt')))).toString()).toBe('from elsewhere');
    }));

    it('stat() changes nothing write() does: an object put after a stat that found the name absent still refuses the write', () => withEngine(async ({ storage, prefix }) => {
      const n = parseName('pub/acme/raced.txt');
      expect(await storage.stat(n)).toBeNull();
      await swift.s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}pub/acme/raced.txt`, Body: 'from elsewhere' }));
      await expect(storage.write(n, Readable.from([Buffer.from('mine')]), new AbortController().signal)).rejects.toMatchObject({ code: 'exists' });
      expect((await readAll(await storage.open(n))).toString()).toBe('from elsewhere');
    }));

    it('reports a claimed name as present and counts it in tmpStats; a committed files row refuses a claim', () => withEngine(async ({ storage, index }) => {
      const n = parseName('pub/acme/claimed.bin');
      const source = new PassThrough();
      const pending = storage.write(n, source, new AbortController().signal);
      source.write(randomBytes(1000));
      while (!(await storage.claims.get(n.name))) await new Promise((r) => setTimeout(r, 5));
      expect(await storage.stat(n)).not.toBeNull();
      expect((await storage.tmpStats(Date.now())).files).toBe(1);
      source.end();
      await pending;
      expect((await storage.tmpStats(Date.now())).files).toBe(0);

      await index.files.put({ name: 'pub/acme/row.txt', tenant: 'acme', class: 'default', size: 1, sha256: 'x', createdMs: 1, accessedMs: 1, expiresMs: null });
      await expect(storage.write(parseName('pub/acme/row.txt'), Readable.from([Buffer.from('y')]), new AbortController().signal))
        .rejects.toMatchObject({ code: 'exists' });
    }));

    it('sweeps claims a crash left: object deleted, multipart upload aborted, row dropped', () => withEngine(async ({ storage, prefix }) => {
      // What a process killed mid-upload leaves: claims, an object, a multipart upload.
      await storage.claims.claim('pub/acme/crashed-a.bin', 1000);
      await storage.claims.claim('pub/acme/crashed-b.bin', 1000);
      await swift.s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}pub/acme/crashed-a.bin`, Body: 'partial' }));
      const mpu = await swift.s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: `${prefix}pub/acme/crashed-b.bin` }));
      await storage.claims.setUploadId('pub/acme/crashed-b.bin', mpu.UploadId!);
      expect((await storage.tmpStats(Date.now())).files).toBe(2);
      // Younger than the deadline: kept.
      expect((await storage.sweepTmp(60_000, 2000)).files).toBe(0);
      expect((await storage.sweepTmp(60_000, Date.now())).files).toBe(2);
      expect(await storage.claims.all()).toEqual([]);
      expect(await swift.keys(bucket, prefix)).toEqual([]);
      expect(await uploadsUnder(prefix)).toEqual([]);
    }));

    it('lists only its prefix and skips keys that are not valid names', () => withEngine(async ({ storage, prefix }) => {
      await swift.s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}pub/acme/ok.txt`, Body: 'ok' }));
      await swift.s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}pub/acme/../bad.txt`, Body: 'bad' }));
      await swift.s3.send(new PutObjectCommand({ Bucket: bucket, Key: `other-${prefix}pub/acme/x.txt`, Body: 'x' }));
      const listed = [];
      for await (const info of storage.list()) listed.push(info);
      expect(listed.map((o) => o.name)).toEqual(['pub/acme/ok.txt']);
      expect(listed[0].size).toBe(2);
      await swift.s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: [{ Key: `other-${prefix}pub/acme/x.txt` }] } }));
    }));

    it('fails check() with a clear message for a missing bucket and for a wrong secret', async () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-s3-index-'));
      const index = openSqliteIndex(path.join(dir, 'index.sqlite'));
      const base = { endpoint: swift.endpoint, region: swift.region, prefix: '', accessKeyId: swift.accessKeyId, forcePathStyle: true, claims: index.claims, logger: silentLogger() };
      const missing = new S3Storage({ ...base, bucket: 'nanocdn-no-such-bucket', secretAccessKey: swift.secretAccessKey });
      const wrong = new S3Storage({ ...base, bucket, secretAccessKey: 'not-the-secret' });
      try {
        await expect(missing.check()).rejects.toThrow(/does not exist/);
        await expect(wrong.check()).rejects.toThrow(/credentials/);
      } finally {
        await missing.close();
        await wrong.close();
        await index.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});

describe('s3 error translation', () => {
  const sdkError = (name: string, status: number) => Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });
  it('maps store answers to the HttpError table', () => {
    expect(translateS3Error(sdkError('NoSuchKey', 404), 'read', 'pub/a/x')).toMatchObject({ code: 'not_found' });
    expect(translateS3Error(sdkError('ServiceUnavailable', 503), 'write', 'pub/a/x')).toMatchObject({ code: 'insufficient_storage', status: 507 });
    expect(translateS3Error(sdkError('SlowDown', 503), 'write')).toMatchObject({ code: 'insufficient_storage' });
    expect(translateS3Error(sdkError('InsufficientStorage', 507), 'write')).toMatchObject({ code: 'insufficient_storage' });
    expect(translateS3Error(sdkError('ServiceUnavailable', 503), 'read')).toMatchObject({ code: 'store_unavailable', status: 503 });
    expect(translateS3Error(sdkError('InvalidRange', 416), 'read')).toMatchObject({ code: 'range_not_satisfiable' });
    expect(translateS3Error(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }), 'read')).toMatchObject({ code: 'store_unavailable' });
    const abort = Object.assign(new Error('aborted'), { name: 'AbortError' });
    expect(translateS3Error(abort, 'write')).toBe(abort);
  });
});
