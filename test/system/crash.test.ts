import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';
import { pause, rawRequest } from '../http/raw-http.js';

/**
 * Crash safety (issue 3): kill -9 in the middle of uploads, restart on the
 * same data dir. Every acknowledged (201) file is whole, every unacknowledged
 * name is absent, tmp/ is empty, and the index matches files/.
 */
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

function reindex(dataDir: string, ...args: string[]): { status: number | null; stdout: string } {
  const run = spawnSync(process.execPath, [CLI, 'reindex', ...args], {
    env: { ...process.env, NANOCDN_DATA_DIR: dataDir, NANOCDN_CONFIG: '' }, encoding: 'utf8',
  });
  return { status: run.status, stdout: run.stdout + run.stderr };
}

/** Starts an upload that declares 4 MiB and sends only the first 256 KiB, then stalls. */
function slowUpload(port: number, name: string): net.Socket {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => { /* the server is killed under it */ });
  socket.write(`PUT /upload/${name} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${4 << 20}\r\n\r\n`);
  socket.write(randomBytes(256 << 10));
  return socket;
}

describe('crash safety: kill -9 during uploads, restart on the same data dir', () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-crash-'));
  const servers: SpawnedServer[] = [];
  const sockets: net.Socket[] = [];
  const acked = new Map<string, string>();
  const unacked: string[] = [];

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    for (const server of servers) await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('loses nothing acknowledged and keeps nothing unacknowledged', async () => {
    const first = await spawnServer({ dataDir });
    servers.push(first);
    for (let i = 0; i < 5; i++) {
      const body = randomBytes(300_000 + i);
      const res = await fetch(`${first.url}/upload/pub/crash/done-${i}.bin`, { method: 'PUT', body });
      expect(res.status).toBe(201);
      acked.set(`pub/crash/done-${i}.bin`, sha256(body));
    }
    for (let i = 0; i < 8; i++) {
      unacked.push(`pub/crash/slow-${i}.bin`);
      sockets.push(slowUpload(first.port, `pub/crash/slow-${i}.bin`));
    }
    const tmpDir = path.join(dataDir, 'tmp');
    for (let i = 0; i < 200 && (await fsp.readdir(tmpDir)).length < 8; i++) await pause(25);
    expect(await fsp.readdir(tmpDir)).toHaveLength(8);

    await first.kill9();
    expect(first.child.signalCode).toBe('SIGKILL');
    // What the dead process left behind: 8 partial spool files.
    expect(await fsp.readdir(tmpDir)).toHaveLength(8);
    // A file put into files/ by hand while the node was down: the restart's reconcile must index it.
    mkdirSync(path.join(dataDir, 'files', 'pub', 'hand'), { recursive: true });
    writeFileSync(path.join(dataDir, 'files', 'pub', 'hand', 'offline.txt'), 'added while down\n');
    expect(reindex(dataDir, '--check').status).toBe(1);

    const second = await spawnServer({ dataDir });
    servers.push(second);
    // The stale sweep runs before the server listens.
    expect(await fsp.readdir(tmpDir)).toEqual([]);
    expect(second.output()).toMatch(/swept 8 stale tmp entries/);

    for (const [name, digest] of acked) {
      const res = await fetch(`${second.url}/${name}`);
      expect(res.status).toBe(200);
      expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(digest);
    }
    for (const name of unacked) {
      expect(existsSync(path.join(dataDir, 'files', name))).toBe(false);
      expect((await fetch(`${second.url}/${name}`)).status).toBe(404);
    }

    // The restart's background reconcile brings the index in line with files/.
    let check = reindex(dataDir, '--check');
    for (let i = 0; i < 40 && check.status !== 0; i++) {
      await pause(250);
      check = reindex(dataDir, '--check');
    }
    expect(check.status, check.stdout).toBe(0);
    expect(check.stdout).toMatch(/checked 6 files/);
  });

  it('reindex --check reports drift made behind the server\'s back without changing anything; reindex fixes it', async () => {
    const server = servers[servers.length - 1];
    const [gone] = [...acked.keys()];
    await fsp.rm(path.join(dataDir, 'files', gone));
    writeFileSync(path.join(dataDir, 'files', 'pub', 'hand', 'added.txt'), 'added by hand\n');

    const check = reindex(dataDir, '--check');
    expect(check.status).toBe(1);
    expect(check.stdout).toMatch(/1 without a row, 1 rows without a file, 0 changed \(nothing changed\)/);
    expect(check.stdout).toContain('pub/hand/added.txt');
    expect(check.stdout).toContain(gone);
    // Nothing changed: the same drift is still there.
    const json = JSON.parse(reindex(dataDir, '--check', '--json').stdout) as Record<string, unknown>;
    expect(json).toMatchObject({ missingRows: 1, orphanRows: 1, drift: true, changed: false });

    const fix = reindex(dataDir);
    expect(fix.status).toBe(0);
    expect(fix.stdout).toMatch(/1 without a row, 1 rows without a file, 0 changed \(fixed\)/);
    expect(reindex(dataDir, '--check').status).toBe(0);
    // A fresh connection: the reindex runs took longer than the server's keep-alive timeout.
    expect((await rawRequest(server.port, { method: 'GET', path: '/pub/hand/added.txt' })).status).toBe(200);
    expect(server.child.exitCode).toBeNull();
  });
});
