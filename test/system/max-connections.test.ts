import { afterAll, describe, expect, it } from 'vitest';
import { spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';
import { rawSocket, type RawSocket } from '../helpers/raw-socket.js';

/** Sends GET /healthz on the connection and waits for the answer's status line count to grow. */
async function get(conn: RawSocket, timeoutMs = 5000): Promise<string> {
  const before = conn.received().split('HTTP/1.1 ').length;
  conn.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  const deadline = Date.now() + timeoutMs;
  while (conn.received().split('HTTP/1.1 ').length === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  return conn.received().split('HTTP/1.1 ').at(-1)!.slice(0, 3);
}

describe('http.maxConnections on a real socket', () => {
  const started: SpawnedServer[] = [];
  afterAll(async () => { for (const server of started) await server.kill9(); });

  it('refuses a connection past the cap, without a byte, and keeps serving the others', async () => {
    const server = await spawnServer({ config: { http: { maxConnections: 3, keepAliveTimeout: '1s' } } });
    started.push(server);
    // The readiness check's fetch keeps its connection open until the keep-alive timeout closes it.
    await new Promise((r) => setTimeout(r, 1500));
    const held = await Promise.all([0, 1, 2].map(() => rawSocket(server.port)));
    for (const conn of held) expect(await get(conn)).toBe('200');

    const extra = await rawSocket(server.port);
    extra.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await extra.closed;
    expect(extra.received()).toBe('');

    // The three connections under the cap go on being served on the same sockets.
    for (const conn of held) expect(await get(conn)).toBe('200');

    // Once one leaves, a new connection is served again, and the refusal was counted and logged.
    held[0].socket.end();
    await held[0].closed;
    let metrics = '';
    for (let i = 0; i < 100 && !metrics; i++) {
      try { metrics = await (await fetch(`${server.url}/metrics`)).text(); } catch { await new Promise((r) => setTimeout(r, 50)); }
    }
    expect(metrics).toMatch(/^nanocdn_http_connections_refused_total 1$/m);
    expect(server.output()).toContain('connection refused: 3 connections open (http.maxConnections)');
    for (const conn of held.slice(1)) conn.socket.destroy();
  });

  it('under the cap nothing changes: 50 connections at once are all served', async () => {
    const server = await spawnServer();
    started.push(server);
    const conns = await Promise.all(Array.from({ length: 50 }, () => rawSocket(server.port)));
    const statuses = await Promise.all(conns.map((conn) => get(conn)));
    expect(statuses).toEqual(Array(50).fill('200'));
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/^nanocdn_http_connections_refused_total 0$/m);
    for (const conn of conns) conn.socket.destroy();
  });

  it('warns at start when the open files limit is below what maxConnections needs', async () => {
    // 2 × 10,000,000 + headroom descriptors are above any real ulimit -n.
    const server = await spawnServer({ config: { http: { maxConnections: 10_000_000 } } });
    started.push(server);
    const line = server.output().split('\n').find((l) => l.includes('open files limit (ulimit -n)'));
    expect(line).toBeDefined();
    expect(JSON.parse(line!)).toMatchObject({ level: 'warn', needed: 20_000_256, maxConnections: 10_000_000 });
  });
});
