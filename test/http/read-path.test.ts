// The read fast path (src/http/fast-read.ts, plain-read.ts, file-sender.ts,
// read-cache.ts): large bodies in pooled 1 MiB reads, the cache keyed by the
// index row, what it declines, and that it logs, times and records accesses
// like the Express path. Range/conditional semantics: test/http/download.test.ts.
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import http from 'node:http';
import { PassThrough } from 'node:stream';
import request from 'supertest';
import winston from 'winston';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseName } from '../../src/names.js';
import { signedQuery } from '../../src/signing.js';
import { testNode, type TestNode } from '../helpers/test-node.js';
import { listen, rawRequest, type Listening } from './raw-http.js';

const MiB = 1024 * 1024;
const SECRET = 'read-path-signing-secret';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const openFds = () => readdirSync('/proc/self/fd').length;

async function until(condition: () => boolean, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  return condition();
}

describe('the read fast path', () => {
  let node: TestNode;
  let server: Listening;
  let logText = '';
  // Sizes around the 1 MiB read buffer and the 64 KiB body-cache limit.
  const large = randomBytes(3 * MiB + 12345);
  const exact = randomBytes(2 * MiB);
  const justOver = randomBytes(64 * 1024 + 1);
  const small = randomBytes(700);

  beforeAll(async () => {
    const stream = new PassThrough();
    stream.on('data', (chunk: Buffer) => { logText += chunk.toString(); });
    const logger = winston.createLogger({ level: 'http', format: winston.format.json(), transports: [new winston.transports.Stream({ stream })] });
    node = await testNode({ config: { auth: { signingSecret: SECRET } }, logger });
    server = await listen(node.app);
    for (const [name, body] of [['pub/acme/large.bin', large], ['pub/acme/exact.bin', exact], ['pub/acme/over.bin', justOver], ['pub/acme/small.txt', small]] as const) {
      await request(node.app).put(`/upload/${name}`).send(body).expect(201);
    }
  });
  afterAll(async () => {
    await server?.close();
    await node?.close();
  });
  const get = (target: string, headers: Record<string, string> = {}) => rawRequest(server.port, { method: 'GET', path: target, headers });

  it.each([
    ['3 MiB + 12345 bytes', 'pub/acme/large.bin', () => large],
    ['exactly 2 MiB', 'pub/acme/exact.bin', () => exact],
    ['64 KiB + 1', 'pub/acme/over.bin', () => justOver],
    ['700 bytes (cached body)', 'pub/acme/small.txt', () => small],
  ])('serves %s byte for byte with the full 200 headers, twice (load, then cache)', async (_what, name, body) => {
    for (let i = 0; i < 2; i++) {
      const res = await get(`/${name}`);
      expect(res.status).toBe(200);
      expect(res.body.length).toBe(body().length);
      expect(sha(res.body)).toBe(sha(body()));
      expect(res.headers).toMatchObject({
        'content-length': String(body().length), etag: `"${sha(body())}"`, 'accept-ranges': 'bytes',
        'cache-control': 'public, max-age=31536000, immutable',
      });
      expect(res.headers['last-modified']).toMatch(/ GMT$/);
      expect(res.headers['x-request-id']).toBeTruthy();
    }
  });

  it('keeps concurrent large downloads apart', async () => {
    const results = await Promise.all(Array.from({ length: 16 }, (_, i) => get(`/pub/acme/${i % 2 ? 'large' : 'exact'}.bin`)));
    results.forEach((res, i) => expect(sha(res.body)).toBe(sha(i % 2 ? large : exact)));
  });

  it('closes the file when the client goes away mid-body', async () => {
    const before = openFds();
    await Promise.all(Array.from({ length: 8 }, () => new Promise<void>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: server.port, path: '/pub/acme/large.bin', agent: false }, (res) => {
        res.once('data', () => { req.destroy(); resolve(); });
      });
      req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'ECONNRESET' ? resolve() : reject(err)));
    })));
    expect(await until(() => openFds() <= before)).toBe(true);
  });

  it('answers HEAD of a large file with its headers and no body', async () => {
    const res = await request(node.app).head('/pub/acme/large.bin').expect(200);
    expect(res.headers['content-length']).toBe(String(large.length));
    expect(res.headers.etag).toBe(`"${sha(large)}"`);
  });

  it('logs one request line per fast read (id, method, name, tenant, status, bytes) and never the query', async () => {
    const res = await get('/pub/acme/small.txt?v=secretish', { 'x-request-id': 'read-path-1' });
    expect(res.headers['x-request-id']).toBe('read-path-1');
    expect(await until(() => logText.includes('"requestId":"read-path-1"'))).toBe(true);
    const lines = logText.split('\n').filter((l) => l.includes('"requestId":"read-path-1"'));
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0])).toMatchObject({
      message: 'request', method: 'GET', path: '/pub/acme/small.txt', name: 'pub/acme/small.txt', tenant: 'acme', status: 200, bytesOut: small.length,
    });
    expect(lines[0]).not.toContain('secretish');
  });

  it.each([
    ['206', { range: 'bytes=10-19' }, '/pub/acme/small.txt', 206, 10],
    ['304', { 'if-none-match': `"${sha(small)}"` }, '/pub/acme/small.txt', 304, 0],
    ['404', {}, '/pub/acme/absent.txt', 404, undefined],
  ] as const)('a %s from the fast path carries its X-Request-Id and logs the bytes it sent', async (status, headers, target, code, bytesOut) => {
    const id = `read-path-${status}`;
    const res = await get(target, { ...headers, 'x-request-id': id });
    expect(res.status).toBe(code);
    expect(res.headers['x-request-id']).toBe(id);
    expect(await until(() => logText.includes(`"requestId":"${id}"`))).toBe(true);
    const line = JSON.parse(logText.split('\n').find((l) => l.includes(`"requestId":"${id}"`))!) as Record<string, unknown>;
    expect(line).toMatchObject({ status: code, bytesOut: bytesOut ?? Number(res.headers['content-length']) });
    if (code === 404) expect(line.bytesOut).toBeGreaterThan(0);
  });

  it('times fast reads in the download duration metric and records the access for eviction', async () => {
    const count = async () => {
      const text = (await request(node.app).get('/metrics').expect(200)).text;
      const line = text.split('\n').find((l) => l.startsWith('nanocdn_http_request_duration_seconds_count{') && l.includes('route="download"') && l.includes('status="2xx"'));
      return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
    };
    const before = await count();
    await node.ctx.access.flush();
    await get('/pub/acme/over.bin');
    expect(await count()).toBe(before + 1);
    expect(node.ctx.access.get('pub/acme/over.bin')).toBeGreaterThan(0);
  });

  it('serves the new bytes after a delete and a re-upload under the same name (the cache follows the index row)', async () => {
    // A priv name: a removed pub name is retired and refuses other bytes (test/http/retired-names.test.ts).
    const name = 'priv/acme/reused.bin';
    const first = randomBytes(1000);
    const second = randomBytes(1500);
    await request(node.app).put(`/upload/${name}`).send(first).expect(201);
    expect(sha((await get(`/${name}`)).body)).toBe(sha(first));
    await request(node.app).delete(`/${name}`).expect(204);
    expect((await get(`/${name}`)).status).toBe(404);
    await request(node.app).put(`/upload/${name}`).send(second).expect(201);
    const res = await get(`/${name}`);
    expect(sha(res.body)).toBe(sha(second));
    expect(res.headers.etag).toBe(`"${sha(second)}"`);
  });

  it('answers a file gone from the engine behind the index (cached or not) with 404 JSON, not stale bytes', async () => {
    const name = 'pub/acme/vanishing.bin';
    const body = randomBytes(200 * 1024);
    await request(node.app).put(`/upload/${name}`).send(body).expect(201);
    expect((await get(`/${name}`)).status).toBe(200);
    await node.ctx.storage.remove(parseName(name));
    const res = await get(`/${name}`);
    expect(res.status).toBe(404);
    expect(res.json).toMatchObject({ error: 'not_found', name });
  });

  it('declines what it cannot answer whole: Range, conditionals and invalid names still get their full semantics', async () => {
    const range = await get('/pub/acme/large.bin', { range: 'bytes=1048570-1048580' });
    expect(range.status).toBe(206);
    expect(range.body.equals(large.subarray(1048570, 1048581))).toBe(true);
    expect((await get('/pub/acme/large.bin', { 'if-none-match': `"${sha(large)}"` })).status).toBe(304);
    const bad = await get('/pub/acme/%2e%2e/escape.txt');
    expect(bad.status).toBe(400);
    expect(bad.json.error).toBe('invalid_name');
  });

  it('serves priv only to the authorized: signed URL yes, a wrong signature 403', async () => {
    const body = randomBytes(100 * 1024);
    await request(node.app).put('/upload/priv/acme/p.bin').send(body).expect(201);
    const expires = Math.floor(Date.now() / 1000) + 60;
    const ok = await get(`/priv/acme/p.bin?${signedQuery(SECRET, 'priv/acme/p.bin', expires)}`);
    expect(ok.status).toBe(200);
    expect(sha(ok.body)).toBe(sha(body));
    expect(ok.headers['cache-control']).toBe('private');
    const forged = await get(`/priv/acme/p.bin?${signedQuery(SECRET, 'priv/acme/other.bin', expires)}`);
    expect(forged.status).toBe(403);
    expect(forged.json.error).toBe('signature_invalid');
  });
});

describe('the read path with download.accelRedirect', () => {
  let node: TestNode;
  const TOKEN = 'accel-test-token-0123456789';
  beforeAll(async () => {
    node = await testNode({ config: { download: { accelRedirect: '/_files/' }, auth: { tokens: [TOKEN], trustedNetworks: [], signingSecret: SECRET } } });
    await request(node.app).put('/upload/pub/acme/a.bin').set('Authorization', `Bearer ${TOKEN}`).send(randomBytes(5000)).expect(201);
    await request(node.app).put('/upload/priv/acme/b.pdf').set('Authorization', `Bearer ${TOKEN}`).send(randomBytes(5000)).expect(201);
  });
  afterAll(async () => {
    await node?.close();
  });

  it.each(['GET', 'HEAD'] as const)('answers %s with X-Accel-Redirect, the sha256 ETag and no body', async (method) => {
    const res = await (method === 'GET' ? request(node.app).get('/pub/acme/a.bin') : request(node.app).head('/pub/acme/a.bin')).expect(200);
    expect(res.headers['x-accel-redirect']).toBe('/_files/pub/acme/a.bin');
    expect(res.headers.etag).toMatch(/^"[0-9a-f]{64}"$/);
    expect(res.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(res.text ?? '').toBe('');
    expect(node.ctx.access.get('pub/acme/a.bin')).toBeGreaterThan(0);
  });

  it.each(['GET', 'HEAD'] as const)('answers %s of an absent name with 404 (JSON for GET) and no X-Accel-Redirect', async (method) => {
    const res = await (method === 'GET' ? request(node.app).get('/pub/acme/missing.bin') : request(node.app).head('/pub/acme/missing.bin')).expect(404);
    expect(res.headers['x-accel-redirect']).toBeUndefined();
    if (method === 'GET') expect(res.body.error).toBe('not_found');
  });

  it('redirects priv only after auth: 401 without credentials, X-Accel-Redirect with a token or a signature', async () => {
    const bare = await request(node.app).get('/priv/acme/b.pdf').expect(401);
    expect(bare.headers['x-accel-redirect']).toBeUndefined();
    await request(node.app).get('/priv/acme/b.pdf').set('Authorization', `Bearer ${TOKEN}`).expect(200).expect('X-Accel-Redirect', '/_files/priv/acme/b.pdf');
    const query = signedQuery(SECRET, 'priv/acme/b.pdf', Math.floor(Date.now() / 1000) + 60);
    await request(node.app).head(`/priv/acme/b.pdf?${query}`).expect(200).expect('X-Accel-Redirect', '/_files/priv/acme/b.pdf');
  });
});
