import { readFileSync } from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MAX_HISTORY_POINTS } from '../../src/http/routes/usage-history.js';
import { REPO_ROOT } from '../helpers/spawn-server.js';
import { testNode, type TestNode } from '../helpers/test-node.js';

const TOKEN = 'monitoring-token-0123456789';
const HOUR = 3_600_000;
/** Every monitoring page and data endpoint: they share one access rule. */
const ENDPOINTS = ['/usage', '/usage/history', '/metrics', '/status', '/status/status.js', '/status/status.css'];
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('GET /status, /usage/history: the access rule of /usage', () => {
  let node: TestNode | undefined;
  afterEach(async () => { await node?.close(); node = undefined; });
  const closed = { auth: { tokens: [TOKEN], trustedNetworks: [], signingSecret: null } };

  it('refuse without credentials exactly like /usage, with a Basic challenge so a browser prompts', async () => {
    node = await testNode({ config: closed });
    const reference = await request(node.app).get('/usage').expect(401);
    expect(reference.body.error).toBe('unauthorized');
    for (const endpoint of ENDPOINTS) {
      const res = await request(node.app).get(endpoint).expect(401);
      expect(res.body, endpoint).toEqual(reference.body);
      expect(res.headers['content-type'], endpoint).toMatch(/application\/json/);
      expect(res.headers['www-authenticate'], endpoint).toMatch(/^Basic realm="[^"]+", charset="UTF-8"$/);
    }
  });

  it('take a bearer token, or HTTP Basic with the token as the password (any user name)', async () => {
    node = await testNode({ config: closed });
    for (const endpoint of ENDPOINTS) {
      await request(node.app).get(endpoint).set('Authorization', `Bearer ${TOKEN}`).expect(200);
      await request(node.app).get(endpoint).set('Authorization', basic('oncall', TOKEN)).expect(200);
      await request(node.app).get(endpoint).set('Authorization', basic('', TOKEN)).expect(200);
    }
  });

  it('refuse a wrong token in either form, and a token given as the user name', async () => {
    node = await testNode({ config: closed });
    for (const endpoint of ENDPOINTS) {
      for (const header of ['Bearer wrong-token-0123456789', basic('oncall', 'wrong-token-0123456789'), basic(TOKEN, ''), basic(TOKEN, 'x'), 'Basic !!!', `Basic ${Buffer.from(TOKEN).toString('base64')}`]) {
        const res = await request(node.app).get(endpoint).set('Authorization', header).expect(401);
        expect(res.body.error, `${endpoint} ${header}`).toBe('unauthorized');
      }
    }
  });

  it('are open with monitoring.public, and to trusted networks', async () => {
    node = await testNode({ config: { ...closed, monitoring: { public: true } } });
    for (const endpoint of ENDPOINTS) await request(node.app).get(endpoint).expect(200);
    await node.close();
    node = await testNode();
    for (const endpoint of ENDPOINTS) await request(node.app).get(endpoint).expect(200);
  });

  it('writes still refuse HTTP Basic: only the monitoring endpoints take it', async () => {
    node = await testNode({ config: closed });
    await request(node.app).put('/upload/pub/acme/a.txt').set('Authorization', basic('oncall', TOKEN)).send('x').expect(401);
  });
});

describe('GET /status serves the page from the node itself', () => {
  let node: TestNode;
  beforeAll(async () => { node = await testNode(); });
  afterAll(() => node.close());

  it('HTML, script and stylesheet with a same-origin-only CSP and no cache of stale code', async () => {
    const page = await request(node.app).get('/status').expect(200).expect('Content-Type', 'text/html; charset=utf-8');
    expect(page.text).toContain('<script src="/status/status.js" defer></script>');
    expect(page.headers['content-security-policy']).toMatch(/default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'/);
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.headers['cache-control']).toBe('no-cache');
    await request(node.app).get('/status/status.js').expect(200).expect('Content-Type', /text\/javascript/);
    await request(node.app).get('/status/status.css').expect(200).expect('Content-Type', /text\/css/);
    // Nothing else under /status/ is a page asset: the node answers as for any other unknown path.
    expect((await request(node.app).get('/status/other.js').expect(400)).body.error).toBe('invalid_name');
  });

  it('loads nothing from another origin (no CDN): the only absolute URL is the SVG namespace', () => {
    for (const file of ['status.html', 'status.js', 'status.css']) {
      const text = readFileSync(path.join(REPO_ROOT, 'static', file), 'utf8');
      const urls = text.match(/(https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}[^\s'"`)]*/gi) ?? [];
      expect(urls.filter((u) => u !== 'http://www.w3.org/2000/svg'), file).toEqual([]);
    }
  });
});

describe('GET /usage/history is bounded', () => {
  let node: TestNode;
  const now = Date.UTC(2026, 11, 1, 4, 0);
  const started = now;
  beforeAll(async () => {
    node = await testNode({ now: () => now });
    // 50 h of one-a-minute samples, filling 1 MiB a minute.
    for (let m = 50 * 60; m > 0; m--) await node.ctx.monitoring.history.record(started - m * 60_000, 1e9 + (3000 - m) * 1_048_576);
  });
  afterAll(() => node.close());

  it('48 h by default: samples averaged into at most MAX_HISTORY_POINTS points, oldest first, none older than 48 h', async () => {
    const res = await request(node.app).get('/usage/history').expect(200).expect('Cache-Control', 'no-store');
    expect(res.body).toMatchObject({ hours: 48, fromMs: now - 48 * HOUR, toMs: now, samples: 48 * 60 });
    expect(res.body.bucketMs).toBe(48 * HOUR / MAX_HISTORY_POINTS);
    const points = res.body.points as [number, number][];
    expect(points).toHaveLength(MAX_HISTORY_POINTS);
    expect(points[0][0]).toBeGreaterThanOrEqual(now - 48 * HOUR);
    for (let i = 1; i < points.length; i++) {
      expect(points[i][0]).toBeGreaterThan(points[i - 1][0]);
      expect(points[i][1]).toBeGreaterThan(points[i - 1][1]);
    }
    // A bucket of 4 one-minute samples averages to the mean of its samples.
    const firstFour = [48 * 60, 48 * 60 - 1, 48 * 60 - 2, 48 * 60 - 3].map((m) => 1e9 + (3000 - m) * 1_048_576);
    expect(points[0][1]).toBe(Math.round(firstFour.reduce((a, b) => a + b) / 4));
  });

  it('a short window is answered sample by sample', async () => {
    const res = await request(node.app).get('/usage/history?hours=2').expect(200);
    expect(res.body.bucketMs).toBeNull();
    expect(res.body.points).toHaveLength(120);
    expect(res.body.points.at(-1)).toEqual([started - 60_000, 1e9 + 2999 * 1_048_576]);
  });

  it('refuses a window beyond what the node keeps, or not a number', async () => {
    for (const hours of ['0', '49', '-1', 'abc', '1e3', '']) {
      const res = await request(node.app).get(`/usage/history?hours=${hours}`).expect(400);
      expect(res.body.error, hours).toBe('invalid_request');
    }
  });
});
