import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TEST_ENGINE, testNode, type TestNode } from '../helpers/test-node.js';
import { expectCleanWritePath, headersOnly, isStored, listen, rawRequest, storedBytes, storedNames, walkAll, type Listening } from './raw-http.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const NOW = 1_800_000_000_000;

describe('PUT /upload/<name>', () => {
  let node: TestNode;
  let server: Listening;
  beforeAll(async () => {
    node = await testNode({ config: { upload: { maxBytes: 64 * 1024 } }, now: () => NOW });
    server = await listen(node.app);
  });
  afterAll(async () => {
    await server.close();
    await node.close();
  });
  afterEach(() => expectCleanWritePath(node));

  it('stores the body: 201, Location, JSON {name,url,size,sha256}, the bytes in the engine, a row in the index', async () => {
    const body = randomBytes(10_000);
    const res = await request(node.app).put('/upload/pub/acme/docs/a.pdf').send(body).expect(201);
    expect(res.headers.location).toBe('/pub/acme/docs/a.pdf');
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body).toEqual({ name: 'pub/acme/docs/a.pdf', url: '/pub/acme/docs/a.pdf', size: 10_000, sha256: sha(body) });
    expect(sha(await storedBytes(node, 'pub/acme/docs/a.pdf'))).toBe(sha(body));
    expect(await node.ctx.index.files.get('pub/acme/docs/a.pdf')).toMatchObject({
      tenant: 'acme', class: 'default', size: 10_000, sha256: sha(body), createdMs: NOW, accessedMs: NOW, expiresMs: null,
    });
  });

  it('stores an empty body and a file directly under pub/ (tenant "-")', async () => {
    const res = await request(node.app).put('/upload/pub/empty.txt').send(Buffer.alloc(0)).expect(201);
    expect(res.body).toMatchObject({ size: 0, sha256: sha(Buffer.alloc(0)) });
    expect((await node.ctx.index.files.get('pub/empty.txt'))?.tenant).toBe('-');
  });

  it('answers an existing name with 409, the same Location, and leaves the stored file alone', async () => {
    const first = Buffer.from('the first body');
    await request(node.app).put('/upload/pub/acme/once.txt').send(first).expect(201);
    const res = await request(node.app).put('/upload/pub/acme/once.txt').send(Buffer.from('another, longer body')).expect(409);
    expect(res.headers.location).toBe('/pub/acme/once.txt');
    expect(res.body).toMatchObject({ error: 'exists', message: expect.any(String), name: 'pub/acme/once.txt', url: '/pub/acme/once.txt' });
    expect((await storedBytes(node, 'pub/acme/once.txt')).toString()).toBe('the first body');
    expect((await node.ctx.index.files.get('pub/acme/once.txt'))?.sha256).toBe(sha(first));
  });

  it('answers 409 before the body: a client that sends only headers gets it, with Connection: close', async () => {
    await request(node.app).put('/upload/pub/acme/early.txt').send('x').expect(201);
    const res = await headersOnly(server.port, { method: 'PUT', path: '/upload/pub/acme/early.txt', headers: { 'content-length': 50_000 } });
    expect(res.status).toBe(409);
    expect(res.headers.location).toBe('/pub/acme/early.txt');
    expect(res.headers.connection).toBe('close');
    expect(res.json.error).toBe('exists');
  });

  it('verifies X-Checksum-SHA256: a match is stored', async () => {
    const body = Buffer.from('checked body');
    await request(node.app).put('/upload/pub/acme/checked.txt').set('X-Checksum-SHA256', sha(body).toUpperCase()).send(body).expect(201);
  });

  it('refuses a checksum mismatch with 400 checksum_mismatch and stores nothing', async () => {
    const res = await request(node.app).put('/upload/pub/acme/bad-sum.txt')
      .set('X-Checksum-SHA256', sha(Buffer.from('something else'))).send(randomBytes(20_000)).expect(400);
    expect(res.body.error).toBe('checksum_mismatch');
    expect(await isStored(node, 'pub/acme/bad-sum.txt')).toBe(false);
    expect(await node.ctx.index.files.get('pub/acme/bad-sum.txt')).toBeUndefined();
    // The name stays free.
    await request(node.app).put('/upload/pub/acme/bad-sum.txt').send('ok').expect(201);
  });

  it('refuses a malformed checksum header with 400 invalid_request', async () => {
    const res = await request(node.app).put('/upload/pub/acme/bad-header.txt').set('X-Checksum-SHA256', 'abc').send('x').expect(400);
    expect(res.body).toMatchObject({ error: 'invalid_request', header: 'X-Checksum-SHA256' });
    expect(await isStored(node, 'pub/acme/bad-header.txt')).toBe(false);
  });

  it('refuses an oversize Content-Length with 413 before reading the body', async () => {
    const res = await headersOnly(server.port, { method: 'PUT', path: '/upload/pub/acme/huge.bin', headers: { 'content-length': 64 * 1024 + 1 } });
    expect(res.status).toBe(413);
    expect(res.json).toMatchObject({ error: 'upload_too_large', maxBytes: 64 * 1024, declaredBytes: 64 * 1024 + 1 });
    expect(res.headers.connection).toBe('close');
    expect(await isStored(node, 'pub/acme/huge.bin')).toBe(false);
  });

  it('accepts exactly maxBytes', async () => {
    await request(node.app).put('/upload/pub/acme/max.bin').send(randomBytes(64 * 1024)).expect(201);
  });

  it('refuses an oversize chunked body with 413 while streaming, leaving tmp empty', async () => {
    const chunks = Array.from({ length: 10 }, () => randomBytes(10_000));
    const res = await rawRequest(server.port, { method: 'PUT', path: '/upload/pub/acme/chunked.bin', body: chunks });
    expect(res.status).toBe(413);
    expect(res.json.error).toBe('upload_too_large');
    expect(await isStored(node, 'pub/acme/chunked.bin')).toBe(false);
    expect(await node.ctx.index.files.get('pub/acme/chunked.bin')).toBeUndefined();
  });

  it('stores a chunked body within the limit', async () => {
    const chunks = Array.from({ length: 5 }, () => randomBytes(5_000));
    const res = await rawRequest(server.port, { method: 'PUT', path: '/upload/pub/acme/chunked-ok.bin', body: chunks });
    expect(res.status).toBe(201);
    expect(res.json.sha256).toBe(sha(Buffer.concat(chunks)));
  });

  it('stores X-Expire-After in the index as an expiry time', async () => {
    await request(node.app).put('/upload/pub/acme/expiring.txt').set('X-Expire-After', '3600').send('x').expect(201);
    expect((await node.ctx.index.files.get('pub/acme/expiring.txt'))?.expiresMs).toBe(NOW + 3_600_000);
  });

  it.each(['-1', '1.5', 'soon', ''])('refuses X-Expire-After %j with 400 invalid_request', async (value) => {
    const res = await request(node.app).put('/upload/pub/acme/bad-expiry.txt').set('X-Expire-After', value).send('x').expect(400);
    expect(res.body).toMatchObject({ error: 'invalid_request', header: 'X-Expire-After' });
    expect(await isStored(node, 'pub/acme/bad-expiry.txt')).toBe(false);
  });

  it('classifies by X-Storage-Class, else by glob, else default', async () => {
    await request(node.app).put('/upload/pub/acme/cls/a.txt').set('X-Storage-Class', 'cache').send('x').expect(201);
    await request(node.app).put('/upload/pub/acme/cachedtickets/t.pdf').send('x').expect(201);
    await request(node.app).put('/upload/pub/acme/cls/b.txt').send('x').expect(201);
    expect((await node.ctx.index.files.get('pub/acme/cls/a.txt'))?.class).toBe('cache');
    expect((await node.ctx.index.files.get('pub/acme/cachedtickets/t.pdf'))?.class).toBe('cache');
    expect((await node.ctx.index.files.get('pub/acme/cls/b.txt'))?.class).toBe('default');
  });

  it('refuses an unknown X-Storage-Class with 400 invalid_request', async () => {
    const res = await request(node.app).put('/upload/pub/acme/cls/c.txt').set('X-Storage-Class', 'gold').send('x').expect(400);
    expect(res.body).toMatchObject({ error: 'invalid_request', header: 'X-Storage-Class' });
    expect(await isStored(node, 'pub/acme/cls/c.txt')).toBe(false);
  });

  // A file system cannot hold a name and a prefix of it as files; other engines can.
  it.runIf(TEST_ENGINE === 'fs')('refuses a name under a stored file, or one that is a directory of names, with 400 invalid_name (never a 409 a client would take for success)', async () => {
    await request(node.app).put('/upload/pub/acme/clash/a.txt').send('file').expect(201);
    const under = await request(node.app).put('/upload/pub/acme/clash/a.txt/b.txt').send('x').expect(400);
    expect(under.body.error).toBe('invalid_name');
    const dir = await request(node.app).put('/upload/pub/acme/clash').send('x').expect(400);
    expect(dir.body.error).toBe('invalid_name');
    expect((await storedBytes(node, 'pub/acme/clash/a.txt')).toString()).toBe('file');
  });

  it('answers an unknown method with 405 JSON and Allow', async () => {
    const res = await request(node.app).patch('/upload/pub/acme/a.txt').expect(405);
    expect(res.body.error).toBe('method_not_allowed');
    expect(res.headers.allow).toContain('PUT');
  });
});

describe('shutting down', () => {
  it('refuses new uploads with 503 shutting_down once draining', async () => {
    const node = await testNode();
    try {
      await node.ctx.uploader.drain(0);
      const res = await request(node.app).put('/upload/pub/acme/late.txt').send('x').expect(503);
      expect(res.body.error).toBe('shutting_down');
      expect(await storedNames(node)).toEqual([]);
    } finally {
      await node.close();
    }
  });
});

describe('the path guard over HTTP', () => {
  let root: string;
  let dataDir: string;
  let node: TestNode;
  let server: Listening;
  let before: string[];
  beforeAll(async () => {
    // The data dir sits inside a root we also walk, so an escape one level up would show.
    root = await mkdtemp(path.join(os.tmpdir(), 'nanocdn-guard-'));
    dataDir = path.join(root, 'data');
    mkdirSync(dataDir);
    node = await testNode({ dataDir });
    server = await listen(node.app);
    before = await walkAll(root);
  });
  afterAll(async () => {
    await server.close();
    await node.close();
    await rm(root, { recursive: true, force: true });
  });

  const cases: [string, string][] = [
    ['..', 'pub/acme/../../../escape.txt'],
    ['%2e%2e', 'pub/acme/%2e%2e/%2e%2e/%2e%2e/escape.txt'],
    ['..%2f', 'pub/acme/..%2f..%2f..%2fescape.txt'],
    ['%2f inside a segment', 'pub/acme/a%2fescape.txt'],
    ['%5c backslash', 'pub/acme/..%5c..%5cescape.txt'],
    ['a raw backslash', 'pub/acme/..\\..\\escape.txt'],
    ['%00 NUL', 'pub/acme/escape.txt%00.pdf'],
    ['an absolute path', '/etc/passwd'],
    ['an absolute path into the data dir', '/tmp/escape.txt'],
    ['a leading dot', 'pub/acme/.escape.txt'],
    ['a bad visibility', 'public/acme/escape.txt'],
    ['a 300-byte segment', `pub/acme/${'a'.repeat(300)}`],
    ['20 segments', ['pub', ...Array.from({ length: 19 }, (_, i) => `s${i}`)].join('/')],
    ['%20 space', 'pub/acme/escape%20me.txt'],
    ['overlong UTF-8 %c0%ae', 'pub/acme/%c0%ae%c0%ae/%c0%ae%c0%ae/escape.txt'],
    ['a trailing slash', 'pub/acme/'],
    ['visibility only', 'pub'],
  ];

  it.each(cases)('PUT refuses %s with 400 invalid_name and creates nothing', async (_what, name) => {
    const res = await rawRequest(server.port, { method: 'PUT', path: `/upload/${name}`, body: Buffer.from('payload') });
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({ error: 'invalid_name', message: expect.stringMatching(/^Invalid name: .+/) });
    expect(await walkAll(root)).toEqual(before);
  });

  it.each(cases)('POST, GET and DELETE refuse %s with 400 invalid_name', async (_what, name) => {
    const boundary = 'xyzzy';
    const multipart = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\npayload\r\n--${boundary}--\r\n`);
    const post = await rawRequest(server.port, { method: 'POST', path: `/upload/${name}`, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body: multipart });
    const get = await rawRequest(server.port, { method: 'GET', path: `/${name}` });
    const del = await rawRequest(server.port, { method: 'DELETE', path: `/${name}` });
    for (const res of [post, get, del]) {
      expect(res.status).toBe(400);
      expect(res.json.error).toBe('invalid_name');
    }
    expect(await walkAll(root)).toEqual(before);
  });

  it('the data dir holds only the layout and the index after all refusals', async () => {
    const entries = (await walkAll(dataDir)).filter((e) => !e.startsWith('index.sqlite'));
    expect(entries).toEqual(node.engine === 'fs' ? ['files', 'tmp'] : []);
    expect(await storedNames(node)).toEqual([]);
  });
});
