import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { CreateMultipartUploadCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MetadataIndex } from '../../src/index/index.js';
import { openPostgresIndex } from '../../src/index/postgres/postgres-index.js';
import { silentLogger } from '../../src/logger.js';
import { parseName } from '../../src/names.js';
import { S3Storage } from '../../src/storage/s3-storage.js';
import { postgresRequirement, startPostgres, type PostgresCluster } from '../helpers/postgres.js';
import { startSwift, swiftRequirement, type SwiftCluster } from '../helpers/swift.js';

const LEASE_MS = 15_000;

/**
 * Name claims that end with their node (docs/design.md §15), on a real
 * PostgreSQL index and a real Swift bucket: the s3 engine's sweep cleans the
 * claims of a node whose lease has ended at once, never those of a live
 * node however old, and keeps the age rule for claims without a node.
 */
describe.runIf(postgresRequirement() && swiftRequirement())('s3 claims with node leases (PostgreSQL + Swift)', () => {
  let pg: PostgresCluster;
  let swift: SwiftCluster;
  let bucket: string;
  let index: MetadataIndex;

  beforeAll(async () => {
    // One after the other: each picks free ports, which the other could take meanwhile.
    swift = await startSwift();
    pg = await startPostgres();
    bucket = await swift.newBucket('claims');
    index = await openPostgresIndex(await pg.newDatabase('claims'));
  }, 180_000);
  afterAll(async () => {
    await index?.close();
    await swift?.dropBucket(bucket).catch(() => undefined);
    await Promise.all([swift?.stop(), pg?.stop()]);
  }, 60_000);

  function engine(nodeId: string | null) {
    const prefix = `t-${randomBytes(4).toString('hex')}/`;
    const storage = new S3Storage({
      endpoint: swift.endpoint, region: swift.region, bucket, prefix, accessKeyId: swift.accessKeyId,
      secretAccessKey: swift.secretAccessKey, forcePathStyle: true, claims: index.claims, logger: silentLogger(), nodeId,
    });
    return { storage, prefix };
  }

  /** What an upload in flight leaves in the bucket: a partial object, or a multipart upload (its id on the claim). */
  async function leftover(prefix: string, name: string, nodeId: string | null, startedMs: number, kind: 'object' | 'multipart'): Promise<void> {
    expect(await index.claims.claim(name, startedMs, nodeId)).toBe(true);
    if (kind === 'object') {
      await swift.s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}${name}`, Body: 'partial' }));
    } else {
      const mpu = await swift.s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: `${prefix}${name}` }));
      await index.claims.setUploadId(name, mpu.UploadId!);
    }
  }

  const uploadsUnder = async (prefix: string) => (await swift.multipartUploads(bucket)).filter((u) => u.key.startsWith(prefix)).map((u) => u.key).sort();
  const claimed = async (prefix: string) => (await index.claims.all()).map((c) => c.name).filter((n) => n.startsWith(`pub/${prefix.slice(0, -1)}/`)).sort();

  it('a dead node\'s claims go at the next sweep whatever their age (object, multipart upload, row); a live node\'s stay however old, even at start', async () => {
    const { storage, prefix } = engine('me');
    const tag = prefix.slice(0, -1);
    const now = Date.now();
    await index.holds!.renewLease('me', now, LEASE_MS);
    await index.holds!.renewLease(`live-${tag}`, now, LEASE_MS);
    // A node that stopped renewing a minute ago: its lease ended 45 s ago.
    await index.holds!.renewLease(`dead-${tag}`, now - 60_000, LEASE_MS);
    try {
      // Young claims of dead nodes (one with its nodes row, one whose row is gone already).
      await leftover(prefix, `pub/${tag}/dead-a.bin`, `dead-${tag}`, now - 1000, 'object');
      await leftover(prefix, `pub/${tag}/dead-b.bin`, `gone-${tag}`, now - 1000, 'multipart');
      // A live node's claims from long ago (a long upload): never touched while its lease runs.
      await leftover(prefix, `pub/${tag}/live-a.bin`, `live-${tag}`, now - 86_400_000, 'object');
      await leftover(prefix, `pub/${tag}/live-b.bin`, `live-${tag}`, now - 86_400_000, 'multipart');
      // A claim without a node: the age rule.
      await leftover(prefix, `pub/${tag}/legacy.bin`, null, now - 1000, 'object');

      const got = await index.claims.get(`pub/${tag}/live-a.bin`);
      expect(got).toMatchObject({ nodeId: `live-${tag}`, leaseUntilMs: now + LEASE_MS });
      expect((await index.claims.get(`pub/${tag}/dead-b.bin`))?.leaseUntilMs).toBeNull();

      expect((await storage.sweepTmp(3_600_000, now)).files).toBe(2);
      expect(await claimed(prefix)).toEqual([`pub/${tag}/legacy.bin`, `pub/${tag}/live-a.bin`, `pub/${tag}/live-b.bin`]);
      expect((await swift.keys(bucket, prefix)).sort()).toEqual([`${prefix}pub/${tag}/legacy.bin`, `${prefix}pub/${tag}/live-a.bin`]);
      expect(await uploadsUnder(prefix)).toEqual([`${prefix}pub/${tag}/live-b.bin`]);

      // The sweep of a node that starts (everything older than -Infinity): the claim without a node goes, the live node's stay, multipart upload included.
      expect((await storage.sweepTmp(-Infinity, now)).files).toBe(1);
      expect(await claimed(prefix)).toEqual([`pub/${tag}/live-a.bin`, `pub/${tag}/live-b.bin`]);
      expect(await swift.keys(bucket, prefix)).toEqual([`${prefix}pub/${tag}/live-a.bin`]);
      expect(await uploadsUnder(prefix)).toEqual([`${prefix}pub/${tag}/live-b.bin`]);

      // The live node dies: one lease later its claims go with the next sweep.
      const later = now + LEASE_MS;
      expect((await storage.sweepTmp(3_600_000, later)).files).toBe(2);
      expect(await claimed(prefix)).toEqual([]);
      expect(await swift.keys(bucket, prefix)).toEqual([]);
      expect(await uploadsUnder(prefix)).toEqual([]);
    } finally {
      await storage.close();
    }
  });

  it('an upload\'s claim names its node; the node\'s own sweep leaves its live upload alone, another node\'s too', async () => {
    const mine = engine(`writer-${randomBytes(3).toString('hex')}`);
    const other = engine(`sweeper-${randomBytes(3).toString('hex')}`);
    const now = Date.now();
    await index.holds!.renewLease(mine.storage.nodeId!, now, LEASE_MS);
    await index.holds!.renewLease(other.storage.nodeId!, now, LEASE_MS);
    // The same prefix for both: two nodes on one bucket.
    const sweeper = new S3Storage({
      endpoint: swift.endpoint, region: swift.region, bucket, prefix: mine.prefix, accessKeyId: swift.accessKeyId,
      secretAccessKey: swift.secretAccessKey, forcePathStyle: true, claims: index.claims, logger: silentLogger(), nodeId: other.storage.nodeId,
    });
    const name = `pub/${mine.prefix.slice(0, -1)}/slow.bin`;
    const body = new PassThrough();
    const writing = mine.storage.write(parseName(name), body, new AbortController().signal);
    try {
      // More than two parts of 8 MiB: a multipart upload starts.
      body.write(randomBytes(17 * 1024 * 1024));
      let claim = await index.claims.get(name);
      for (let i = 0; i < 100 && !claim?.uploadId; i++) {
        await new Promise((r) => setTimeout(r, 100));
        claim = await index.claims.get(name);
      }
      expect(claim).toMatchObject({ nodeId: mine.storage.nodeId, leaseUntilMs: now + LEASE_MS });
      expect(claim?.uploadId).toBeTruthy();
      expect((await sweeper.sweepTmp(-Infinity, now + 1000)).files).toBe(0);
      expect((await mine.storage.sweepTmp(-Infinity, now + 1000)).files).toBe(0);
      body.end(randomBytes(1000));
      expect(await writing).toEqual({ size: 17 * 1024 * 1024 + 1000 });
      expect(await index.claims.get(name)).toBeUndefined();
      expect(await swift.keys(bucket, mine.prefix)).toEqual([`${mine.prefix}${name}`]);
    } finally {
      body.destroy();
      await writing.catch(() => undefined);
      await Promise.all([mine.storage.close(), other.storage.close(), sweeper.close()]);
    }
  });
});
