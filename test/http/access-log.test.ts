import { PassThrough } from 'node:stream';
import request from 'supertest';
import winston from 'winston';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testNode, type TestNode } from '../helpers/test-node.js';
import { tokenId } from '../../src/token-id.js';

const TOKEN = 'log-token-0123456789abcdef';
const LOOPBACK = ['127.0.0.0/8', '::1/128'];

/** A winston logger at 'silly' that keeps every JSON line. */
function capturedLogger(): { logger: winston.Logger; lines: () => Record<string, unknown>[]; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => { text += chunk.toString(); });
  const logger = winston.createLogger({ level: 'silly', format: winston.format.json(), transports: [new winston.transports.Stream({ stream })] });
  return { logger, text: () => text, lines: () => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

async function lineOf(logs: ReturnType<typeof capturedLogger>, requestId: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 100; i++) {
    const line = logs.lines().find((l) => l.requestId === requestId && l.message === 'request');
    if (line) return line;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no request line for ${requestId}:\n${logs.text()}`);
}

describe.each([
  ['without trusted proxies', [] as string[]],
  ['behind a trusted proxy', LOOPBACK],
])('access lines %s', (_what, trustedProxies) => {
  let node: TestNode;
  const logs = capturedLogger();
  beforeAll(async () => {
    node = await testNode({ config: { auth: { tokens: [TOKEN], trustedNetworks: [], signingSecret: null }, http: { trustedProxies } }, logger: logs.logger });
  });
  afterAll(async () => { await node.close(); });

  it('carry the client address (X-Forwarded-For only from a trusted proxy), the user agent and the token id, never the token', async () => {
    await request(node.app).put('/upload/pub/acme/a.txt').set('Authorization', `Bearer ${TOKEN}`).set('User-Agent', 'uploader/1.0')
      .set('X-Forwarded-For', '198.51.100.7, 203.0.113.9').set('X-Request-Id', `put-${trustedProxies.length}`).send('hello').expect(201);
    const line = await lineOf(logs, `put-${trustedProxies.length}`);
    if (trustedProxies.length) expect(line.client).toBe('203.0.113.9');
    else expect(['127.0.0.1', '::1']).toContain(line.client);
    expect(line.userAgent).toBe('uploader/1.0');
    expect(line.tokenId).toBe(tokenId(TOKEN));
    expect(line.tokenId).toMatch(/^tok:[0-9a-f]{8}$/);
    expect(logs.text()).not.toContain(TOKEN);
  });

  it('reads answered by the fast path carry the same fields', async () => {
    await request(node.app).get('/pub/acme/a.txt').set('User-Agent', 'browser/2').set('X-Forwarded-For', '203.0.113.10').set('X-Request-Id', `get-${trustedProxies.length}`).expect(200);
    const line = await lineOf(logs, `get-${trustedProxies.length}`);
    expect(line.client).toEqual(trustedProxies.length ? '203.0.113.10' : expect.stringMatching(/^(127\.0\.0\.1|::1)$/));
    expect(line.userAgent).toBe('browser/2');
    expect(line.tokenId).toBeUndefined();
    expect(line.level).toBe('info');
  });

  it('probe and scrape lines are debug; a failing probe is not', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics']) {
      const id = `${path.slice(1)}-${trustedProxies.length}`;
      await request(node.app).get(path).set('Authorization', `Bearer ${TOKEN}`).set('X-Request-Id', id).expect(200);
      expect((await lineOf(logs, id)).level, path).toBe('debug');
    }
    await request(node.app).get('/metrics').set('X-Request-Id', `metrics-401-${trustedProxies.length}`).expect(401);
    expect((await lineOf(logs, `metrics-401-${trustedProxies.length}`)).level).toBe('info');
  });
});
