import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { testNode, type TestNode } from '../helpers/test-node.js';
import { expectCleanWritePath, isStored, listen, pause, rawRequest, spoolEntries, storedBytes, storedNames, type Listening } from './raw-http.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const MAX = 64 * 1024;

/** A multipart body built by hand, so malformed and odd shapes can be sent. */
function multipart(parts: { name: string; filename?: string; data: Buffer | string }[], boundary = 'nanocdn-boundary'): { body: Buffer; type: string } {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const disposition = `form-data; name="${part.name}"${part.filename ? `; filename="${part.filename}"` : ''}`;
    const type = part.filename ? 'Content-Type: application/octet-stream\r\n' : '';
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${type}\r\n`), Buffer.from(part.data), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), type: `multipart/form-data; boundary=${boundary}` };
}

describe('POST /upload/<name> (multipart)', () => {
  let node: TestNode;
  let server: Listening;
  beforeAll(async () => {
    node = await testNode({ config: { upload: { maxBytes: MAX } } });
    server = await listen(node.app);
  });
  afterAll(async () => {
    await server.close();
    await node.close();
  });
  afterEach(() => expectCleanWritePath(node));
  const post = (name: string, form: { body: Buffer; type: string }, headers: Record<string, string> = {}) =>
    rawRequest(server.port, { method: 'POST', path: `/upload/${name}`, headers: { 'content-type': form.type, ...headers }, body: form.body });
  const nothingStored = async (name: string) => {
    expect(await isStored(node, name)).toBe(false);
    expect(await node.ctx.index.files.get(name)).toBeUndefined();
  };

  it('stores the one part "file" through supertest .attach(): 201, Location, JSON', async () => {
    const data = randomBytes(30_000);
    const res = await request(node.app).post('/upload/pub/acme/forms/a.bin').attach('file', data, 'whatever.bin').expect(201);
    expect(res.headers.location).toBe('/pub/acme/forms/a.bin');
    expect(res.body).toEqual({ name: 'pub/acme/forms/a.bin', url: '/pub/acme/forms/a.bin', size: 30_000, sha256: sha(data) });
    expect(sha(await storedBytes(node, 'pub/acme/forms/a.bin'))).toBe(sha(data));
    expect(await node.ctx.index.files.get('pub/acme/forms/a.bin')).toMatchObject({ size: 30_000, sha256: sha(data), tenant: 'acme' });
  });

  it('uses the same write path: X-Checksum-SHA256 and X-Expire-After apply', async () => {
    const data = Buffer.from('form body');
    const bad = await post('pub/acme/forms/sum.txt', multipart([{ name: 'file', filename: 's.txt', data }]), { 'x-checksum-sha256': sha(Buffer.from('other')) });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toBe('checksum_mismatch');
    await nothingStored('pub/acme/forms/sum.txt');
    const ok = await post('pub/acme/forms/sum.txt', multipart([{ name: 'file', filename: 's.txt', data }]), { 'x-checksum-sha256': sha(data), 'x-expire-after': '60' });
    expect(ok.status).toBe(201);
    expect((await node.ctx.index.files.get('pub/acme/forms/sum.txt'))?.expiresMs).not.toBeNull();
  });

  it('answers an existing name with 409 and the same Location, file unchanged', async () => {
    await request(node.app).put('/upload/pub/acme/forms/exists.txt').send('original').expect(201);
    const res = await post('pub/acme/forms/exists.txt', multipart([{ name: 'file', filename: 'x', data: 'replacement' }]));
    expect(res.status).toBe(409);
    expect(res.headers.location).toBe('/pub/acme/forms/exists.txt');
    expect((await storedBytes(node, 'pub/acme/forms/exists.txt')).toString()).toBe('original');
  });

  it.each([
    ['a text field before the file', [{ name: 'note', data: 'hello' }, { name: 'file', filename: 'a.txt', data: 'payload' }]],
    ['a text field after the file', [{ name: 'file', filename: 'a.txt', data: 'payload' }, { name: 'note', data: 'hello' }]],
    ['a second file', [{ name: 'file', filename: 'a.txt', data: 'payload' }, { name: 'file', filename: 'b.txt', data: 'second' }]],
    ['a file under another field name', [{ name: 'upload', filename: 'a.txt', data: 'payload' }]],
    ['a file after a file under another name', [{ name: 'other', filename: 'o.txt', data: 'o' }, { name: 'file', filename: 'a.txt', data: 'payload' }]],
    ['no part at all', []],
    ['only a text field named file', [{ name: 'file', data: 'not a file' }]],
  ])('refuses %s with 400 invalid_request JSON and stores nothing', async (_what, parts) => {
    const name = `pub/acme/forms/${_what.replace(/\W+/g, '-')}.txt`;
    const res = await post(name, multipart(parts));
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.json).toMatchObject({ error: 'invalid_request', message: expect.any(String) });
    await nothingStored(name);
  });

  it('refuses a body that is not multipart with 400 invalid_request', async () => {
    const res = await request(node.app).post('/upload/pub/acme/forms/raw.txt').set('Content-Type', 'application/octet-stream').send(Buffer.from('raw')).expect(400);
    expect(res.body.error).toBe('invalid_request');
    await nothingStored('pub/acme/forms/raw.txt');
  });

  it('refuses a malformed multipart body (no closing boundary) with 400 invalid_request', async () => {
    const res = await rawRequest(server.port, {
      method: 'POST', path: '/upload/pub/acme/forms/broken.txt',
      headers: { 'content-type': 'multipart/form-data; boundary=zz' },
      body: Buffer.from('--zz\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\npayload'),
    });
    expect(res.status).toBe(400);
    expect(res.json.error).toBe('invalid_request');
    await nothingStored('pub/acme/forms/broken.txt');
  });

  it('refuses a multipart request larger than maxBytes by Content-Length with 413', async () => {
    const res = await post('pub/acme/forms/big.bin', multipart([{ name: 'file', filename: 'b', data: randomBytes(MAX + 10) }]));
    expect(res.status).toBe(413);
    expect(res.json.error).toBe('upload_too_large');
    await nothingStored('pub/acme/forms/big.bin');
  });

  it('refuses an oversize file in a chunked multipart body with 413, nothing stored', async () => {
    const form = multipart([{ name: 'file', filename: 'b', data: randomBytes(MAX + 10_000) }]);
    const chunks = [];
    for (let off = 0; off < form.body.length; off += 8192) chunks.push(form.body.subarray(off, off + 8192));
    const res = await rawRequest(server.port, { method: 'POST', path: '/upload/pub/acme/forms/big-chunked.bin', headers: { 'content-type': form.type }, body: chunks });
    expect(res.status).toBe(413);
    expect(res.json.error).toBe('upload_too_large');
    await nothingStored('pub/acme/forms/big-chunked.bin');
  });

  it('leaves nothing when the client goes away half-way through the file part', async () => {
    const form = multipart([{ name: 'file', filename: 'b', data: randomBytes(60_000) }]);
    const socket = net.connect(server.port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(`POST /upload/pub/acme/forms/gone.bin HTTP/1.1\r\nHost: x\r\nContent-Type: ${form.type}\r\nContent-Length: ${form.body.length}\r\n\r\n`);
    socket.write(form.body.subarray(0, 30_000));
    // Wait until the write path owns the upload, then cut the connection.
    for (let i = 0; i < 200 && node.ctx.uploader.inflight === 0; i++) await pause(10);
    expect(node.ctx.uploader.inflight).toBe(1);
    socket.destroy();
    for (let i = 0; i < 200 && (node.ctx.uploader.inflight > 0 || (await spoolEntries(node)) > 0); i++) await pause(10);
    await nothingStored('pub/acme/forms/gone.bin');
  });

  it('never makes the name visible before the whole body parsed: a bad trailing part stores nothing, not even for a moment', async () => {
    const name = 'pub/acme/forms/trailing.bin';
    const data = randomBytes(20_000);
    const boundary = 'nanocdn-boundary';
    const head = `POST /upload/${name} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nTransfer-Encoding: chunked\r\n\r\n`;
    const chunk = (b: Buffer | string) => { const buf = Buffer.from(b); return Buffer.concat([Buffer.from(`${buf.length.toString(16)}\r\n`), buf, Buffer.from('\r\n')]); };
    const socket = net.connect(server.port, '127.0.0.1');
    socket.on('error', () => undefined);
    let answer = '';
    socket.on('data', (d: Buffer) => { answer += d.toString(); });
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(head);
    // The whole file part and the delimiter after it: the parser has ended the part, the body has not ended.
    socket.write(chunk(Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="t.bin"\r\n\r\n`), data, Buffer.from(`\r\n--${boundary}`)])));
    for (let i = 0; i < 200 && node.ctx.uploader.inflight === 0; i++) await pause(10);
    await pause(150);
    // Before the fix the file was linked here and a same-name PUT got 409.
    expect(await isStored(node, name)).toBe(false);
    await request(node.app).get(`/${name}`).expect(404);
    expect(node.ctx.uploader.inflight).toBe(1);
    socket.write(chunk(`\r\nContent-Disposition: form-data; name="note"\r\n\r\nsurprise\r\n--${boundary}--\r\n`));
    socket.write('0\r\n\r\n');
    for (let i = 0; i < 200 && !answer.includes('\r\n\r\n{'); i++) await pause(10);
    socket.destroy();
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('"error":"invalid_request"');
    for (let i = 0; i < 200 && node.ctx.uploader.inflight > 0; i++) await pause(10);
    await nothingStored(name);
  });

  it('links the file once a body that ends cleanly after a pause is complete', async () => {
    const name = 'pub/acme/forms/paused.bin';
    const data = randomBytes(20_000);
    const boundary = 'nanocdn-boundary';
    const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="t.bin"\r\n\r\n`);
    const res = await rawRequest(server.port, {
      method: 'POST', path: `/upload/${name}`,
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      body: [Buffer.concat([head, data, Buffer.from(`\r\n--${boundary}`)]), Buffer.from('--\r\n')],
      between: () => pause(100),
    });
    expect(res.status).toBe(201);
    expect(res.json.sha256).toBe(sha(data));
    expect((await storedBytes(node, name)).equals(data)).toBe(true);
  });

  it('leaves only the successful uploads in the engine', async () => {
    expect(await storedNames(node)).toEqual([
      'pub/acme/forms/a.bin', 'pub/acme/forms/exists.txt', 'pub/acme/forms/paused.bin', 'pub/acme/forms/sum.txt',
    ]);
  });
});
