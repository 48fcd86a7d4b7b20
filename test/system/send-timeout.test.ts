// download.sendTimeout (issue 17): a reader that stops reading is cut after
// the timeout and its file descriptor closed, a slow reader that keeps
// reading is not, and other clients are served meanwhile. A real server
// process (its /proc/<pid>/fd shows what it holds open).
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';

const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function until(condition: () => boolean, timeoutMs = 20_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return condition();
}

/** A GET on a raw socket whose body is read only as `read` says; resolves `closed` when the server cuts it. */
function reader(port: number, target: string): { socket: net.Socket; received: () => number; closed: Promise<void> } {
  const socket = net.connect(port, '127.0.0.1');
  let received = 0;
  socket.on('data', (chunk: Buffer) => { received += chunk.length; });
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(`GET ${target} HTTP/1.1\r\nHost: test\r\n\r\n`);
  return { socket, received: () => received, closed };
}

describe('download.sendTimeout', () => {
  let server: SpawnedServer;
  const big = randomBytes(40 * MiB);
  const small = randomBytes(20_000);

  beforeAll(async () => {
    server = await spawnServer({ config: { durability: 'none', download: { sendTimeout: '3s' } } });
    for (const [name, body] of [['big.bin', big], ['small.bin', small]] as const) {
      const res = await fetch(`${server.url}/upload/pub/acme/${name}`, { method: 'PUT', body });
      expect(res.status).toBe(201);
    }
  });
  afterAll(async () => {
    await server?.stop();
    if (server) rmSync(server.dataDir, { recursive: true, force: true });
  });

  /** What the server's descriptors point at (/proc/<pid>/fd): files by path, sockets as socket:[inode]. */
  const serverFds = () => readdirSync(`/proc/${server.pid}/fd`).map((fd) => {
    try { return readlinkSync(`/proc/${server.pid}/fd/${fd}`); } catch { return ''; }
  });
  const bigFileFds = () => serverFds().filter((target) => target.endsWith('/files/pub/acme/big.bin')).length;
  /** Whether the server holds the socket of its side of the connection from the client's `localPort`. */
  const holdsConnection = (localPort: number) => {
    const hex = (port: number) => port.toString(16).toUpperCase().padStart(4, '0');
    const inodes = readFileSync(`/proc/${server.pid}/net/tcp`, 'utf8').split('\n').slice(1)
      .map((line) => line.trim().split(/\s+/))
      .filter((f) => f.length > 9 && f[1].endsWith(`:${hex(server.port)}`) && f[2].endsWith(`:${hex(localPort)}`))
      .map((f) => `socket:[${f[9]}]`);
    const fds = serverFds();
    return inodes.some((inode) => fds.includes(inode));
  };
  const timeoutsCounted = async () => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('nanocdn_send_timeouts_total '));
    return Number(line?.split(' ')[1] ?? NaN);
  };

  it('cuts a reader that stopped reading and closes its file, serving others meanwhile; counted in the metrics', async () => {
    const before = await timeoutsCounted();
    const stalled = reader(server.port, '/pub/acme/big.bin');
    stalled.socket.pause();
    await new Promise((resolve) => stalled.socket.once('connect', resolve));
    expect(await until(() => bigFileFds() === 1)).toBe(true);
    expect(holdsConnection(stalled.socket.localPort!)).toBe(true);
    // While it stalls, others are answered.
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${server.url}/pub/acme/small.bin`);
      expect(res.status).toBe(200);
      expect(sha(Buffer.from(await res.arrayBuffer()))).toBe(sha(small));
    }
    // The server cuts it: file and socket closed (the paused client cannot see the end before it reads).
    expect(await until(() => bigFileFds() === 0, 30_000)).toBe(true);
    expect(await until(() => !holdsConnection(stalled.socket.localPort!))).toBe(true);
    expect(await timeoutsCounted()).toBe(before + 1);
    stalled.socket.resume();
    await stalled.closed;
    expect(stalled.received()).toBeLessThan(big.length);
  });

  it('does not cut a slow reader that keeps reading', async () => {
    const slow = reader(server.port, '/pub/acme/big.bin');
    let cut = false;
    void slow.closed.then(() => { cut = true; });
    // Bursts of 2 MiB, then a pause of 500 ms: never anywhere near 3 s without taking bytes.
    let burst = 0;
    slow.socket.on('data', (chunk: Buffer) => {
      burst += chunk.length;
      if (burst < 2 * MiB) return;
      burst = 0;
      slow.socket.pause();
      setTimeout(() => slow.socket.resume(), 500);
    });
    const deadline = Date.now() + 7000;
    while (Date.now() < deadline && !cut) await new Promise((r) => setTimeout(r, 100));
    expect(cut).toBe(false);
    expect(slow.received()).toBeGreaterThan(4 * MiB);
    slow.socket.destroy();
    expect(await until(() => bigFileFds() === 0)).toBe(true);
  });
});
