import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signature, signedQuery } from '../../src/signing.js';
import { testNode, type TestNode } from '../helpers/test-node.js';

const SECRET = 'limits-signing-secret-0123456789';
const TOKEN = 'limits-token-0123456789';
const NOW = Date.UTC(2026, 10, 27, 12, 0, 0);
const NOW_S = NOW / 1000;
const DAY_S = 86_400;
const NAME = 'priv/acme/inv/a.pdf';

/** Issue 13 finding 7: signed URLs have a server-side cap and only canonical expires. */
describe('signed URL limits: auth.maxSignedTtl and canonical expires', () => {
  let node: TestNode;
  beforeAll(async () => {
    node = await testNode({ config: { auth: { tokens: [TOKEN], trustedNetworks: [], signingSecret: SECRET } }, now: () => NOW });
    await request(node.app).put(`/upload/${NAME}`).set('Authorization', `Bearer ${TOKEN}`).send('%PDF a').expect(201);
  });
  afterAll(async () => { await node.close(); });

  it('accepts an expires within the default 7d cap', async () => {
    await request(node.app).get(`/${NAME}?${signedQuery(SECRET, NAME, NOW_S + 7 * DAY_S)}`).expect(200);
  });

  it('refuses a validly signed expires further ahead than auth.maxSignedTtl with 403 signature_invalid naming the key', async () => {
    for (const expires of [NOW_S + 7 * DAY_S + 60, 999_999_999_999]) {
      const res = await request(node.app).get(`/${NAME}?${signedQuery(SECRET, NAME, expires)}`);
      expect(res.status).toBe(403);
      expect(res.body).toMatchObject({ error: 'signature_invalid' });
      expect(res.body.message).toContain('auth.maxSignedTtl');
    }
  });

  it('refuses a non-canonical expires (leading zero, sign) carrying the signature of the canonical one', async () => {
    const expires = NOW_S + 3600;
    const sig = signature(SECRET, NAME, expires);
    for (const raw of [`0${expires}`, `00${expires}`, `+${expires}`, `${expires}.0`, ` ${expires}`]) {
      const res = await request(node.app).get(`/${NAME}`).query(`expires=${encodeURIComponent(raw)}&sig=${sig}`);
      expect(res.status, raw).toBe(403);
      expect(res.body.error).toBe('signature_invalid');
    }
    await request(node.app).get(`/${NAME}?expires=${expires}&sig=${sig}`).expect(200);
  });
});

describe('auth.maxSignedTtl is configurable', () => {
  it('a 30d cap accepts 20 days', async () => {
    const node = await testNode({ config: { auth: { tokens: [TOKEN], trustedNetworks: [], signingSecret: SECRET, maxSignedTtl: '30d' } }, now: () => NOW });
    try {
      await request(node.app).put(`/upload/${NAME}`).set('Authorization', `Bearer ${TOKEN}`).send('%PDF a').expect(201);
      await request(node.app).get(`/${NAME}?${signedQuery(SECRET, NAME, NOW_S + 20 * DAY_S)}`).expect(200);
    } finally {
      await node.close();
    }
  });
});
