import { spawnSync } from 'node:child_process';
import { existsSync, statfsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SpawnedServer } from '../helpers/spawn-server.js';
import { cacheNodeOnTmpfs, type CacheNodeOnTmpfs } from '../helpers/cache-node-on-tmpfs.js';
import { canMountTmpfs, hasTool, requirement, type Tmpfs } from '../helpers/system-tools.js';

/**
 * The outage of issue 13 finding 1, re-enacted: the data disk is filled to
 * 100 % behind the node's back (`dd`) while evictable cache files are
 * stored. The node must bring it back below the high watermark by itself.
 */
const canRun = requirement('root + mount (tmpfs)', canMountTmpfs(), 'run as root') && requirement('dd', hasTool('dd'), 'install coreutils');

const MiB = 1 << 20;
const HIGH = 70;
const LOW = 50;

describe.runIf(canRun)('a disk filled to 100 % behind the node\'s back', () => {
  let node: CacheNodeOnTmpfs;
  let tmpfs: Tmpfs;
  let server: SpawnedServer;
  const usedPercent = () => node.usedPercent();

  beforeAll(async () => {
    node = await cacheNodeOnTmpfs(32, { high: HIGH, low: LOW });
    ({ tmpfs, server } = node);
  });
  afterAll(async () => {
    await node?.close();
  });

  it('the node evicts cache files back below the high watermark without a human; no lock is left behind', async () => {
    expect((await fetch(`${server.url}/upload/pub/acme/docs/keep.pdf`, { method: 'PUT', body: Buffer.alloc(MiB, 1) })).status).toBe(201);
    const cache = Array.from({ length: 18 }, (_, i) => `pub/acme/cachedtickets/t-${String(i).padStart(2, '0')}.pdf`);
    for (const name of cache) expect((await fetch(`${server.url}/upload/${name}`, { method: 'PUT', body: Buffer.alloc(MiB, 2) })).status).toBe(201);
    expect(usedPercent()).toBeLessThan(HIGH);

    // Behind the node's back: dd until ENOSPC.
    const dd = spawnSync('dd', ['if=/dev/zero', `of=${path.join(tmpfs.dir, 'filler')}`, 'bs=64K'], { encoding: 'utf8' });
    expect(dd.stderr).toMatch(/No space left on device/);
    expect(statfsSync(tmpfs.dir).bavail).toBe(0);

    const deadline = Date.now() + 60_000;
    while (usedPercent() >= HIGH) {
      if (Date.now() > deadline) throw new Error(`still ${usedPercent().toFixed(1)} % used after 60 s:\n${server.output().slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    // Below the high watermark while the pass may still go on down to the low one: wait for the run to end
    // (its log line, and the lock free again). A lock that is never freed fails here.
    type Usage = { eviction: { lockHolderPid: number | null } };
    const ranLowDisk = () => server.output().split('\n').filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .some((line) => line.message === 'eviction run' && line.reason === 'low-disk' && (line.files as number) > 0);
    let usage = await (await fetch(`${server.url}/usage`)).json() as Usage;
    const runDeadline = Date.now() + 30_000;
    while (!ranLowDisk() || usage.eviction.lockHolderPid !== null) {
      if (Date.now() > runDeadline) break;
      await new Promise((r) => setTimeout(r, 200));
      usage = await (await fetch(`${server.url}/usage`)).json() as Usage;
    }
    expect(ranLowDisk()).toBe(true);
    expect(usage.eviction.lockHolderPid).toBeNull();
    expect(existsSync(path.join(tmpfs.dir, 'eviction.lock'))).toBe(false);
    expect(existsSync(path.join(tmpfs.dir, 'files', 'pub/acme/docs/keep.pdf'))).toBe(true);
    expect(cache.some((name) => !existsSync(path.join(tmpfs.dir, 'files', name)))).toBe(true);
  });
});
