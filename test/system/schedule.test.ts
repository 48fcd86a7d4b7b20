import { existsSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { holdLockInChild } from '../helpers/lock-holder.js';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';

interface LogLine { message: string; timestamp: string; reason?: string; files?: number; groups?: { reasons: Record<string, number> }[] }

function put(url: string, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'PUT', agent: false, headers: { 'Content-Length': body.length } }, (res) => {
      res.resume().on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Polls `check` until it returns true (effects, not timings, decide the test). */
async function until(what: string, check: () => boolean, output: () => string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('scheduled eviction (croner, every second)', () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-schedule-'));
  let server: SpawnedServer;
  const logs = () => server.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);

  beforeAll(async () => {
    server = await spawnServer({
      dataDir,
      config: {
        logLevel: 'info',
        eviction: { schedule: '*/1 * * * * *', tmpMaxAge: '1h' },
        classes: {
          scratch: { match: ['*/*/scratch/**'], evictable: true, maxAge: '2s', maxIdle: null, maxBytesPerTenant: null },
          default: { evictable: false, maxBytesPerTenant: null },
        },
      },
    });
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('runs the age pass and the stale-tmp sweep on schedule, and never while another process holds the lock', async () => {
    const files = path.join(dataDir, 'files');
    // Another run (another process) holds the lock.
    const holder = await holdLockInChild(dataDir);
    expect(await put(`${server.url}/upload/pub/acme/scratch/a.bin`, Buffer.alloc(1000, 1))).toBe(201);
    expect(await put(`${server.url}/upload/pub/acme/docs/keep.bin`, Buffer.alloc(1000, 2))).toBe(201);
    const uploadedAt = Date.now();
    const staleTmp = path.join(dataDir, 'tmp', 'crashed-upload');
    writeFileSync(staleTmp, Buffer.alloc(500));
    const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000);
    utimesSync(staleTmp, twoHoursAgo, twoHoursAgo);

    // The sweep still runs; eviction waits for the lock, even once a.bin is past its maxAge.
    await until('the stale tmp entry to be swept', () => !existsSync(staleTmp), server.output);
    await until('a scheduled run skipped after a.bin expired', () => logs().some((l) =>
      l.message.startsWith('scheduled eviction skipped') && Date.parse(l.timestamp) > uploadedAt + 2500), server.output);
    expect(existsSync(path.join(files, 'pub/acme/scratch/a.bin'))).toBe(true);
    expect(logs().some((l) => l.message.startsWith('scheduled eviction skipped') && (l as { holderPid?: number }).holderPid === holder.pid)).toBe(true);

    // The holder dies: the kernel frees the lock, nobody removes anything by hand.
    await holder.kill9();
    await until('a.bin to be evicted by age', () => !existsSync(path.join(files, 'pub/acme/scratch/a.bin')), server.output);
    // The run logs after it removed the file, and the line crosses a pipe: wait for it too.
    const evicted = (l: LogLine) => l.message === 'eviction run' && l.reason === 'schedule' && (l.files ?? 0) > 0;
    await until('the eviction run to be logged', () => logs().some(evicted), server.output);
    const run = logs().find(evicted);
    expect(run?.groups?.[0].reasons).toEqual({ 'max-age': 1 });
    expect(existsSync(path.join(files, 'pub/acme/docs/keep.bin'))).toBe(true);
    // The run released the lock it took: /usage names no holder.
    const usage = await (await fetch(`${server.url}/usage`)).json() as { eviction: { lockHolderPid: number | null } };
    expect(usage.eviction.lockHolderPid).toBeNull();
  });
});
