import { existsSync } from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_ENGINE, testNode, type TestNode } from '../helpers/test-node.js';
import { isStored } from './raw-http.js';

describe('DELETE /<name>', () => {
  let node: TestNode;
  beforeAll(async () => {
    node = await testNode();
  });
  afterAll(async () => {
    await node.close();
  });

  it('removes the file and its index row: 204, then GET 404', async () => {
    await request(node.app).put('/upload/pub/acme/del/a.txt').send('bye').expect(201);
    const res = await request(node.app).delete('/pub/acme/del/a.txt').expect(204);
    expect(res.text ?? '').toBe('');
    expect(await isStored(node, 'pub/acme/del/a.txt')).toBe(false);
    expect(await node.ctx.index.files.get('pub/acme/del/a.txt')).toBeUndefined();
    await request(node.app).get('/pub/acme/del/a.txt').expect(404);
  });

  it('answers an absent name with 404 not_found JSON', async () => {
    const res = await request(node.app).delete('/pub/acme/del/never.txt').expect(404);
    expect(res.body).toMatchObject({ error: 'not_found', name: 'pub/acme/del/never.txt' });
  });

  it('answers a second delete with 404', async () => {
    await request(node.app).put('/upload/priv/acme/del/twice.txt').send('x').expect(201);
    await request(node.app).delete('/priv/acme/del/twice.txt').expect(204);
    await request(node.app).delete('/priv/acme/del/twice.txt').expect(404);
  });

  // A pub name is retired instead (test/http/retired-names.test.ts): caches keep pub files for a year.
  it('frees a priv name: it can be uploaded again with new bytes', async () => {
    await request(node.app).put('/upload/priv/acme/del/again.txt').send('first').expect(201);
    await request(node.app).delete('/priv/acme/del/again.txt').expect(204);
    const res = await request(node.app).put('/upload/priv/acme/del/again.txt').send('second').expect(201);
    expect(res.body.size).toBe(6);
    expect((await request(node.app).get('/priv/acme/del/again.txt').expect(200)).text).toBe('second');
  });

  it('drops a row whose file is already gone and still answers 404', async () => {
    await request(node.app).put('/upload/pub/acme/del/orphan.txt').send('x').expect(201);
    await node.ctx.storage.remove({ name: 'pub/acme/del/orphan.txt', visibility: 'pub', tenant: 'acme', segments: ['pub', 'acme', 'del', 'orphan.txt'] });
    await request(node.app).delete('/pub/acme/del/orphan.txt').expect(404);
    expect(await node.ctx.index.files.get('pub/acme/del/orphan.txt')).toBeUndefined();
  });

  it('answers a directory name with 404 and removes nothing', async () => {
    await request(node.app).put('/upload/pub/acme/dir/keep.txt').send('x').expect(201);
    await request(node.app).delete('/pub/acme/dir').expect(404);
    await request(node.app).get('/pub/acme/dir/keep.txt').expect(200);
  });
});

// Directories are the fs engine's own matter.
describe.runIf(TEST_ENGINE === 'fs')('DELETE prunes the directories it leaves empty (issue 13 finding 4)', () => {
  let node: TestNode;
  beforeAll(async () => { node = await testNode(); });
  afterAll(async () => { await node.close(); });

  it('after DELETE /pub/acme/dir/file, PUT /upload/pub/acme/dir works (no empty directory chain is left)', async () => {
    await request(node.app).put('/upload/pub/acme/dir/sub/file').send('x').expect(201);
    await request(node.app).put('/upload/pub/acme/keep.txt').send('k').expect(201);
    await request(node.app).delete('/pub/acme/dir/sub/file').expect(204);
    expect(existsSync(path.join(node.dataDir, 'files', 'pub/acme/dir'))).toBe(false);
    expect(existsSync(path.join(node.dataDir, 'files', 'pub/acme'))).toBe(true);
    const res = await request(node.app).put('/upload/pub/acme/dir').send('now a file');
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(Buffer.from((await request(node.app).get('/pub/acme/dir')).body).toString()).toBe('now a file');
    expect(existsSync(path.join(node.dataDir, 'files'))).toBe(true);
  });

  it('eviction prunes too', async () => {
    await request(node.app).put('/upload/pub/acme/cachedtickets/old/t.pdf').set('X-Expire-After', '1').send('t').expect(201);
    const summary = await node.ctx.evictor.run({ reason: 'admin', policies: true, maxBytes: 0, scope: { tenant: 'acme', class: 'cache' } });
    expect(summary.victims.map((v) => v.name)).toContain('pub/acme/cachedtickets/old/t.pdf');
    expect(existsSync(path.join(node.dataDir, 'files', 'pub/acme/cachedtickets'))).toBe(false);
  });

  it('uploads racing deletes in the same directory all land (link retries when its fresh parent was pruned)', async () => {
    const results = await Promise.all(Array.from({ length: 60 }, async (_, i) => {
      const put = await request(node.app).put(`/upload/pub/acme/race/d/f${i}`).send(`v${i}`);
      const del = await request(node.app).delete(`/pub/acme/race/d/f${i}`);
      return [put.status, del.status];
    }));
    expect(results.every(([put, del]) => put === 201 && del === 204)).toBe(true);
    expect(existsSync(path.join(node.dataDir, 'files', 'pub/acme/race'))).toBe(false);
  });
});
