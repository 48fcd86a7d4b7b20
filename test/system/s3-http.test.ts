import { createHash, createHmac, randomBytes } from 'node:crypto';
import { DeleteObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testNode, type TestNode } from '../helpers/test-node.js';
import { startSwift, swiftRequirement, type SwiftCluster } from '../helpers/swift.js';
import type { S3Storage } from '../../src/storage/s3-storage.js';

const runs = swiftRequirement();
const TOKEN = 'test-token-0123456789abcdef';
const SECRET = 'signing-secret-0123456789';
const auth = { Authorization: `Bearer ${TOKEN}` };
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Collects a binary supertest body. */
function binary(res: request.Response, cb: (err: Error | null, body: Buffer) => void): void {
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => chunks.push(c));
  res.on('end', () => cb(null, Buffer.concat(chunks)));
}

describe.runIf(runs)('HTTP on an s3 node (OpenStack Swift)', () => {
  let swift: SwiftCluster;
  let bucket: string;
  let node: TestNode;

  beforeAll(async () => {
    swift = await startSwift();
    bucket = await swift.newBucket('http');
    node = await testNode({
      config: {
        storage: swift.s3Config(bucket),
        auth: { tokens: [TOKEN], trustedNetworks: [], signingSecret: SECRET },
        classes: {
          cache: { match: ['*/*/cachedtickets/**'], evictable: true, maxBytesPerTenant: 3_500_000 },
          default: { evictable: false },
        },
      },
    });
  }, 180_000);
  afterAll(async () => {
    await node?.close();
    if (!swift) return;
    await swift.dropBucket(bucket).catch(() => undefined);
    await swift.stop();
  }, 60_000);

  const storage = () => node.ctx.storage as S3Storage;

  it('PUT stores the object in the bucket: 201 + Location + sha256; a second PUT is 409 with the same Location', async () => {
    const body = randomBytes(100_000);
    const res = await request(node.app).put('/upload/pub/acme/a.bin').set(auth).send(body);
    expect(res.status).toBe(201);
    expect(res.headers.location).toBe('/pub/acme/a.bin');
    expect(res.body).toEqual({ name: 'pub/acme/a.bin', url: '/pub/acme/a.bin', size: body.length, sha256: sha256(body) });
    expect(await swift.keys(bucket)).toContain('pub/acme/a.bin');

    const again = await request(node.app).put('/upload/pub/acme/a.bin').set(auth).send(randomBytes(10));
    expect(again.status).toBe(409);
    expect(again.headers.location).toBe('/pub/acme/a.bin');
    expect(again.body.error).toBe('exists');
    expect(await storage().claims.all()).toEqual([]);
  });

  it('GET, HEAD, Range, 304 and 412 are answered like the fs engine', async () => {
    const body = Buffer.from('0123456789abcdefghij');
    await request(node.app).put('/upload/pub/acme/range.txt').set(auth).send(body).expect(201);

    const get = await request(node.app).get('/pub/acme/range.txt').buffer(true).parse(binary);
    expect(get.status).toBe(200);
    expect(Buffer.compare(get.body as Buffer, body)).toBe(0);
    expect(get.headers.etag).toBe(`"${sha256(body)}"`);
    expect(get.headers['content-type']).toMatch(/^text\/plain/);
    expect(get.headers['cache-control']).toContain('immutable');
    const lastModified = get.headers['last-modified'];
    expect(Date.parse(lastModified)).toBeGreaterThan(0);

    const head = await request(node.app).head('/pub/acme/range.txt');
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String(body.length));
    expect(head.headers.etag).toBe(`"${sha256(body)}"`);

    const part = await request(node.app).get('/pub/acme/range.txt').set('Range', 'bytes=2-5');
    expect(part.status).toBe(206);
    expect(part.text).toBe('2345');
    expect(part.headers['content-range']).toBe(`bytes 2-5/${body.length}`);
    const suffix = await request(node.app).get('/pub/acme/range.txt').set('Range', 'bytes=-3');
    expect(suffix.status).toBe(206);
    expect(suffix.text).toBe('hij');

    const bad = await request(node.app).get('/pub/acme/range.txt').set('Range', 'bytes=100-200');
    expect(bad.status).toBe(416);
    expect(bad.body.error).toBe('range_not_satisfiable');
    expect(bad.headers['content-range']).toBe(`bytes */${body.length}`);

    // If-Range with another validator: the whole file.
    const stale = await request(node.app).get('/pub/acme/range.txt').set('Range', 'bytes=2-5').set('If-Range', '"other"');
    expect(stale.status).toBe(200);
    expect(stale.text).toBe(body.toString());

    await request(node.app).get('/pub/acme/range.txt').set('If-None-Match', `"${sha256(body)}"`).expect(304);
    await request(node.app).get('/pub/acme/range.txt').set('If-Modified-Since', lastModified).expect(304);
    await request(node.app).get('/pub/acme/range.txt').set('If-None-Match', '"something-else"').expect(200);
    const failed = await request(node.app).get('/pub/acme/range.txt').set('If-Match', '"something-else"');
    expect(failed.status).toBe(412);
    expect(failed.body.error).toBe('precondition_failed');
    await request(node.app).get('/pub/acme/missing.txt').expect(404);
  });

  it('answers HEAD and 304 from the index without asking the store', async () => {
    const body = randomBytes(1000);
    await request(node.app).put('/upload/pub/acme/indexed.bin').set(auth).send(body).expect(201);
    // Remove the object behind the node's back: index-answered requests do not notice.
    await storage().client.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'pub/acme/indexed.bin' }));
    await request(node.app).head('/pub/acme/indexed.bin').expect(200);
    await request(node.app).get('/pub/acme/indexed.bin').set('If-None-Match', `"${sha256(body)}"`).expect(304);
    // A GET that needs bytes does, and says so cleanly.
    const gone = await request(node.app).get('/pub/acme/indexed.bin');
    expect(gone.status).toBe(404);
    expect(gone.body.error).toBe('not_found');
    await node.ctx.index.files.remove('pub/acme/indexed.bin');
  });

  it('DELETE removes the object from the bucket: 204, then 404', async () => {
    await request(node.app).put('/upload/pub/acme/del.txt').set(auth).send(Buffer.from('bye')).expect(201);
    await request(node.app).delete('/pub/acme/del.txt').set(auth).expect(204);
    expect(await swift.keys(bucket)).not.toContain('pub/acme/del.txt');
    await request(node.app).get('/pub/acme/del.txt').expect(404);
    const again = await request(node.app).delete('/pub/acme/del.txt').set(auth);
    expect(again.status).toBe(404);
    expect(again.body.error).toBe('not_found');
  });

  it('multipart POST stores the part "file"', async () => {
    const body = randomBytes(300_000);
    const res = await request(node.app).post('/upload/pub/acme/form.bin').set(auth).attach('file', body, 'form.bin');
    expect(res.status).toBe(201);
    expect(res.body.sha256).toBe(sha256(body));
    const get = await request(node.app).get('/pub/acme/form.bin').buffer(true).parse(binary);
    expect(sha256(get.body as Buffer)).toBe(sha256(body));
  });

  it('a 20 MB upload goes to the store as a multipart upload and reads back whole', async () => {
    const body = randomBytes(20 * 1000 * 1000);
    const res = await request(node.app).put('/upload/pub/acme/big.bin').set(auth).send(body);
    expect(res.status).toBe(201);
    expect(res.body.sha256).toBe(sha256(body));
    // A multipart object's S3 ETag is md5-of-md5s "-<parts>".
    const head = await swift.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'pub/acme/big.bin' }));
    expect(head.ETag).toMatch(/-3"$/);
    expect(head.ContentLength).toBe(body.length);
    expect(await swift.multipartUploads(bucket)).toEqual([]);
    const get = await request(node.app).get('/pub/acme/big.bin').buffer(true).parse(binary);
    expect(sha256(get.body as Buffer)).toBe(sha256(body));
  });

  it('two concurrent uploads of one name: one 201, one 409, the stored bytes are the winner\'s', async () => {
    const a = randomBytes(3_000_000);
    const b = randomBytes(3_000_000);
    const [ra, rb] = await Promise.all([
      request(node.app).put('/upload/pub/acme/race.bin').set(auth).send(a),
      request(node.app).put('/upload/pub/acme/race.bin').set(auth).send(b),
    ]);
    expect([ra.status, rb.status].sort()).toEqual([201, 409]);
    const winner = ra.status === 201 ? a : b;
    const loser = ra.status === 201 ? rb : ra;
    expect(loser.body.error).toBe('exists');
    expect(loser.headers.location).toBe('/pub/acme/race.bin');
    const get = await request(node.app).get('/pub/acme/race.bin').buffer(true).parse(binary);
    expect(sha256(get.body as Buffer)).toBe(sha256(winner));
    expect(await storage().claims.all()).toEqual([]);
  });

  it('priv: refused without credentials, served with a token or a signed URL, refused when expired', async () => {
    const body = Buffer.from('private bytes');
    await request(node.app).put('/upload/priv/acme/secret.txt').set(auth).send(body).expect(201);
    expect((await request(node.app).get('/priv/acme/secret.txt')).status).toBe(401);
    expect((await request(node.app).get('/priv/acme/secret.txt').set(auth)).text).toBe('private bytes');
    const sign = (expires: number) => createHmac('sha256', SECRET).update(`priv/acme/secret.txt\n${expires}`).digest('hex');
    const future = Math.floor(Date.now() / 1000) + 600;
    const signed = await request(node.app).get(`/priv/acme/secret.txt?expires=${future}&sig=${sign(future)}`);
    expect(signed.status).toBe(200);
    expect(signed.text).toBe('private bytes');
    expect(signed.headers['cache-control']).toBe('private');
    const past = Math.floor(Date.now() / 1000) - 10;
    const expired = await request(node.app).get(`/priv/acme/secret.txt?expires=${past}&sig=${sign(past)}`);
    expect(expired.status).toBe(403);
    expect(expired.body.error).toBe('signature_expired');
  });

  it('a tenant cache quota evicts the tenant\'s least recently used objects from the bucket', async () => {
    const names = ['t1', 't2', 't3'].map((n) => `pub/evict/cachedtickets/${n}.pdf`);
    for (const name of names) await request(node.app).put(`/upload/${name}`).set(auth).send(randomBytes(1_000_000)).expect(201);
    // 3 MB of 3.5 MB used: a fourth 1 MB needs the least recently used (t1) gone.
    await request(node.app).put('/upload/pub/evict/cachedtickets/t4.pdf').set(auth).send(randomBytes(1_000_000)).expect(201);
    const keys = await swift.keys(bucket, 'pub/evict/');
    expect(keys).not.toContain(names[0]);
    expect(keys).toEqual(expect.arrayContaining([names[1], names[2], 'pub/evict/cachedtickets/t4.pdf']));
    await request(node.app).get(`/${names[0]}`).expect(404);
  });

  it('/usage reports the capacity of the bucket as the disk', async () => {
    const res = await request(node.app).get('/usage').set(auth);
    expect(res.status).toBe(200);
    expect(res.body.disk.totalBytes).toBe(10 * 1024 ** 3);
    expect(res.body.disk.usedBytes).toBe((await node.ctx.index.totals.summary()).bytes);
  });
});
