import { createHash } from 'node:crypto';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { testNode, type TestNode } from '../helpers/test-node.js';
import { expectCleanWritePath, headersOnly, isStored, listen } from './raw-http.js';

const sha = (text: string) => createHash('sha256').update(text).digest('hex');
const DAY = 86_400_000;

/** One multipart part "file" built by hand. */
function form(data: string): { body: Buffer; type: string } {
  const boundary = 'nanocdn-retired';
  const body = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="f.bin"\r\n` +
    `Content-Type: application/octet-stream\r\n\r\n${data}\r\n--${boundary}--\r\n`);
  return { body, type: `multipart/form-data; boundary=${boundary}` };
}

/**
 * Issue 13 finding 9: pub files are served `immutable, max-age=1y`, so a pub
 * name whose file was removed must not serve other bytes while caches may
 * still hold the old ones (docs/design.md §2, retired names).
 */
describe('retired pub names (issue 13 finding 9)', () => {
  let node: TestNode;
  let clock: number;
  afterEach(async () => {
    await expectCleanWritePath(node);
    await node.close();
  });
  async function start(config: Record<string, unknown> = {}): Promise<void> {
    clock = Date.UTC(2026, 11, 1, 12);
    node = await testNode({ config, now: () => clock });
  }
  const put = (name: string, body: string, headers: Record<string, string> = {}) =>
    request(node.app).put(`/upload/${name}`).set(headers).send(body);
  /** GET as text, whatever the Content-Type. */
  const get = async (name: string) => {
    const res = await request(node.app).get(`/${name}`).buffer(true).parse((stream, done) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => done(null, Buffer.concat(chunks).toString()));
    });
    return { status: res.status, headers: res.headers, text: res.body as string };
  };

  it('DELETE then PUT of other bytes under the same pub name: 409 name_retired, the old name serves nothing new', async () => {
    await start();
    const name = 'pub/acme/tickets/order-1.pdf';
    await put(name, 'old bytes').expect(201);
    expect((await get(name)).headers['cache-control']).toBe('public, max-age=31536000, immutable');
    await request(node.app).delete(`/${name}`).expect(204);
    const res = await put(name, 'new bytes');
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({
      error: 'name_retired', name, retiredSha256: sha('old bytes'),
      retiredAt: new Date(clock).toISOString(), retiredUntil: new Date(clock + 365 * DAY).toISOString(),
    });
    expect(res.body.message).toContain(new Date(clock + 365 * DAY).toISOString());
    expect(res.body.message).toMatch(/cache/i);
    expect(await isStored(node, name)).toBe(false);
    expect(await node.ctx.index.files.get(name)).toBeUndefined();
    expect((await get(name)).status).toBe(404);
  });

  it('with X-Checksum-SHA256 of other bytes the refusal comes before the body (100-continue never sent)', async () => {
    await start();
    const name = 'pub/acme/tickets/early.pdf';
    await put(name, 'old').expect(201);
    await request(node.app).delete(`/${name}`).expect(204);
    const server = await listen(node.app);
    try {
      const res = await headersOnly(server.port, {
        method: 'PUT', path: `/upload/${name}`,
        headers: { 'content-length': 3, expect: '100-continue', 'x-checksum-sha256': sha('new') },
      });
      expect(res.status).toBe(409);
      expect(res.json.error).toBe('name_retired');
      expect(res.headers.connection).toBe('close');
    } finally {
      await server.close();
    }
  });

  it('the same bytes restore the name (201) and drop the retired row; removing it again retires it again', async () => {
    await start();
    const name = 'pub/acme/tickets/restore.pdf';
    await put(name, 'same').expect(201);
    await request(node.app).delete(`/${name}`).expect(204);
    expect(await node.ctx.index.retired.get(name)).toMatchObject({ name, sha256: sha('same'), retiredMs: clock });
    await put(name, 'same').expect(201);
    expect(await node.ctx.index.retired.get(name)).toBeUndefined();
    expect((await get(name)).text).toBe('same');
    // With the checksum header too (the early check lets it through).
    await request(node.app).delete(`/${name}`).expect(204);
    await put(name, 'same', { 'X-Checksum-SHA256': sha('same') }).expect(201);
    await request(node.app).delete(`/${name}`).expect(204);
    expect((await put(name, 'other')).body.error).toBe('name_retired');
  });

  it('multipart POST follows the same rule', async () => {
    await start();
    const name = 'pub/acme/forms/m.bin';
    await put(name, 'first').expect(201);
    await request(node.app).delete(`/${name}`).expect(204);
    const other = form('second');
    const refused = await request(node.app).post(`/upload/${name}`).set('Content-Type', other.type).send(other.body);
    expect(refused.status).toBe(409);
    expect(refused.body.error).toBe('name_retired');
    expect(await isStored(node, name)).toBe(false);
    const same = form('first');
    await request(node.app).post(`/upload/${name}`).set('Content-Type', same.type).send(same.body).expect(201);
    expect((await get(name)).text).toBe('first');
  });

  it('priv names are not retired (they are served Cache-Control: private)', async () => {
    await start();
    const name = 'priv/acme/invoices/i.pdf';
    await put(name, 'v1').expect(201);
    await request(node.app).delete(`/${name}`).expect(204);
    expect(await node.ctx.index.retired.get(name)).toBeUndefined();
    await put(name, 'v2').expect(201);
  });

  it('upload.retirePubNamesFor 0 turns it off: nothing is retired', async () => {
    await start({ upload: { maxBytes: '1MiB', retirePubNamesFor: 0 } });
    const name = 'pub/acme/tickets/off.pdf';
    await put(name, 'v1').expect(201);
    await request(node.app).delete(`/${name}`).expect(204);
    expect(await node.ctx.index.retired.get(name)).toBeUndefined();
    await put(name, 'v2').expect(201);
    expect((await get(name)).text).toBe('v2');
  });

  it('a retired name is free again once the retention has passed; the eviction pass prunes expired rows', async () => {
    await start({ upload: { maxBytes: '1MiB', retirePubNamesFor: '2d' } });
    const [a, b] = ['pub/acme/tickets/exp-a.pdf', 'pub/acme/tickets/exp-b.pdf'];
    await put(a, 'a1').expect(201);
    await put(b, 'b1').expect(201);
    await request(node.app).delete(`/${a}`).expect(204);
    await request(node.app).delete(`/${b}`).expect(204);
    clock += 2 * DAY - 1;
    expect((await put(a, 'a2')).body).toMatchObject({ error: 'name_retired', retiredUntil: new Date(clock + 1).toISOString() });
    clock += 1;
    await put(a, 'a2').expect(201);
    expect((await get(a)).text).toBe('a2');
    expect(await node.ctx.index.retired.get(b)).toBeDefined();
    await node.ctx.evictor.run({ reason: 'schedule' });
    expect(await node.ctx.index.retired.get(b)).toBeUndefined();
  });

  it('eviction retires the pub names it removes', async () => {
    await start({
      classes: { cache: { match: ['*/*/cachedtickets/**'], evictable: true, maxAge: '1d' }, default: { evictable: false } },
    });
    const name = 'pub/acme/cachedtickets/t.pdf';
    await put(name, 'ticket v1').expect(201);
    clock += 2 * DAY;
    const summary = await node.ctx.evictor.run({ reason: 'schedule' });
    expect(summary.victims.map((v) => v.name)).toEqual([name]);
    expect(await isStored(node, name)).toBe(false);
    expect((await put(name, 'ticket v2')).body.error).toBe('name_retired');
    await put(name, 'ticket v1').expect(201);
  });
});
