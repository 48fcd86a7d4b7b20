import { createHash, randomBytes } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testNode } from '../helpers/test-node.js';
import { startSwift, swiftRequirement, type SwiftCluster } from '../helpers/swift.js';
import { canMountTmpfs, requirement } from '../helpers/system-tools.js';
import type { S3Storage } from '../../src/storage/s3-storage.js';

const runs = swiftRequirement() && requirement('root with tmpfs mounts (Swift object device on a 32 MiB tmpfs)', canMountTmpfs(), 'run as root');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * Capacity on the s3 engine: the node's own guard (capacityBytes) refuses
 * before the store is touched; a store that is full for real (Swift's
 * object device on a 32 MiB tmpfs, its own cluster) is a 507, never a 500.
 */
describe.runIf(runs)('s3 capacity (OpenStack Swift, 32 MiB object device)', () => {
  let swift: SwiftCluster;

  beforeAll(async () => {
    swift = await startSwift({ env: { SAIO_OBJECT_DEVICE_MB: '32' } });
  }, 180_000);
  afterAll(async () => {
    await swift?.stop();
  }, 60_000);

  it('with a small capacityBytes, uploads are refused with 507 before the store is touched', async () => {
    const bucket = await swift.newBucket('cap');
    const node = await testNode({ config: { storage: swift.s3Config(bucket, { capacityBytes: '2MiB' }) } });
    try {
      await request(node.app).put('/upload/pub/acme/fits.bin').send(randomBytes(1_500_000)).expect(201);
      const refused = await request(node.app).put('/upload/pub/acme/too-much.bin').send(randomBytes(1_000_000));
      expect(refused.status).toBe(507);
      expect(refused.body).toMatchObject({ error: 'insufficient_storage' });
      expect(refused.body.freeBytes).toBeLessThan(1_000_000);
      expect(refused.headers['retry-after']).toBe('60');
      // Refused at admission: no key, no multipart upload, no claim.
      expect(await swift.keys(bucket)).toEqual(['pub/acme/fits.bin']);
      expect(await swift.multipartUploads(bucket)).toEqual([]);
      expect(await (node.ctx.storage as S3Storage).claims.all()).toEqual([]);
      const usage = await request(node.app).get('/usage');
      expect(usage.body.disk.totalBytes).toBe(2 * 1024 * 1024);
      expect(usage.body.disk.usedBytes).toBe(1_500_000);
      // Deleting makes room again.
      await request(node.app).delete('/pub/acme/fits.bin').expect(204);
      await request(node.app).put('/upload/pub/acme/too-much.bin').send(randomBytes(1_000_000)).expect(201);
    } finally {
      await node.close();
      await swift.dropBucket(bucket).catch(() => undefined);
    }
  });

  it('a store full for real answers 507 JSON, never 500; nothing pending is left and the node stays up', async () => {
    const bucket = await swift.newBucket('full');
    const node = await testNode({ config: { storage: swift.s3Config(bucket) } });
    const stored: { name: string; sha: string }[] = [];
    try {
      let refusedAt = -1;
      for (let i = 0; i < 40 && refusedAt < 0; i++) {
        const body = randomBytes(1_600_000);
        const res = await request(node.app).put(`/upload/pub/acme/fill-${i}.bin`).send(body);
        expect([201, 507]).toContain(res.status);
        if (res.status === 201) stored.push({ name: `pub/acme/fill-${i}.bin`, sha: sha256(body) });
        else {
          refusedAt = i;
          expect(res.body.error).toBe('insufficient_storage');
          expect(typeof res.body.message).toBe('string');
        }
      }
      expect(refusedAt).toBeGreaterThan(0);

      // A large body (multipart to the store) is refused the same way, and aborts its upload.
      const big = await request(node.app).put('/upload/pub/acme/big.bin').send(randomBytes(20_000_000));
      expect(big.status).toBe(507);
      expect(big.body.error).toBe('insufficient_storage');

      expect(await (node.ctx.storage as S3Storage).claims.all()).toEqual([]);
      expect(await swift.multipartUploads(bucket)).toEqual([]);
      expect((await swift.keys(bucket)).sort()).toEqual(stored.map((s) => s.name).sort());
      await request(node.app).get('/healthz').expect(200);
      const first = await request(node.app).get(`/${stored[0].name}`).buffer(true)
        .parse((res, cb) => { const c: Buffer[] = []; res.on('data', (d: Buffer) => c.push(d)); res.on('end', () => cb(null, Buffer.concat(c))); });
      expect(first.status).toBe(200);
      expect(sha256(first.body as Buffer)).toBe(stored[0].sha);

      // Room again after deletes: uploads succeed.
      for (const { name } of stored.slice(0, 4)) await request(node.app).delete(`/${name}`).expect(204);
      await request(node.app).put('/upload/pub/acme/after.bin').send(randomBytes(1_600_000)).expect(201);
    } finally {
      await node.close();
      await swift.dropBucket(bucket).catch(() => undefined);
    }
  });
});
