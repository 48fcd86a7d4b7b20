import net from 'node:net';
import { PassThrough } from 'node:stream';
import request from 'supertest';
import winston from 'winston';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signature, signedQuery } from '../../src/signing.js';
import { testNode, type TestNode } from '../helpers/test-node.js';
import { headersOnly, listen, pause } from './raw-http.js';

const TOKEN = 'test-token-0123456789abcdef';
const OTHER_TOKEN = 'other-token-0123456789abcdef';
const SECRET = 'test-signing-secret-0123456789';
const NOW = 1_800_000_000_000;
const NOW_S = NOW / 1000;

/** A winston logger that writes JSON lines into a string. */
function capturedLogger(): { logger: winston.Logger; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => { text += chunk.toString(); });
  const logger = winston.createLogger({ level: 'silly', format: winston.format.json(), transports: [new winston.transports.Stream({ stream })] });
  return { logger, text: () => text };
}

describe('auth with tokens and no trusted network', () => {
  let node: TestNode;
  const logs = capturedLogger();
  const auth = { Authorization: `Bearer ${TOKEN}` };
  beforeAll(async () => {
    node = await testNode({
      config: { auth: { tokens: [TOKEN, OTHER_TOKEN], trustedNetworks: [], signingSecret: SECRET } },
      logger: logs.logger,
      now: () => NOW,
    });
    await request(node.app).put('/upload/priv/acme/inv/a.pdf').set(auth).send(Buffer.from('%PDF private a')).expect(201);
    await request(node.app).put('/upload/priv/acme/inv/b.pdf').set(auth).send(Buffer.from('%PDF private b')).expect(201);
    await request(node.app).put('/upload/pub/acme/inv/p.pdf').set(auth).send(Buffer.from('%PDF public')).expect(201);
  });
  afterAll(async () => {
    await node.close();
  });

  it('refuses an upload without a token with 401 unauthorized JSON and stores nothing', async () => {
    const res = await request(node.app).put('/upload/pub/acme/x.txt').send('x').expect(401);
    expect(res.body).toMatchObject({ error: 'unauthorized', message: expect.any(String) });
    await request(node.app).get('/pub/acme/x.txt').expect(404);
  });

  it.each([
    ['a wrong token', 'Bearer wrong-token-0123456789abcdef'],
    ['a token prefix', `Bearer ${TOKEN.slice(0, -1)}`],
    ['a longer token', `Bearer ${TOKEN}x`],
    ['another scheme', `Basic ${Buffer.from(`u:${TOKEN}`).toString('base64')}`],
    ['no token after Bearer', 'Bearer '],
  ])('refuses %s with 401', async (_what, header) => {
    const res = await request(node.app).put('/upload/pub/acme/y.txt').set('Authorization', header).send('x').expect(401);
    expect(res.body.error).toBe('unauthorized');
    await request(node.app).get('/pub/acme/y.txt').expect(404);
  });

  it('refuses before reading the body: headers alone get 401 with Connection: close', async () => {
    const server = await listen(node.app);
    try {
      const res = await headersOnly(server.port, { method: 'PUT', path: '/upload/pub/acme/z.txt', headers: { 'content-length': 100_000 } });
      expect(res.status).toBe(401);
      expect(res.headers.connection).toBe('close');
    } finally {
      await server.close();
    }
  });

  it('accepts either configured token, case-insensitive scheme: 201', async () => {
    await request(node.app).put('/upload/pub/acme/ok1.txt').set(auth).send('x').expect(201);
    await request(node.app).put('/upload/pub/acme/ok2.txt').set('Authorization', `bearer ${OTHER_TOKEN}`).send('x').expect(201);
  });

  it('guards DELETE: 401 without a token (file kept), 204 with one', async () => {
    await request(node.app).put('/upload/pub/acme/del.txt').set(auth).send('x').expect(201);
    await request(node.app).delete('/pub/acme/del.txt').expect(401);
    await request(node.app).get('/pub/acme/del.txt').expect(200);
    await request(node.app).delete('/pub/acme/del.txt').set('Authorization', 'Bearer nope-nope-nope-nope-nope').expect(401);
    await request(node.app).delete('/pub/acme/del.txt').set(auth).expect(204);
  });

  it('lets anyone read pub files', async () => {
    await request(node.app).get('/pub/acme/inv/p.pdf').expect(200);
  });

  it('refuses a priv read without credentials with 401, and with a wrong token with 401', async () => {
    expect((await request(node.app).get('/priv/acme/inv/a.pdf').expect(401)).body.error).toBe('unauthorized');
    await request(node.app).head('/priv/acme/inv/a.pdf').expect(401);
    await request(node.app).get('/priv/acme/inv/a.pdf').set('Authorization', 'Bearer wrong-token-0123456789abcdef').expect(401);
  });

  it('serves a priv read with a token', async () => {
    const res = await request(node.app).get('/priv/acme/inv/a.pdf').set(auth).expect(200);
    expect(res.headers['cache-control']).toBe('private');
  });

  it('serves a priv read with a valid signed URL (GET and HEAD)', async () => {
    const query = signedQuery(SECRET, 'priv/acme/inv/a.pdf', NOW_S + 3600);
    const res = await request(node.app).get(`/priv/acme/inv/a.pdf?${query}`).buffer(true).expect(200);
    expect(res.body.toString()).toBe('%PDF private a');
    await request(node.app).head(`/priv/acme/inv/a.pdf?${query}`).expect(200);
  });

  it('checks the signature against the decoded name, however the path is encoded', async () => {
    const query = signedQuery(SECRET, 'priv/acme/inv/a.pdf', NOW_S + 3600);
    await request(node.app).get(`/priv/acme/inv/a%2Epdf?${query}`).expect(200);
    await request(node.app).get(`/priv/%61cme/inv/a.pdf?${query}`).expect(200);
  });

  it('does not serve a priv file to anyone after an authorized read (no cache leak)', async () => {
    await request(node.app).get('/priv/acme/inv/b.pdf').set(auth).expect(200);
    await request(node.app).get('/priv/acme/inv/b.pdf').set(auth).expect(200);
    await request(node.app).get('/priv/acme/inv/b.pdf').expect(401);
    await request(node.app).head('/priv/acme/inv/b.pdf').expect(401);
    await request(node.app).get('/priv/acme/inv/b.pdf').set('If-None-Match', '*').expect(401);
    await request(node.app).get('/priv/acme/inv/b.pdf').set('Range', 'bytes=0-1').expect(401);
  });

  it('refuses another name\'s signature with 403 signature_invalid', async () => {
    const query = signedQuery(SECRET, 'priv/acme/inv/b.pdf', NOW_S + 3600);
    const res = await request(node.app).get(`/priv/acme/inv/a.pdf?${query}`).expect(403);
    expect(res.body.error).toBe('signature_invalid');
  });

  it('refuses a tampered expiry with 403 signature_invalid', async () => {
    const sig = signature(SECRET, 'priv/acme/inv/a.pdf', NOW_S + 60);
    const res = await request(node.app).get(`/priv/acme/inv/a.pdf?expires=${NOW_S + 86_400}&sig=${sig}`).expect(403);
    expect(res.body.error).toBe('signature_invalid');
  });

  it('refuses an expired signed URL with 403 signature_expired', async () => {
    const query = signedQuery(SECRET, 'priv/acme/inv/a.pdf', NOW_S - 1);
    const res = await request(node.app).get(`/priv/acme/inv/a.pdf?${query}`).expect(403);
    expect(res.body.error).toBe('signature_expired');
  });

  it('refuses half a signature (sig without expires) with 403 signature_invalid', async () => {
    const sig = signature(SECRET, 'priv/acme/inv/a.pdf', NOW_S + 60);
    expect((await request(node.app).get(`/priv/acme/inv/a.pdf?sig=${sig}`).expect(403)).body.error).toBe('signature_invalid');
  });

  it('does not let a signed URL write', async () => {
    const query = signedQuery(SECRET, 'priv/acme/inv/new.pdf', NOW_S + 3600);
    await request(node.app).put(`/upload/priv/acme/inv/new.pdf?${query}`).send('x').expect(401);
  });

  it('logs one JSON line per request: id, method, name, tenant, status, bytes, ms', async () => {
    await request(node.app).put('/upload/pub/acme/logged.txt').set(auth).set('X-Request-Id', 'req-logged-1').send('12345').expect(201);
    const line = logs.text().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((entry) => entry.requestId === 'req-logged-1');
    expect(line).toMatchObject({ message: 'request', method: 'PUT', name: 'pub/acme/logged.txt', tenant: 'acme', status: 201, bytesIn: 5 });
    expect(line!.ms).toEqual(expect.any(Number));
  });

  it('logs a client that went away mid-upload, once, as 499 aborted', async () => {
    const server = await listen(node.app);
    try {
      const socket = net.connect(server.port, '127.0.0.1');
      socket.on('error', () => undefined);
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      socket.write(`PUT /upload/pub/acme/gone.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nX-Request-Id: req-gone-1\r\nContent-Length: 100000\r\n\r\n`);
      socket.write(Buffer.alloc(30_000));
      for (let i = 0; i < 200 && node.ctx.uploader.inflight === 0; i++) await pause(10);
      socket.destroy();
      const lines = () => logs.text().split('\n').filter((l) => l.includes('"req-gone-1"')).map((l) => JSON.parse(l) as Record<string, unknown>);
      for (let i = 0; i < 200 && lines().length === 0; i++) await pause(10);
      await pause(50);
      expect(lines()).toHaveLength(1);
      expect(lines()[0]).toMatchObject({ method: 'PUT', name: 'pub/acme/gone.bin', status: 499, aborted: true });
    } finally {
      await server.close();
    }
  });

  it('never writes a token or a signature into the logs', () => {
    const text = logs.text();
    // The capture works: it holds the request lines of this suite.
    expect(text).toContain('"status":401');
    expect(text).toContain('priv/acme/inv/a.pdf');
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain(OTHER_TOKEN);
    expect(text).not.toContain('wrong-token');
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(signature(SECRET, 'priv/acme/inv/a.pdf', NOW_S + 3600));
    expect(text).not.toContain(signature(SECRET, 'priv/acme/inv/b.pdf', NOW_S + 3600));
    expect(text).not.toMatch(/sig=/);
  });
});

describe('auth from a trusted network (the loopback default)', () => {
  let node: TestNode;
  beforeAll(async () => {
    node = await testNode({ config: { auth: { tokens: [TOKEN], trustedNetworks: ['127.0.0.0/8', '::1/128'], signingSecret: null } } });
  });
  afterAll(async () => {
    await node.close();
  });

  it('accepts uploads, deletes and priv reads from loopback without a token', async () => {
    await request(node.app).put('/upload/priv/acme/t.txt').send('x').expect(201);
    await request(node.app).get('/priv/acme/t.txt').expect(200);
    await request(node.app).delete('/priv/acme/t.txt').expect(204);
  });

  it('still refuses a wrong token from a trusted address (a misconfigured client learns at once)', async () => {
    await request(node.app).put('/upload/pub/acme/w.txt').set('Authorization', 'Bearer wrong-token-0123456789abcdef').send('x').expect(401);
  });

  it('refuses a signed URL when no signing secret is configured', async () => {
    await request(node.app).put('/upload/priv/acme/s.txt').send('x').expect(201);
    const query = signedQuery('some-secret-0123456789abc', 'priv/acme/s.txt', Math.floor(Date.now() / 1000) + 60);
    expect((await request(node.app).get(`/priv/acme/s.txt?${query}`).expect(403)).body.error).toBe('signature_invalid');
  });
});

describe('trusted networks other than loopback', () => {
  it('refuses loopback when only 10.0.0.0/8 is trusted', async () => {
    const node = await testNode({ config: { auth: { tokens: [], trustedNetworks: ['10.0.0.0/8'], signingSecret: null } } });
    try {
      await request(node.app).put('/upload/pub/acme/n.txt').send('x').expect(401);
    } finally {
      await node.close();
    }
  });

  it('matches IPv4-mapped IPv6 addresses against IPv4 networks', () => {
    return testNode({ config: { auth: { tokens: [], trustedNetworks: ['192.168.1.0/24', 'fd00::/8'], signingSecret: null } } }).then(async (node) => {
      try {
        expect(node.ctx.auth.isTrustedAddress('::ffff:192.168.1.20')).toBe(true);
        expect(node.ctx.auth.isTrustedAddress('192.168.1.20')).toBe(true);
        expect(node.ctx.auth.isTrustedAddress('192.168.2.20')).toBe(false);
        expect(node.ctx.auth.isTrustedAddress('fd00::1')).toBe(true);
        expect(node.ctx.auth.isTrustedAddress('::1')).toBe(false);
        expect(node.ctx.auth.isTrustedAddress(undefined)).toBe(false);
      } finally {
        await node.close();
      }
    });
  });
});
