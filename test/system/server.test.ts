import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';
import { indexedFiles } from '../helpers/index-file.js';
import { rawSocket } from '../helpers/raw-socket.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Polls until check() is true (or the deadline passes); the assertion follows it. */
async function eventually(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
}

const tmpEntries = (server: SpawnedServer) => readdirSync(path.join(server.dataDir, 'tmp'));
const fileExists = (server: SpawnedServer, name: string) => existsSync(path.join(server.dataDir, 'files', name));

describe('the built server on a real socket', () => {
  const started: SpawnedServer[] = [];
  afterAll(async () => {
    for (const server of started) await server.kill9();
  });
  const start = async (dataDir?: string) => {
    const server = await spawnServer({ dataDir });
    started.push(server);
    return server;
  };

  const body = randomBytes(256 * 1024);
  let server: SpawnedServer;

  it('uploads and downloads through a real socket', async () => {
    server = await start();
    const put = await fetch(`${server.url}/upload/pub/acme/sys/a.bin`, { method: 'PUT', body });
    expect(put.status).toBe(201);
    expect(put.headers.get('location')).toBe('/pub/acme/sys/a.bin');
    expect(await put.json()).toEqual({ name: 'pub/acme/sys/a.bin', url: '/pub/acme/sys/a.bin', size: body.length, sha256: sha(body) });
    const get = await fetch(`${server.url}/pub/acme/sys/a.bin`);
    expect(get.status).toBe(200);
    expect(get.headers.get('etag')).toBe(`"${sha(body)}"`);
    expect(sha(Buffer.from(await get.arrayBuffer()))).toBe(sha(body));
    const again = await fetch(`${server.url}/upload/pub/acme/sys/a.bin`, { method: 'PUT', body: 'retry' });
    expect(again.status).toBe(409);
    expect(again.headers.get('location')).toBe('/pub/acme/sys/a.bin');
  });

  it('leaves no file and no tmp entry when a client aborts its body half-way', async () => {
    const { socket } = await rawSocket(server.port);
    socket.write(`PUT /upload/pub/acme/sys/aborted.bin HTTP/1.1\r\nHost: x\r\nContent-Length: ${1024 * 1024}\r\n\r\n`);
    socket.write(randomBytes(300 * 1024));
    // The write has begun once a tmp entry shows; then the client goes away.
    await eventually(() => tmpEntries(server).length > 0);
    socket.destroy();
    await eventually(() => tmpEntries(server).length === 0);
    expect(tmpEntries(server)).toEqual([]);
    expect(fileExists(server, 'pub/acme/sys/aborted.bin')).toBe(false);
    // The name is free and the node still works.
    expect((await fetch(`${server.url}/upload/pub/acme/sys/aborted.bin`, { method: 'PUT', body: 'whole' })).status).toBe(201);
  });

  it('answers a 100-continue client with 409 for an existing name, without asking for the body', async () => {
    const { socket, received, closed } = await rawSocket(server.port);
    socket.write(`PUT /upload/pub/acme/sys/a.bin HTTP/1.1\r\nHost: x\r\nContent-Length: ${1024 * 1024}\r\nExpect: 100-continue\r\n\r\n`);
    await eventually(() => received().includes('\r\n\r\n') && received().includes('"error"'));
    const text = received();
    expect(text).not.toContain('100 Continue');
    expect(text).toMatch(/^HTTP\/1\.1 409 /);
    expect(text).toMatch(/\r\nlocation: \/pub\/acme\/sys\/a\.bin\r\n/i);
    expect(text).toMatch(/\r\nconnection: close\r\n/i);
    // The server closes the connection: the unsent body is never read.
    await closed;
  });

  it('delivers the 409 to a client that sends its whole body at once (lingering close, no RST)', async () => {
    const big = Buffer.alloc(8 * 1024 * 1024);
    const attempt = () => new Promise<string>((resolve) => {
      const socket = net.connect(server.port, '127.0.0.1');
      let text = '';
      socket.on('data', (d: Buffer) => { text += d.toString('latin1'); });
      socket.on('error', () => resolve(text));
      socket.on('close', () => resolve(text));
      socket.write(`PUT /upload/pub/acme/sys/a.bin HTTP/1.1\r\nHost: x\r\nContent-Length: ${big.length}\r\n\r\n`);
      socket.write(big);
    });
    // Closing at once with the body unread made the kernel send a RST, and
    // about half of these clients lost the response (EPIPE/ECONNRESET).
    for (let i = 0; i < 8; i++) expect(await attempt()).toMatch(/^HTTP\/1\.1 409 /);
  });

  it('sends 100 Continue to an admitted client, then stores its body', async () => {
    const payload = randomBytes(64 * 1024);
    const { socket, received } = await rawSocket(server.port);
    socket.write(`PUT /upload/pub/acme/sys/continued.bin HTTP/1.1\r\nHost: x\r\nContent-Length: ${payload.length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`);
    await eventually(() => received().includes('100 Continue'));
    expect(received()).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\n$/);
    socket.write(payload);
    await eventually(() => received().includes('"sha256"'));
    expect(received()).toMatch(/HTTP\/1\.1 201 /);
    expect(received()).toContain(sha(payload));
    socket.destroy();
  });

  it('exits 0 on SIGTERM', async () => {
    expect(await server.stop()).toBe(0);
  });

  it('finds the files and the index again after a restart on the same data dir', async () => {
    const restarted = await start(server.dataDir);
    const get = await fetch(`${restarted.url}/pub/acme/sys/a.bin`);
    expect(get.status).toBe(200);
    // The strong ETag is the sha256 from the index row, so the row survived.
    expect(get.headers.get('etag')).toBe(`"${sha(body)}"`);
    expect(sha(Buffer.from(await get.arrayBuffer()))).toBe(sha(body));
    expect((await fetch(`${restarted.url}/upload/pub/acme/sys/a.bin`, { method: 'PUT', body: 'x' })).status).toBe(409);
    expect(await restarted.stop()).toBe(0);
    const names = (await indexedFiles(server.dataDir)).map((row) => row.name);
    expect(names).toEqual(['pub/acme/sys/a.bin', 'pub/acme/sys/aborted.bin', 'pub/acme/sys/continued.bin']);
  });

  it('on SIGTERM lets an in-flight upload finish within the grace, then exits 0', async () => {
    const graceful = await spawnServer({ config: { http: { shutdownGrace: '30s' } } });
    started.push(graceful);
    const payload = randomBytes(200 * 1024);
    const { socket, received } = await rawSocket(graceful.port);
    socket.write(`PUT /upload/pub/acme/sys/graceful.bin HTTP/1.1\r\nHost: x\r\nContent-Length: ${payload.length}\r\n\r\n`);
    socket.write(payload.subarray(0, 100 * 1024));
    await eventually(() => tmpEntries(graceful).length > 0);
    const exited = graceful.stop();
    await new Promise((r) => setTimeout(r, 100));
    socket.write(payload.subarray(100 * 1024));
    await eventually(() => received().includes('"sha256"'));
    expect(received()).toMatch(/^HTTP\/1\.1 201 /);
    expect(await exited).toBe(0);
    expect(fileExists(graceful, 'pub/acme/sys/graceful.bin')).toBe(true);
    expect(tmpEntries(graceful)).toEqual([]);
    socket.destroy();
  });

  it('on SIGTERM aborts an upload still running after the grace, leaves nothing, exits 0', async () => {
    const impatient = await spawnServer({ config: { http: { shutdownGrace: '500ms' } } });
    started.push(impatient);
    const { socket, received, closed } = await rawSocket(impatient.port);
    socket.write(`PUT /upload/pub/acme/sys/cut.bin HTTP/1.1\r\nHost: x\r\nContent-Length: ${1024 * 1024}\r\n\r\n`);
    socket.write(randomBytes(300 * 1024));
    await eventually(() => tmpEntries(impatient).length > 0);
    expect(await impatient.stop()).toBe(0);
    await closed;
    // The client gets a 503 shutting_down, or (server.ts closes all connections
    // as soon as the aborted upload settles, racing its error response) a
    // closed connection: either way a retry elsewhere. Never a success.
    if (received() !== '') {
      expect(received()).toMatch(/^HTTP\/1\.1 503 /);
      expect(received()).toContain('"shutting_down"');
    }
    expect(tmpEntries(impatient)).toEqual([]);
    expect(fileExists(impatient, 'pub/acme/sys/cut.bin')).toBe(false);
  });

  it('after kill -9 mid-upload, a restart sweeps the tmp entry and nothing is visible under the name', async () => {
    const victim = await start();
    const { socket } = await rawSocket(victim.port);
    socket.write(`PUT /upload/pub/acme/sys/crashed.bin HTTP/1.1\r\nHost: x\r\nContent-Length: ${1024 * 1024}\r\n\r\n`);
    socket.write(randomBytes(300 * 1024));
    await eventually(() => tmpEntries(victim).length > 0);
    expect(tmpEntries(victim).length).toBeGreaterThan(0);
    await victim.kill9();
    socket.destroy();
    const restarted = await start(victim.dataDir);
    expect(tmpEntries(restarted)).toEqual([]);
    expect(fileExists(restarted, 'pub/acme/sys/crashed.bin')).toBe(false);
    expect((await fetch(`${restarted.url}/pub/acme/sys/crashed.bin`)).status).toBe(404);
    expect(await restarted.stop()).toBe(0);
  });
});
