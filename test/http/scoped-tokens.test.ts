import { PassThrough } from 'node:stream';
import request from 'supertest';
import winston from 'winston';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testNode, type TestNode } from '../helpers/test-node.js';
import { tokenId } from '../../src/token-id.js';

/**
 * Scoped tokens (docs/design.md §11): an entry of auth.tokens is a string
 * (everything, as before) or {id, token, tenants, can, classes}; outside its
 * scope a request is 403 forbidden naming tenant, operation or class. No
 * trusted network here, so every request is judged by its token.
 */
const PLAIN = 'plain-token-0123456789abcdef';
const WORKERS = { id: 'workers-acme', token: 'acme-token-0123456789abcdef', tenants: ['acme', 'acme-*'], can: ['read', 'write'], classes: ['cache'] };
const READER = { id: 'reader', token: 'reader-token-0123456789abcdef', can: ['read'] };
const OPS = { id: 'ops', token: 'ops-token-0123456789abcdef', can: ['admin'] };
const JANITOR = { id: 'cache-janitor', token: 'janitor-token-0123456789abcdef', can: ['delete'], classes: ['cache'] };
const ALL_TOKENS = [PLAIN, WORKERS.token, READER.token, OPS.token, JANITOR.token];

function capturedLogger(): { logger: winston.Logger; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => { text += chunk.toString(); });
  return { logger: winston.createLogger({ level: 'silly', format: winston.format.json(), transports: [new winston.transports.Stream({ stream })] }), text: () => text };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('scoped tokens: the tenant × operation × class matrix', () => {
  let node: TestNode;
  const logs = capturedLogger();
  beforeAll(async () => {
    node = await testNode({
      config: { auth: { tokens: [PLAIN, WORKERS, READER, OPS, JANITOR], trustedNetworks: [], signingSecret: null } },
      logger: logs.logger,
    });
  });
  afterAll(async () => { await node.close(); });

  const put = (token: string, name: string, headers: Record<string, string> = {}) =>
    request(node.app).put(`/upload/${name}`).set({ ...bearer(token), ...headers }).send(Buffer.from(`body of ${name}`));

  it('a plain string token may still do everything (write anywhere, any class, delete, read priv, monitoring, admin)', async () => {
    await put(PLAIN, 'pub/globex/docs/a.pdf').expect(201);
    await put(PLAIN, 'priv/globex/docs/p.pdf').expect(201);
    await put(PLAIN, 'pub/globex/cachedtickets/b.pdf', { 'x-storage-class': 'default' }).expect(201);
    await request(node.app).get('/priv/globex/docs/p.pdf').set(bearer(PLAIN)).expect(200);
    await request(node.app).delete('/pub/globex/docs/a.pdf').set(bearer(PLAIN)).expect(204);
    await request(node.app).get('/usage').set(bearer(PLAIN)).expect(200);
    await request(node.app).post('/admin/evict?dryRun=1').set(bearer(PLAIN)).expect(200);
  });

  it('writes only for its tenants (globs) and only into its classes; 403 says which', async () => {
    await put(WORKERS.token, 'pub/acme/cachedtickets/t1.pdf').expect(201);
    await put(WORKERS.token, 'pub/acme-eu/cachedtickets/t2.pdf').expect(201);
    const tenant = await put(WORKERS.token, 'pub/globex/cachedtickets/t3.pdf').expect(403);
    expect(tenant.body).toMatchObject({ error: 'forbidden', denied: 'tenant', tenant: 'globex', tokenId: 'workers-acme', operation: 'write' });
    expect(tenant.body.message).toMatch(/tenant "globex"/);
    const cls = await put(WORKERS.token, 'pub/acme/docs/t4.pdf').expect(403);
    expect(cls.body).toMatchObject({ error: 'forbidden', denied: 'class', class: 'default' });
  });

  it('X-Storage-Class may only name a class the token allows: a cache writer cannot move a file out of the evictable class', async () => {
    const res = await put(WORKERS.token, 'pub/acme/cachedtickets/t5.pdf', { 'x-storage-class': 'default' }).expect(403);
    expect(res.body).toMatchObject({ error: 'forbidden', denied: 'class', class: 'default' });
    await put(WORKERS.token, 'pub/acme/other/t6.pdf', { 'x-storage-class': 'cache' }).expect(201);
  });

  it('refuses operations the token lacks: delete and admin for a writer, write for a reader', async () => {
    const del = await request(node.app).delete('/pub/acme/cachedtickets/t1.pdf').set(bearer(WORKERS.token)).expect(403);
    expect(del.body).toMatchObject({ error: 'forbidden', denied: 'operation', operation: 'delete' });
    expect((await request(node.app).get('/usage').set(bearer(WORKERS.token)).expect(403)).body.denied).toBe('operation');
    expect((await request(node.app).post('/admin/evict?dryRun=1').set(bearer(WORKERS.token)).expect(403)).body.denied).toBe('operation');
    expect((await put(READER.token, 'pub/acme/cachedtickets/r.pdf').expect(403)).body).toMatchObject({ denied: 'operation', operation: 'write' });
  });

  it('reads priv names only of its tenants; pub names need nothing', async () => {
    await put(WORKERS.token, 'priv/acme/cachedtickets/p1.pdf').expect(201);
    await request(node.app).get('/priv/acme/cachedtickets/p1.pdf').set(bearer(WORKERS.token)).expect(200);
    await request(node.app).get('/priv/acme/cachedtickets/p1.pdf').set(bearer(READER.token)).expect(200);
    const other = await request(node.app).get('/priv/globex/docs/p.pdf').set(bearer(WORKERS.token)).expect(403);
    expect(other.body).toMatchObject({ error: 'forbidden', denied: 'tenant', operation: 'read' });
    await request(node.app).get('/priv/globex/docs/p.pdf').set(bearer(OPS.token)).expect(403);
  });

  it('reads priv names only in its classes (the class the file got at upload), before any byte or header of the file', async () => {
    await put(PLAIN, 'priv/acme/docs/contract.pdf').expect(201);
    const cls = await request(node.app).get('/priv/acme/docs/contract.pdf').set(bearer(WORKERS.token)).expect(403);
    expect(cls.body).toMatchObject({ error: 'forbidden', denied: 'class', class: 'default', operation: 'read', tokenId: 'workers-acme' });
    expect(cls.headers.etag).toBeUndefined();
    await request(node.app).head('/priv/acme/docs/contract.pdf').set(bearer(WORKERS.token)).expect(403);
    // A token without a class scope reads it.
    await request(node.app).get('/priv/acme/docs/contract.pdf').set(bearer(READER.token)).expect(200);
  });

  it('monitoring needs admin, as Bearer and as the Basic password', async () => {
    await request(node.app).get('/usage').set(bearer(OPS.token)).expect(200);
    await request(node.app).get('/metrics').auth('', OPS.token).expect(200);
    expect((await request(node.app).get('/usage').auth('', WORKERS.token).expect(403)).body.denied).toBe('operation');
    await request(node.app).put('/upload/pub/acme/cachedtickets/o.pdf').set(bearer(OPS.token)).send('x').expect(403);
  });

  it('deletes only files of its classes (the class a file got at upload)', async () => {
    await put(PLAIN, 'pub/initech/docs/keep.pdf').expect(201);
    await put(PLAIN, 'pub/initech/cachedtickets/go.pdf').expect(201);
    expect((await request(node.app).delete('/pub/initech/docs/keep.pdf').set(bearer(JANITOR.token)).expect(403)).body)
      .toMatchObject({ denied: 'class', class: 'default' });
    await request(node.app).delete('/pub/initech/cachedtickets/go.pdf').set(bearer(JANITOR.token)).expect(204);
  });

  it('an unknown token is still 401', async () => {
    await put('nobody-token-0123456789abcdef', 'pub/acme/cachedtickets/x.pdf').expect(401);
  });

  it('access lines carry the token id (the configured id of a scoped token), never a token', async () => {
    await put(WORKERS.token, 'pub/acme/cachedtickets/logged.pdf').expect(201);
    await put(PLAIN, 'pub/acme/docs/logged.pdf').expect(201);
    await new Promise((r) => setTimeout(r, 50));
    const lines = logs.text().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.find((l) => l.path === '/upload/pub/acme/cachedtickets/logged.pdf')?.tokenId).toBe('workers-acme');
    expect(lines.find((l) => l.path === '/upload/pub/acme/docs/logged.pdf')?.tokenId).toBe(tokenId(PLAIN));
    for (const token of ALL_TOKENS) expect(logs.text()).not.toContain(token);
  });
});
