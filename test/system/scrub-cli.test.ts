// `nanocdn scrub` (spawned, on a data dir a running server owns): verifies
// every indexed file's size and sha256 by reading it, reports mismatches
// (human or pure --json), exits 1 when it finds one, moves bad files to
// <dataDir>/quarantine/ with --quarantine, and records its run so the
// serving node exports it in /metrics.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';
import { indexedFiles } from '../helpers/index-file.js';

interface BadFile { name: string; problem: string; expectedSize: number; actualSize: number | null; expectedSha256: string; actualSha256: string | null; quarantinedTo: string | null }
interface Report { dataDir: string; checked: number; bytes: number; ok: number; corrupt: number; missing: number; quarantined: number; bad: BadFile[]; rateMBps: number | null }

const KiB = 1024;

/**
 * The built CLI with no NANOCDN_* variables but `env`, in a fresh empty
 * working directory. Asynchronous: a synchronous run would block this
 * process past the server's keep-alive timeout, and the next fetch would
 * reuse a connection the server had closed meanwhile ("other side closed").
 */
async function nanocdn(args: string[], env: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string; cwd: string }> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('NANOCDN_')));
  const cwd = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-cwd-'));
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...clean, ...env }, cwd, timeout: 60_000 });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const status = await new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return { status, stdout, stderr, cwd };
}

function gauge(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('nanocdn scrub refuses what it cannot scrub', () => {
  it('a missing data dir or one without an index: exit 66, nothing created', async () => {
    const parent = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-scrub-'));
    const missing = await nanocdn(['scrub', '--data-dir', path.join(parent, 'nope')]);
    expect(missing.status).toBe(66);
    expect(missing.stderr).toContain('is not a nanocdn data dir');
    const noIndex = await nanocdn(['scrub', '--json'], { NANOCDN_DATA_DIR: parent });
    expect(noIndex.status).toBe(66);
    expect(noIndex.stdout).toBe('');
    expect(noIndex.stderr).toContain('has no index.sqlite');
    expect(readdirSync(parent)).toEqual([]);
  });

  it('the memory engine (its files live in the server process) and a bad --rate: exit 2', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-scrub-'));
    const memory = await nanocdn(['scrub', '--data-dir', dir], { NANOCDN_STORAGE__ENGINE: 'memory' });
    expect(memory.status).toBe(2);
    expect(memory.stderr).toContain('storage.engine is "memory"');
    for (const rate of ['fast', '-1']) {
      const bad = await nanocdn(['scrub', '--data-dir', dir, '--rate', rate]);
      expect(bad.status, rate).toBe(2);
      expect(bad.stderr).toContain('--rate');
    }
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('nanocdn scrub on a data dir a server owns', () => {
  let server: SpawnedServer;
  const names = {
    fine: 'pub/acme/fine.bin',
    truncated: 'pub/acme/truncated.bin',
    flipped: 'priv/globex/flipped.bin',
    gone: 'pub/acme/gone.bin',
  };
  const file = (name: string) => path.join(server.dataDir, 'files', name);
  const env = () => ({ NANOCDN_DATA_DIR: server.dataDir });
  const metrics = async () => (await fetch(`${server.url}/metrics`)).text();

  beforeAll(async () => {
    server = await spawnServer({ config: { logLevel: 'warn' } });
    for (const [i, name] of Object.values(names).entries()) {
      const res = await fetch(`${server.url}/upload/${name}`, { method: 'PUT', body: Buffer.alloc(64 * KiB, i + 1) });
      expect(res.status).toBe(201);
    }
  });
  afterAll(async () => {
    await server?.stop();
    if (server) rmSync(server.dataDir, { recursive: true, force: true });
  });

  it('all files whole: exit 0, a one-line human report, the run recorded for the node\'s /metrics', async () => {
    expect(gauge(await metrics(), 'nanocdn_scrub_last_run_timestamp_seconds')).toBe(0);
    const before = Date.now();
    const run = await nanocdn(['scrub'], env());
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^scrub of .+: checked 4 files, 256\.0 KiB .*: all match the index\n$/);
    const body = await metrics();
    expect(gauge(body, 'nanocdn_scrub_last_run_timestamp_seconds')! * 1000).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    expect(gauge(body, 'nanocdn_scrub_corrupt_files')).toBe(0);
  });

  it('--json lists a truncated file, a same-size content change and a missing file; exit 1; stdout is one JSON document', async () => {
    truncateSync(file(names.truncated), 1000);
    const bytes = readFileSync(file(names.flipped));
    bytes[100] ^= 0xff;
    writeFileSync(file(names.flipped), bytes);
    rmSync(file(names.gone));
    const run = await nanocdn(['scrub', '--json', '--rate', '0'], env());
    expect(run.status, run.stderr).toBe(1);
    const report = JSON.parse(run.stdout) as Report;
    expect(report).toMatchObject({ checked: 4, ok: 1, corrupt: 2, missing: 1, quarantined: 0, rateMBps: null });
    const byName = Object.fromEntries(report.bad.map((b) => [b.name, b]));
    expect(byName[names.truncated]).toMatchObject({ problem: 'size', expectedSize: 64 * KiB, actualSize: 1000, quarantinedTo: null });
    expect(byName[names.flipped]).toMatchObject({ problem: 'sha256', expectedSize: 64 * KiB, actualSize: 64 * KiB, quarantinedTo: null });
    expect(byName[names.flipped].actualSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(byName[names.flipped].actualSha256).not.toBe(byName[names.flipped].expectedSha256);
    expect(byName[names.gone]).toMatchObject({ problem: 'missing', actualSize: null });
    for (const line of run.stderr.split('\n')) expect(line.trimStart().startsWith('{'), line).toBe(false);
    // Nothing moved without --quarantine.
    expect(existsSync(file(names.truncated))).toBe(true);
    expect(existsSync(path.join(server.dataDir, 'quarantine'))).toBe(false);
    expect(gauge(await metrics(), 'nanocdn_scrub_corrupt_files')).toBe(3);
  });

  it('human output names each bad file and what is wrong with it', async () => {
    const run = await nanocdn(['scrub'], env());
    expect(run.status).toBe(1);
    expect(run.stdout).toMatch(/checked 4 files, .*: 3 bad \(2 corrupt, 1 missing\)/);
    expect(run.stdout).toMatch(new RegExp(`^ {2}size: {5}${names.truncated} \\(1000 B, the index says 64\\.0 KiB\\)$`, 'm'));
    expect(run.stdout).toMatch(new RegExp(`^ {2}sha256: {3}${names.flipped} \\(bytes differ from the index's sha256\\)$`, 'm'));
    expect(run.stdout).toMatch(new RegExp(`^ {2}missing: {2}${names.gone} \\(the index has a row, the store no file\\)$`, 'm'));
  });

  it('--quarantine moves corrupt files to <dataDir>/quarantine/<name> and drops their rows: the node answers 404, a rescrub finds only the missing file', async () => {
    const run = await nanocdn(['scrub', '--quarantine', '--json'], env());
    expect(run.status, run.stderr).toBe(1);
    const report = JSON.parse(run.stdout) as Report;
    expect(report.quarantined).toBe(2);
    const quarantine = path.join(server.dataDir, 'quarantine');
    expect(Object.fromEntries(report.bad.map((b) => [b.name, b.quarantinedTo]))).toEqual({
      [names.truncated]: path.join(quarantine, names.truncated), [names.flipped]: path.join(quarantine, names.flipped), [names.gone]: null,
    });
    expect(readFileSync(path.join(quarantine, names.truncated)).length).toBe(1000);
    expect(existsSync(file(names.truncated))).toBe(false);
    expect(existsSync(file(names.flipped))).toBe(false);
    const rows = (await indexedFiles(server.dataDir)).map((r) => r.name).sort();
    expect(rows).toEqual([names.gone, names.fine].sort());
    expect((await fetch(`${server.url}/${names.truncated}`)).status).toBe(404);
    expect((await fetch(`${server.url}/${names.fine}`)).status).toBe(200);
    // The pub name is retired with the checksum it was served with: other bytes are refused, the original bytes restore it.
    const other = await fetch(`${server.url}/upload/${names.truncated}`, { method: 'PUT', body: Buffer.alloc(64 * KiB, 9) });
    expect(other.status).toBe(409);
    expect(((await other.json()) as { error: string }).error).toBe('name_retired');
    const restore = await fetch(`${server.url}/upload/${names.truncated}`, { method: 'PUT', body: Buffer.alloc(64 * KiB, 2) });
    expect(restore.status).toBe(201);
    expect((await nanocdn(['scrub', '--json'], env())).stdout).toContain('"checked":3');
    await fetch(`${server.url}/${names.truncated}`, { method: 'DELETE' });
    const again = JSON.parse((await nanocdn(['scrub', '--json'], env())).stdout) as Report;
    expect(again).toMatchObject({ checked: 2, ok: 1, corrupt: 0, missing: 1 });
    // `nanocdn reindex` drops the row of the missing file; then the scrub is clean.
    expect((await nanocdn(['reindex'], env())).status).toBe(0);
    const clean = await nanocdn(['scrub', '--json'], env());
    expect(clean.status).toBe(0);
    expect(JSON.parse(clean.stdout)).toMatchObject({ checked: 1, ok: 1, corrupt: 0, missing: 0 });
    expect(gauge(await metrics(), 'nanocdn_scrub_corrupt_files')).toBe(0);
  });
});
