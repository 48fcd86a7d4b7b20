import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';

/** Writes `bytes` on one connection in one go; resolves with everything read until the server closes. */
function exchange(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(bytes));
    let text = '';
    socket.on('data', (d: Buffer) => { text += d.toString('latin1'); });
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
  });
}

const statuses = (text: string) => [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));

/** Issue 13 finding 5: requests pipelined on one connection take effect in order (RFC 9112 §9.3.2). */
describe('HTTP/1.1 pipelining (the built server)', () => {
  let server: SpawnedServer;
  beforeAll(async () => { server = await spawnServer({ config: { durability: 'fsync' } }); });
  afterAll(async () => { await server?.stop(); });

  it('PUT /upload/X immediately followed by GET /X on one connection answers 201 then 200 with the bytes', async () => {
    for (let i = 0; i < 8; i++) {
      const body = `pipelined body ${i} `.repeat(4000);
      const text = await exchange(server.port,
        `PUT /upload/pub/acme/pipe/p${i}.txt HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}` +
        `GET /pub/acme/pipe/p${i}.txt HTTP/1.1\r\nHost: x\r\n\r\n` +
        `DELETE /pub/acme/pipe/p${i}.txt HTTP/1.1\r\nHost: x\r\n\r\n` +
        `GET /pub/acme/pipe/p${i}.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      expect(statuses(text), text.slice(0, 2000)).toEqual([201, 200, 204, 404]);
      expect(text).toContain(body);
    }
  });
});
