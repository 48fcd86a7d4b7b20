import { createHash, randomBytes } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testNode, type TestNode } from '../helpers/test-node.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('GET and HEAD /<name>', () => {
  let node: TestNode;
  const body = randomBytes(5000);
  const etag = `"${sha(body)}"`;
  beforeAll(async () => {
    node = await testNode();
    await request(node.app).put('/upload/pub/acme/files/a.bin').send(body).expect(201);
    await request(node.app).put('/upload/priv/acme/files/secret.pdf').send(Buffer.from('%PDF-1.7 private')).expect(201);
    for (const ext of ['pdf', 'txt', 'json', 'png', 'html', 'csv', 'unknownext']) {
      // '{}' is valid in every one of these formats (supertest parses JSON bodies).

      await request(node.app).put(`/upload/pub/acme/types/f.${ext}`).send(Buffer.from('{}')).expect(201);
    }
  });
  afterAll(async () => {
    await node.close();
  });
  const get = (path: string) => request(node.app).get(path).buffer(true).parse((res, cb) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => cb(null, Buffer.concat(chunks)));
  });

  it('serves the bytes with a strong sha256 ETag, Last-Modified, Content-Length and the pub Cache-Control', async () => {
    const res = await get('/pub/acme/files/a.bin').expect(200);
    expect(sha(res.body as Buffer)).toBe(sha(body));
    expect(res.headers.etag).toBe(etag);
    expect(res.headers['content-length']).toBe('5000');
    expect(new Date(res.headers['last-modified']).getTime()).toBeGreaterThan(0);
    expect(res.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(res.headers['accept-ranges']).toBe('bytes');
  });

  it('gives priv files Cache-Control: private', async () => {
    const res = await request(node.app).get('/priv/acme/files/secret.pdf').expect(200);
    expect(res.headers['cache-control']).toBe('private');
    expect(res.headers['content-type']).toBe('application/pdf');
  });

  it.each([
    ['pdf', /^application\/pdf$/],
    ['txt', /^text\/plain/],
    ['json', /^application\/json/],
    ['png', /^image\/png$/],
    ['html', /^text\/html/],
    ['csv', /^text\/csv/],
    ['unknownext', /^application\/octet-stream$/],
  ])('sets the Content-Type of .%s by extension', async (ext, type) => {
    const res = await request(node.app).get(`/pub/acme/types/f.${ext}`).expect(200);
    expect(res.headers['content-type']).toMatch(type);
  });

  it('answers HEAD with the headers of GET and no body', async () => {
    const res = await request(node.app).head('/pub/acme/files/a.bin').expect(200);
    expect(res.headers.etag).toBe(etag);
    expect(res.headers['content-length']).toBe('5000');
    expect(res.text ?? '').toBe('');
  });

  it('serves a Range with 206 and Content-Range', async () => {
    const res = await get('/pub/acme/files/a.bin').set('Range', 'bytes=100-199').expect(206);
    expect(res.headers['content-range']).toBe('bytes 100-199/5000');
    expect((res.body as Buffer).equals(body.subarray(100, 200))).toBe(true);
    const suffix = await get('/pub/acme/files/a.bin').set('Range', 'bytes=-10').expect(206);
    expect((suffix.body as Buffer).equals(body.subarray(4990))).toBe(true);
    const open = await get('/pub/acme/files/a.bin').set('Range', 'bytes=4990-').expect(206);
    expect(open.headers['content-range']).toBe('bytes 4990-4999/5000');
  });

  it('answers an unsatisfiable Range with 416 range_not_satisfiable JSON and Content-Range: bytes */size', async () => {
    const res = await request(node.app).get('/pub/acme/files/a.bin').set('Range', 'bytes=6000-7000').expect(416);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body.error).toBe('range_not_satisfiable');
    expect(res.headers['content-range']).toBe('bytes */5000');
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('answers If-None-Match with the ETag with 304, and another ETag with 200', async () => {
    const res = await request(node.app).get('/pub/acme/files/a.bin').set('If-None-Match', etag).expect(304);
    expect(res.headers.etag).toBe(etag);
    await request(node.app).get('/pub/acme/files/a.bin').set('If-None-Match', `"${'0'.repeat(64)}"`).expect(200);
  });

  it('answers If-Modified-Since at or after Last-Modified with 304, and before it with 200', async () => {
    const first = await request(node.app).head('/pub/acme/files/a.bin').expect(200);
    const lastModified = first.headers['last-modified'];
    await request(node.app).get('/pub/acme/files/a.bin').set('If-Modified-Since', lastModified).expect(304);
    await request(node.app).get('/pub/acme/files/a.bin').set('If-Modified-Since', new Date(0).toUTCString()).expect(200);
  });

  it('answers an If-Match that does not hold with 412 precondition_failed, and one that holds with 200', async () => {
    const res = await request(node.app).get('/pub/acme/files/a.bin').set('If-Match', `"${'0'.repeat(64)}"`).expect(412);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body.error).toBe('precondition_failed');
    await request(node.app).get('/pub/acme/files/a.bin').set('If-Match', etag).expect(200);
  });

  it('serves a name however its allowed characters are percent-encoded', async () => {
    const plain = await request(node.app).get('/pub/acme/files/a.bin').expect(200);
    const encoded = await request(node.app).get('/pub/acme/files/a%2Ebin').expect(200);
    expect(encoded.headers.etag).toBe(plain.headers.etag);
    await request(node.app).get('/pub/%61cme/files/%61.bin').expect(200);
    await request(node.app).head('/pub/acme/files/a%2ebin').expect(200);
  });

  it('answers an absent name with 404 not_found JSON', async () => {
    const res = await request(node.app).get('/pub/acme/files/missing.bin').expect(404);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body).toMatchObject({ error: 'not_found', name: 'pub/acme/files/missing.bin' });
    // Not the year-long immutable Cache-Control of a pub file: a CDN would keep the 404.
    expect(res.headers['cache-control']).toBe('no-store');
    await request(node.app).head('/pub/acme/files/missing.bin').expect(404);
  });

  it('never lists a directory: a name that is a directory is 404', async () => {
    const res = await request(node.app).get('/pub/acme/files').expect(404);
    expect(res.body.error).toBe('not_found');
  });

  it('answers unknown top-level paths with 404 JSON, not a listing', async () => {
    const res = await request(node.app).get('/').expect(404);
    expect(res.body.error).toBe('not_found');
  });
});
