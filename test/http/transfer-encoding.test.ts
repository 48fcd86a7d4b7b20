import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isStored, listen, spoolEntries, type Listening } from './raw-http.js';
import { testNode, type TestNode } from '../helpers/test-node.js';

/** Sends raw bytes on one connection; resolves with everything read until the server closes it. */
function exchange(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(bytes));
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (/\r\n\r\n[\s\S]*\}/.test(text)) socket.end();
    });
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
    setTimeout(() => socket.end(), 3000).unref();
  });
}

/** Issue 13 finding 8: a transfer coding other than exactly `chunked` is 501 (RFC 9112 §6.1), nothing stored. */
describe('Transfer-Encoding other than chunked', () => {
  let node: TestNode;
  let server: Listening;
  beforeAll(async () => { node = await testNode(); server = await listen(node.app); });
  afterAll(async () => { await server.close(); await node.close(); });

  const chunkedBody = '5\r\nhello\r\n0\r\n\r\n';

  for (const coding of ['gzip, chunked', 'deflate, chunked', 'GZIP,chunked', 'x-custom, chunked']) {
    it(`"${coding}" answers 501 not_implemented JSON and stores nothing`, async () => {
      const name = `pub/acme/te/${coding.replace(/\W+/g, '-')}.bin`;
      const text = await exchange(server.port, `PUT /upload/${name} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ${coding}\r\n\r\n${chunkedBody}`);
      expect(text, text).toMatch(/^HTTP\/1\.1 501 /);
      expect(text).toContain('"error":"not_implemented"');
      expect(await isStored(node, name)).toBe(false);
      expect(await node.ctx.index.files.get(name)).toBeUndefined();
      expect(await spoolEntries(node)).toBe(0);
    });
  }

  it('plain chunked still stores', async () => {
    const text = await exchange(server.port, `PUT /upload/pub/acme/te/plain.bin HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${chunkedBody}`);
    expect(text).toMatch(/^HTTP\/1\.1 201 /);
  });
});
