// Every rule of the one read path (src/http/read/), on an engine with local
// files (fs: descriptor, pooled reads, read cache) and on a stream-only engine
// (the same data dir behind a Storage without LocalFiles: ranged streams,
// entity from the index row). Each rule has one owner; both branches must
// answer alike.
import { createHash, randomBytes } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type NodeApp } from '../../src/http/app.js';
import { signedQuery } from '../../src/signing.js';
import { hasLocalFiles, type Storage } from '../../src/storage/storage.js';
import { TEST_ENGINE, testNode, type TestNode } from '../helpers/test-node.js';
import { listen, rawRequest, type Listening } from './raw-http.js';

const MiB = 1024 * 1024;
const TOKEN = 'read-rules-token-0123456789';
const SECRET = 'read-rules-signing-secret';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A Storage without the LocalFiles capability: the read path must use `open(name, range)`. Counts the opens. */
function streamOnly(inner: Storage): Storage & { opens: number } {
  const double = {
    opens: 0,
    kind: inner.kind,
    write: inner.write.bind(inner),
    stat: inner.stat.bind(inner),
    open: (...args: Parameters<Storage['open']>) => {
      double.opens++;
      return inner.open(...args);
    },
    remove: inner.remove.bind(inner),
    list: inner.list.bind(inner),
    tmpStats: inner.tmpStats.bind(inner),
    sweepTmp: inner.sweepTmp.bind(inner),
    tmpHasOwners: inner.tmpHasOwners,
    check: inner.check.bind(inner),
    close: inner.close.bind(inner),
  };
  return double;
}

/** [what, wrap the node's storage in streamOnly()]: on the fs pass both branches; on the memory pass the memory engine (stream-only itself). */
const engines: ReadonlyArray<readonly [string, boolean]> = TEST_ENGINE === 'fs'
  ? [['local files (fs)', false], ['a stream-only engine (fs behind a Storage without LocalFiles)', true]]
  : [['the memory engine (stream-only)', false]];

describe.each(engines)('the read path on %s', (_engine, streaming) => {
  let node: TestNode;
  let app: NodeApp;
  let server: Listening;
  let storage: (Storage & { opens: number }) | undefined;
  const small = randomBytes(5000);
  const large = randomBytes(2 * MiB + 333);
  const etag = `"${sha(small)}"`;
  const auth = { Authorization: `Bearer ${TOKEN}` };

  beforeAll(async () => {
    node = await testNode({ config: { auth: { tokens: [TOKEN], trustedNetworks: [], signingSecret: SECRET } } });
    if (streaming) storage = streamOnly(node.ctx.storage);
    app = streaming ? createApp({ ...node.ctx, storage: storage! }) : node.app;
    expect(hasLocalFiles(storage ?? node.ctx.storage)).toBe(TEST_ENGINE === 'fs' && !streaming);
    const uploads: Array<[string, Buffer]> = [
      ['pub/acme/s.bin', small], ['pub/acme/l.bin', large], ['pub/acme/empty.txt', Buffer.alloc(0)],
      ['priv/acme/p.pdf', small], ['pub/acme/page.html', Buffer.from('<script>alert(1)</script>')],
      ['pub/acme/img.SVG', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>')], ['pub/acme/doc.pdf', Buffer.from('%PDF-1.7')],
    ];
    for (const [name, body] of uploads) await request(node.app).put(`/upload/${name}`).set(auth).send(body).expect(201);
    server = await listen(app);
  });
  afterAll(async () => {
    await server?.close();
    await node?.close();
  });

  const get = (target: string, headers: Record<string, string> = {}) => rawRequest(server.port, { method: 'GET', path: target, headers });
  const head = (target: string, headers: Record<string, string> = {}) => rawRequest(server.port, { method: 'HEAD', path: target, headers });
  const lastModified = async () => (await head('/pub/acme/s.bin')).headers['last-modified']!;

  it('200: the bytes, the sha256 ETag, Last-Modified, Cache-Control, Content-Type, Accept-Ranges and nosniff', async () => {
    for (const [name, body] of [['s.bin', small], ['l.bin', large]] as const) {
      const res = await get(`/pub/acme/${name}`);
      expect(res.status).toBe(200);
      expect(res.body.equals(body)).toBe(true);
      expect(res.headers).toMatchObject({
        etag: `"${sha(body)}"`, 'content-length': String(body.length), 'content-type': 'application/octet-stream',
        'cache-control': 'public, max-age=31536000, immutable', 'accept-ranges': 'bytes', 'x-content-type-options': 'nosniff',
      });
      expect(Date.parse(res.headers['last-modified']!)).toBeGreaterThan(0);
      expect(res.headers['content-security-policy']).toBeUndefined();
    }
  });

  it('200 of an empty file: no body, Content-Length 0; any Range of it is 416', async () => {
    const res = await get('/pub/acme/empty.txt');
    expect(res.status).toBe(200);
    expect(res.headers['content-length']).toBe('0');
    expect(res.body.length).toBe(0);
    const range = await get('/pub/acme/empty.txt', { range: 'bytes=0-' });
    expect(range.status).toBe(416);
    expect(range.headers['content-range']).toBe('bytes */0');
  });

  it('HEAD: the headers of GET and no body', async () => {
    const res = await head('/pub/acme/l.bin');
    expect(res.status).toBe(200);
    expect(res.headers['content-length']).toBe(String(large.length));
    expect(res.headers.etag).toBe(`"${sha(large)}"`);
    expect(res.body.length).toBe(0);
  });

  it('206: a single range, a suffix, an open end, one that crosses the 1 MiB read buffer, one past the end (clamped)', async () => {
    const cases: Array<[string, Buffer, string, number, number]> = [
      ['s.bin', small, 'bytes=100-199', 100, 199],
      ['s.bin', small, 'bytes=-10', 4990, 4999],
      ['s.bin', small, 'bytes=4990-', 4990, 4999],
      ['l.bin', large, `bytes=${MiB - 5}-${MiB + 4}`, MiB - 5, MiB + 4],
      ['l.bin', large, `bytes=${large.length - 3}-${large.length + 1000}`, large.length - 3, large.length - 1],
    ];
    for (const [name, body, range, start, end] of cases) {
      const res = await get(`/pub/acme/${name}`, { range });
      expect(res.status).toBe(206);
      expect(res.headers['content-range']).toBe(`bytes ${start}-${end}/${body.length}`);
      expect(res.headers['content-length']).toBe(String(end - start + 1));
      expect(res.body.equals(body.subarray(start, end + 1))).toBe(true);
    }
    const headRange = await head('/pub/acme/l.bin', { range: 'bytes=0-9' });
    expect(headRange.status).toBe(206);
    expect(headRange.headers['content-length']).toBe('10');
  });

  it('several ranges, a malformed Range or another unit: the whole file with 200', async () => {
    for (const range of ['bytes=0-1,10-11', 'bytes=abc', 'items=0-1']) {
      const res = await get('/pub/acme/s.bin', { range });
      expect(res.status).toBe(200);
      expect(res.body.equals(small)).toBe(true);
    }
  });

  it('416: an unsatisfiable range, as range_not_satisfiable JSON with Content-Range: bytes */size and no file headers', async () => {
    const res = await get('/pub/acme/s.bin', { range: 'bytes=6000-7000' });
    expect(res.status).toBe(416);
    expect(res.json).toMatchObject({ error: 'range_not_satisfiable', size: 5000 });
    expect(res.headers['content-range']).toBe('bytes */5000');
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers.etag).toBeUndefined();
  });

  it('304: If-None-Match with the ETag (also weak, listed, or *), If-Modified-Since at Last-Modified; no body, no Content-Type', async () => {
    for (const inm of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
      const res = await get('/pub/acme/s.bin', { 'if-none-match': inm });
      expect(res.status).toBe(304);
      expect(res.headers.etag).toBe(etag);
      expect(res.headers['content-type']).toBeUndefined();
      expect(res.body.length).toBe(0);
    }
    expect((await get('/pub/acme/s.bin', { 'if-modified-since': await lastModified() })).status).toBe(304);
    expect((await head('/pub/acme/s.bin', { 'if-none-match': etag })).status).toBe(304);
  });

  it('200 when the validators do not match; If-None-Match wins over If-Modified-Since', async () => {
    expect((await get('/pub/acme/s.bin', { 'if-none-match': '"other"' })).status).toBe(200);
    expect((await get('/pub/acme/s.bin', { 'if-modified-since': new Date(0).toUTCString() })).status).toBe(200);
    expect((await get('/pub/acme/s.bin', { 'if-none-match': '"other"', 'if-modified-since': await lastModified() })).status).toBe(200);
  });

  it('412: If-Match without the ETag (a weak one never matches), If-Unmodified-Since before Last-Modified; 200 when they hold', async () => {
    const failing: Array<Record<string, string>> = [{ 'if-match': '"other"' }, { 'if-match': `W/${etag}` }, { 'if-unmodified-since': new Date(0).toUTCString() }];
    for (const headers of failing) {
      const res = await get('/pub/acme/s.bin', headers);
      expect(res.status).toBe(412);
      expect(res.json.error).toBe('precondition_failed');
      expect(res.headers.etag).toBeUndefined();
    }
    const holding: Array<Record<string, string>> = [{ 'if-match': etag }, { 'if-match': `"x", ${etag}` }, { 'if-match': '*' }, { 'if-unmodified-since': await lastModified() }];
    for (const headers of holding) {
      expect((await get('/pub/acme/s.bin', headers)).status).toBe(200);
    }
    // If-Match is checked before the Range: 412, not 206.
    expect((await get('/pub/acme/s.bin', { 'if-match': '"other"', range: 'bytes=0-1' })).status).toBe(412);
  });

  it('If-Range: 206 while the ETag or the exact Last-Modified holds, else the whole file (even for an unsatisfiable range)', async () => {
    const lm = await lastModified();
    expect((await get('/pub/acme/s.bin', { range: 'bytes=0-9', 'if-range': etag })).status).toBe(206);
    expect((await get('/pub/acme/s.bin', { range: 'bytes=0-9', 'if-range': lm })).status).toBe(206);
    for (const ifRange of ['"other"', `W/${etag}`, new Date(Date.parse(lm) - 1000).toUTCString()]) {
      const res = await get('/pub/acme/s.bin', { range: 'bytes=0-9', 'if-range': ifRange });
      expect(res.status).toBe(200);
      expect(res.body.equals(small)).toBe(true);
    }
    expect((await get('/pub/acme/s.bin', { range: 'bytes=9000-', 'if-range': '"other"' })).status).toBe(200);
  });

  it('404 not_found JSON for a name without an index row (GET and HEAD); 400 invalid_name for a bad name', async () => {
    const res = await get('/pub/acme/missing.bin');
    expect(res.status).toBe(404);
    expect(res.json).toMatchObject({ error: 'not_found', name: 'pub/acme/missing.bin' });
    expect(res.headers['cache-control']).toBe('no-store');
    expect((await head('/pub/acme/missing.bin')).status).toBe(404);
    expect((await get('/pub/acme/..%2f..%2fx')).json.error).toBe('invalid_name');
  });

  it('priv: 401 without credentials, 200 with a token or a signed URL (Cache-Control: private), 403 with a bad signature', async () => {
    const bare = await get('/priv/acme/p.pdf');
    expect(bare.status).toBe(401);
    expect(bare.json.error).toBe('unauthorized');
    const withToken = await get('/priv/acme/p.pdf', auth);
    expect(withToken.status).toBe(200);
    expect(withToken.body.equals(small)).toBe(true);
    expect(withToken.headers['cache-control']).toBe('private');
    expect(withToken.headers['content-type']).toBe('application/pdf');
    const expires = Math.floor(Date.now() / 1000) + 60;
    expect((await get(`/priv/acme/p.pdf?${signedQuery(SECRET, 'priv/acme/p.pdf', expires)}`, { range: 'bytes=0-3' })).status).toBe(206);
    const forged = await get(`/priv/acme/p.pdf?${signedQuery(SECRET, 'priv/acme/other.pdf', expires)}`);
    expect(forged.status).toBe(403);
    expect(forged.json.error).toBe('signature_invalid');
    expect((await get('/priv/acme/p.pdf', { authorization: 'Bearer wrong-token-0123456789' })).status).toBe(401);
  });

  it('active content (html, svg, any case) gets Content-Security-Policy: sandbox; other types only nosniff', async () => {
    for (const name of ['page.html', 'img.SVG']) {
      const res = await get(`/pub/acme/${name}`);
      expect(res.status).toBe(200);
      expect(res.headers['content-security-policy']).toBe('sandbox');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      const notModified = await get(`/pub/acme/${name}`, { 'if-none-match': res.headers.etag! });
      expect(notModified.headers['content-security-policy']).toBe('sandbox');
    }
    const pdf = await get('/pub/acme/doc.pdf');
    expect(pdf.headers['content-security-policy']).toBeUndefined();
    expect(pdf.headers['x-content-type-options']).toBe('nosniff');
  });

  it('records the access time on 200, 206 and 304, not on 412 or 416', async () => {
    const name = 'pub/acme/s.bin';
    const touched = async (headers: Record<string, string>) => {
      node.ctx.access.forget(name);
      await get(`/${name}`, headers);
      return node.ctx.access.get(name) !== undefined;
    };
    expect(await touched({})).toBe(true);
    expect(await touched({ range: 'bytes=0-1' })).toBe(true);
    expect(await touched({ 'if-none-match': etag })).toBe(true);
    expect(await touched({ 'if-match': '"other"' })).toBe(false);
    expect(await touched({ range: 'bytes=9000-9001' })).toBe(false);
  });

  it.runIf(streaming)('answers HEAD, 304, 412 and 416 from the index row without opening the object', async () => {
    const before = storage!.opens;
    await head('/pub/acme/l.bin');
    await get('/pub/acme/l.bin', { 'if-none-match': `"${sha(large)}"` });
    await get('/pub/acme/l.bin', { 'if-match': '"other"' });
    await get('/pub/acme/l.bin', { range: `bytes=${large.length}-` });
    expect(storage!.opens).toBe(before);
    await get('/pub/acme/l.bin', { range: 'bytes=0-0' });
    expect(storage!.opens).toBe(before + 1);
  });
});

describe.each(engines)('the read path with download.accelRedirect on %s', (_engine, streaming) => {
  let node: TestNode;
  let app: NodeApp;
  beforeAll(async () => {
    node = await testNode({ config: { download: { accelRedirect: '/_files/' }, auth: { tokens: [TOKEN], trustedNetworks: [], signingSecret: SECRET } } });
    app = streaming ? createApp({ ...node.ctx, storage: streamOnly(node.ctx.storage) }) : node.app;
    await request(node.app).put('/upload/priv/acme/x.html').set('Authorization', `Bearer ${TOKEN}`).send(Buffer.from('<p>hi</p>')).expect(201);
  });
  afterAll(async () => {
    await node?.close();
  });

  it('answers an authorized GET/HEAD with 200, X-Accel-Redirect, the file headers and no body, whatever its conditions', async () => {
    for (const method of ['get', 'head'] as const) {
      const res = await request(app)[method]('/priv/acme/x.html').set('Authorization', `Bearer ${TOKEN}`).set('Range', 'bytes=0-1').set('If-None-Match', '*');
      expect(res.status).toBe(200);
      expect(res.headers).toMatchObject({
        'x-accel-redirect': '/_files/priv/acme/x.html', 'cache-control': 'private', 'x-content-type-options': 'nosniff',
        'content-security-policy': 'sandbox', 'content-length': '0',
      });
      expect(res.headers.etag).toMatch(/^"[0-9a-f]{64}"$/);
    }
  });

  it('refuses before redirecting: 401 JSON without credentials, 404 JSON for an absent name', async () => {
    const bare = await request(app).get('/priv/acme/x.html').expect(401);
    expect(bare.headers['x-accel-redirect']).toBeUndefined();
    const absent = await request(app).get('/priv/acme/none.html').set('Authorization', `Bearer ${TOKEN}`).expect(404);
    expect(absent.body.error).toBe('not_found');
    expect(absent.headers['x-accel-redirect']).toBeUndefined();
  });
});

describe('download.sandboxExtensions', () => {
  it('is the list of sandboxed extensions: configured ["pdf"], a .pdf is sandboxed and an .html is not', async () => {
    const node = await testNode({ config: { download: { accelRedirect: null, sandboxExtensions: ['pdf'] } } });
    try {
      await request(node.app).put('/upload/pub/acme/a.pdf').send(Buffer.from('%PDF')).expect(201);
      await request(node.app).put('/upload/pub/acme/a.html').send(Buffer.from('<p>')).expect(201);
      expect((await request(node.app).get('/pub/acme/a.pdf').expect(200)).headers['content-security-policy']).toBe('sandbox');
      const html = await request(node.app).get('/pub/acme/a.html').expect(200);
      expect(html.headers['content-security-policy']).toBeUndefined();
      expect(html.headers['x-content-type-options']).toBe('nosniff');
    } finally {
      await node.close();
    }
  });
});
