import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reconcile } from '../../src/index/reconcile.js';
import { TEST_ENGINE, testNode, type TestNode } from '../helpers/test-node.js';

/** Issue 13 finding 2: links planted inside the data dir are never followed. */
describe.runIf(TEST_ENGINE === 'fs')('symbolic links under files/ are never followed', () => {
  const token = 'symlink-token-0123456789';
  const auth = { Authorization: `Bearer ${token}` };
  const outside = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-outside-'));
  let node: TestNode;
  const files = () => path.join(node.dataDir, 'files');

  beforeAll(async () => {
    node = await testNode({ config: { auth: { tokens: [token], trustedNetworks: [], signingSecret: null } } });
    writeFileSync(path.join(outside, 'secret.txt'), 'outside the data dir');
    await request(node.app).put('/upload/priv/acme/p1').set(auth).send('private bytes').expect(201);
    await request(node.app).put('/upload/pub/acme/ok.txt').set(auth).send('fine').expect(201);
    mkdirSync(path.join(files(), 'pub'), { recursive: true });
    symlinkSync(outside, path.join(files(), 'pub/evil'));
    symlinkSync('../../priv/acme/p1', path.join(files(), 'pub/acme/x'));
  });
  afterAll(async () => {
    await node.close();
    rmSync(outside, { recursive: true, force: true });
  });

  it('GET and HEAD do not serve a file through a linked directory (files/pub/evil -> /outside)', async () => {
    for (const query of ['', '?x=1']) {
      const res = await request(node.app).get(`/pub/evil/secret.txt${query}`);
      expect(res.status).toBe(404);
      expect(res.text).not.toContain('outside the data dir');
    }
    expect((await request(node.app).get('/pub/evil/secret.txt').set('Range', 'bytes=0-3')).status).toBe(404);
    expect((await request(node.app).head('/pub/evil/secret.txt')).status).toBe(404);
  });

  it('a pub link to a priv file (pub/acme/x -> ../../priv/acme/p1) does not serve the priv bytes without auth', async () => {
    const plain = await request(node.app).get('/pub/acme/x');
    expect(plain.status).toBe(404);
    expect(JSON.stringify(plain.body)).not.toContain('private bytes');
    expect((await request(node.app).get('/pub/acme/x').set('Range', 'bytes=0-')).status).toBe(404);
    expect((await request(node.app).get('/pub/acme/x').set('If-None-Match', '"x"')).status).toBe(404);
  });

  it('an indexed name whose file was replaced by a link is not served through it', async () => {
    await request(node.app).put('/upload/pub/acme/swapped.txt').set(auth).send('original').expect(201);
    const file = path.join(files(), 'pub/acme/swapped.txt');
    unlinkSync(file);
    symlinkSync(path.join(outside, 'secret.txt'), file);
    const res = await request(node.app).get('/pub/acme/swapped.txt');
    expect(res.status).toBe(404);
    expect(res.text).not.toContain('outside the data dir');
  });

  it('PUT through a linked parent is refused and creates nothing outside', async () => {
    const res = await request(node.app).put('/upload/pub/evil/planted.txt').set(auth).send('planted');
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'invalid_name', name: 'pub/evil/planted.txt' });
    expect(existsSync(path.join(outside, 'planted.txt'))).toBe(false);
    const deeper = await request(node.app).put('/upload/pub/evil/sub/dir/planted.txt').set(auth).send('planted');
    expect(deeper.status).toBe(400);
    expect(existsSync(path.join(outside, 'sub'))).toBe(false);
    expect(readFileSync(path.join(outside, 'secret.txt'), 'utf8')).toBe('outside the data dir');
  });

  it('DELETE through a linked parent, or of a link, removes nothing', async () => {
    expect((await request(node.app).delete('/pub/evil/secret.txt').set(auth)).status).toBe(404);
    expect(existsSync(path.join(outside, 'secret.txt'))).toBe(true);
    expect((await request(node.app).delete('/pub/acme/x').set(auth)).status).toBe(404);
    expect(existsSync(path.join(files(), 'priv/acme/p1'))).toBe(true);
  });

  it('reconcile reports the links as skipped and indexes nothing through them', async () => {
    const drift = await reconcile(node.ctx.storage, node.ctx.index.files, node.ctx.classifier, { now: Date.now, checkOnly: true });
    expect(drift.skipped.map((s) => s.name).sort()).toEqual(['pub/acme/swapped.txt', 'pub/acme/x', 'pub/evil']);
    expect(drift.added).toEqual([]);
  });

  it('regular files still work', async () => {
    expect((await request(node.app).get('/pub/acme/ok.txt')).text).toBe('fine');
    expect(Buffer.from((await request(node.app).get('/priv/acme/p1').set(auth)).body).toString()).toBe('private bytes');
  });
});
