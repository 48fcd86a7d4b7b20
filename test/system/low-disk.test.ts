import { existsSync, statfsSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SpawnedServer } from '../helpers/spawn-server.js';
import { cacheNodeOnTmpfs, type CacheNodeOnTmpfs } from '../helpers/cache-node-on-tmpfs.js';
import { canMountTmpfs, requirement, type Tmpfs } from '../helpers/system-tools.js';

const MiB = 1024 * 1024;
const HIGH = 70;
const LOW = 50;
const canRun = requirement('mounting a tmpfs (root)', canMountTmpfs(), 'run as root where mount -t tmpfs is permitted');

/** A request on its own connection (the server may close idle kept-alive ones while we wait). */
function send(method: string, url: string, body?: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false, headers: body ? { 'Content-Length': body.length } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => { text += d; }).on('end', () => resolve({ status: res.statusCode!, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe.runIf(canRun)('low disk on a real tmpfs', () => {
  let node: CacheNodeOnTmpfs;
  let fs: Tmpfs;
  let server: SpawnedServer;
  const usedPercent = () => node.usedPercent();

  beforeAll(async () => {
    node = await cacheNodeOnTmpfs(64, { high: HIGH, low: LOW }, { logLevel: 'info' });
    ({ tmpfs: fs, server } = node);
  });
  afterAll(async () => {
    await node?.close();
  });

  it('filling past the high watermark evicts cache files, least recently used first, down to the low watermark; never a default file', async () => {
    const defaults = Array.from({ length: 4 }, (_, i) => `pub/acme/docs/contract-${i}.pdf`);
    for (const name of defaults) expect((await send('PUT', `${server.url}/upload/${name}`, Buffer.alloc(2 * MiB, 1))).status).toBe(201);

    // Enough 1 MiB cache files, over two tenants, to pass the high watermark by a margin.
    const st = statfsSync(fs.dir);
    const count = Math.ceil(((HIGH + 5) / 100 * st.blocks - (st.blocks - st.bavail)) * st.bsize / MiB);
    const cache = Array.from({ length: count }, (_, i) => `pub/${i % 2 ? 'globex' : 'acme'}/cachedtickets/t-${String(i).padStart(3, '0')}.pdf`);
    for (const name of cache) {
      const res = await send('PUT', `${server.url}/upload/${name}`, Buffer.alloc(MiB, 2));
      expect(res.status, res.body).toBe(201);
    }

    // The trigger runs on the guard's state change; poll for its effect.
    const deadline = Date.now() + 60_000;
    let usage: { status: string; disk: { usedPercent: number }; lastEviction: { reason: string; files: number } | null };
    for (;;) {
      usage = JSON.parse((await send('GET', `${server.url}/usage`)).body);
      if (usage.status === 'ok' && usage.lastEviction) break;
      if (Date.now() > deadline) throw new Error(`no low-disk eviction: ${JSON.stringify(usage)}\n${server.output()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(usage.lastEviction).toMatchObject({ reason: 'low-disk' });
    // Uploads went on while eviction ran, so the disk may have filled again a little since;
    // the guard turned ok again only once eviction had brought it below the low watermark.
    const lines = server.output().split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>);
    const backToOk = lines.filter((line) => line.message === 'disk state warning -> ok');
    expect(backToOk.length).toBeGreaterThan(0);
    expect(backToOk.at(-1)!.usedPercent as number).toBeLessThanOrEqual(LOW);
    expect(lines.some((line) => line.message === 'eviction run' && line.reason === 'low-disk')).toBe(true);
    expect(usedPercent()).toBeLessThan(HIGH);

    const present = (name: string) => existsSync(path.join(fs.dir, 'files', name));
    for (const name of defaults) expect(present(name), name).toBe(true);
    const gone = cache.filter((name) => !present(name));
    expect(gone.length).toBeGreaterThan(0);
    // Least recently used first: the evicted files are the oldest uploads, across both tenants.
    expect(gone).toEqual(cache.slice(0, gone.length));
    expect(new Set(gone.map((name) => name.split('/')[1]))).toEqual(new Set(['acme', 'globex']));
  });
});
