import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testNode, type TestNode } from '../helpers/test-node.js';
import { listen, pause, rawRequest, spoolEntries, storedBytes, type Listening } from './raw-http.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function chunksOf(body: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < body.length; off += size) out.push(body.subarray(off, off + size));
  return out;
}

describe('concurrent uploads', () => {
  let node: TestNode;
  let server: Listening;
  beforeAll(async () => {
    node = await testNode();
    server = await listen(node.app);
  });
  afterAll(async () => {
    await server.close();
    await node.close();
  });

  it.each([['with Content-Length', true], ['chunked', false]])('of one name (%s): exactly one 201, one 409, the stored bytes are one body whole', async (_what, withLength) => {
    const name = `pub/acme/race/${withLength ? 'cl' : 'chunked'}.bin`;
    const a = randomBytes(200_000);
    const b = randomBytes(200_000);
    // Both are admitted (the name is free when their headers arrive), then
    // trickle their bodies so the writes overlap.
    let started = 0;
    const bothStarted = new Promise<void>((resolve) => {
      const check = () => { if (++started === 2) resolve(); };
      setImmediate(check);
      setImmediate(check);
    });
    const send = (body: Buffer) => rawRequest(server.port, {
      method: 'PUT', path: `/upload/${name}`,
      headers: withLength ? { 'content-length': body.length } : {},
      body: chunksOf(body, 20_000),
      between: async () => { await bothStarted; await pause(5); },
    });
    const [ra, rb] = await Promise.all([send(a), send(b)]);
    const statuses = [ra.status, rb.status].sort();
    expect(statuses).toEqual([201, 409]);
    const loser = ra.status === 409 ? ra : rb;
    expect(loser.headers.location).toBe(`/${name}`);
    expect(loser.json.error).toBe('exists');
    const stored = sha(await storedBytes(node, name));
    const winner = ra.status === 201 ? a : b;
    expect(stored).toBe(sha(winner));
    expect((await node.ctx.index.files.get(name))?.sha256).toBe(stored);
    expect(await spoolEntries(node)).toBe(0);
    expect(node.ctx.guard.snapshot().reservedBytes).toBe(0);
  });

  it('of twenty different names all succeed, each with its own bytes', async () => {
    const bodies = Array.from({ length: 20 }, () => randomBytes(30_000));
    const results = await Promise.all(bodies.map((body, i) => rawRequest(server.port, {
      method: 'PUT', path: `/upload/pub/t${i % 4}/many/${i}.bin`, headers: { 'content-length': body.length }, body: chunksOf(body, 10_000),
    })));
    expect(results.map((r) => r.status)).toEqual(bodies.map(() => 201));
    for (const [i, body] of bodies.entries()) {
      expect(sha(await storedBytes(node, `pub/t${i % 4}/many/${i}.bin`))).toBe(sha(body));
    }
    expect(await spoolEntries(node)).toBe(0);
  });
});
