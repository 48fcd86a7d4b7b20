import { spawnSync } from 'node:child_process';
import http from 'node:http';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli } from '../helpers/cli-process.js';
import { holdLockInChild } from '../helpers/lock-holder.js';
import { CLI, REPO_ROOT, spawnServer, writeConfig, type SpawnedServer } from '../helpers/spawn-server.js';

const KiB = 1024;
const config = {
  classes: {
    cache: { match: ['*/*/cachedtickets/**'], evictable: true, maxAge: '30d', maxIdle: '7d', maxBytesPerTenant: null },
    default: { evictable: false, maxBytesPerTenant: null },
  },
  disk: { minFreeBytes: 0, minFreePercent: 0, highWatermarkPercent: 100, lowWatermarkPercent: 100 },
};

interface Victim { name: string; tenant: string; class: string; size: number; reason: string }
interface Summary { dryRun: boolean; files: number; bytes: number; error: string | null; victims: Victim[]; groups: { tenant: string; class: string; files: number }[] }

/** GET on a fresh connection: a kept-alive socket may be closed by the server while the CLI ran. */
function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => { body += d; }).on('end', () => resolve({ status: res.statusCode!, body }));
    }).on('error', reject);
  });
}

/** PUT on a fresh connection (see get). */
function put(url: string, body: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'PUT', agent: false, headers: { 'content-length': body.length } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => { text += d; }).on('end', () => resolve({ status: res.statusCode!, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('nanocdn cleanup (subprocess)', () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-cleanup-'));
  const configFile = writeConfig({ logLevel: 'warn', ...config });
  let server: SpawnedServer | undefined;
  const cacheNames = Array.from({ length: 6 }, (_, i) => `pub/acme/cachedtickets/t-${i}.pdf`);
  const otherNames = ['pub/globex/cachedtickets/g-0.pdf', 'pub/globex/cachedtickets/g-1.pdf', 'pub/acme/invoices/inv-0.pdf', 'priv/acme/report.csv'];

  /** Runs the built CLI like ops would: `node dist/src/cli.js cleanup ...` (or another entry point). */
  function cleanup(args: string[], entry = CLI): { status: number | null; stdout: string; stderr: string } {
    const run = spawnSync(process.execPath, entry === CLI ? [CLI, 'cleanup', ...args] : [entry, ...args], {
      env: { ...process.env, NANOCDN_DATA_DIR: dataDir, NANOCDN_CONFIG: configFile }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'],
    });
    return { status: run.status, stdout: run.stdout, stderr: run.stderr };
  }
  const json = (args: string[]): Summary => {
    const run = cleanup([...args, '--json']);
    expect(run.status, run.stderr).toBe(0);
    return JSON.parse(run.stdout) as Summary;
  };
  const onDisk = (name: string) => existsSync(path.join(dataDir, 'files', name));

  beforeAll(async () => {
    server = await spawnServer({ dataDir, config: { ...config, logLevel: 'warn' } });
    for (const [i, name] of [...cacheNames, ...otherNames].entries()) {
      const res = await fetch(`${server.url}/upload/${name}`, { method: 'PUT', body: Buffer.alloc(100 * KiB + i, i) });
      expect(res.status).toBe(201);
    }
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(path.dirname(configFile), { recursive: true, force: true });
  });

  it('a dry run while the server runs prints the plan per tenant and class and changes nothing', () => {
    const run = cleanup(['--dry-run', '--tenant', 'acme', '--max-bytes', '310KiB']);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/\(dry run\).*would remove 3 files/);
    expect(run.stdout).toMatch(/^acme\s+cache\s+3\s+/m);
    expect(run.stdout).toContain('pub/acme/cachedtickets/t-0.pdf');
    for (const name of [...cacheNames, ...otherNames]) expect(onDisk(name), name).toBe(true);
  });

  it('a real run removes exactly what the dry run listed, and the server sees it', async () => {
    const plan = json(['--dry-run', '--tenant', 'acme', '--max-bytes', '310KiB']);
    expect(plan.victims.map((v) => v.name)).toEqual(cacheNames.slice(0, 3));
    expect(plan.victims.every((v) => v.reason === 'max-bytes')).toBe(true);

    const done = json(['--yes', '--tenant', 'acme', '--max-bytes', '310KiB']);
    expect(done).toMatchObject({ dryRun: false, files: 3, error: null });
    expect(done.victims).toEqual(plan.victims);
    for (const name of cacheNames.slice(0, 3)) expect(onDisk(name), name).toBe(false);
    for (const name of [...cacheNames.slice(3), ...otherNames]) expect(onDisk(name), name).toBe(true);

    expect((await get(`${server!.url}/${cacheNames[0]}`)).status).toBe(404);
    // The command retired the pub names it removed, in the index it shares with the server: other bytes are refused.
    const reused = await put(`${server!.url}/upload/${cacheNames[0]}`, Buffer.from('other bytes'));
    expect(reused.status).toBe(409);
    expect((JSON.parse(reused.body) as { error: string }).error).toBe('name_retired');
    const usage = JSON.parse((await get(`${server!.url}/usage`)).body) as { classes: { class: string; files: number }[] };
    expect(usage.classes.find((c) => c.class === 'cache')?.files).toBe(5);
  });

  it('refuses a real run without --yes when not on a terminal, and bad arguments, with exit 2', () => {
    expect(cleanup(['--max-age', '0s']).status).toBe(2);
    expect(cleanup(['--max-age', 'soon', '--dry-run']).status).toBe(2);
    expect(cleanup(['--max-bytes', 'lots', '--dry-run']).status).toBe(2);
    expect(cleanup(['--class', 'default', '--dry-run']).status).toBe(2);
    expect(cleanup(['--no-such-option']).status).toBe(2);
    for (const name of cacheNames.slice(3)) expect(onDisk(name), name).toBe(true);
  });

  it('exits 3 while another process holds the lock, naming it; once the holder is killed the lock is free (no stale lock)', async () => {
    const holder = await holdLockInChild(dataDir);
    try {
      const held = cleanup(['--yes', '--max-age', '0s']);
      expect(held.status).toBe(3);
      expect(held.stderr).toContain(`pid ${holder.pid}`);
      for (const name of cacheNames.slice(3)) expect(onDisk(name), name).toBe(true);
    } finally {
      await holder.kill9();
    }
    // What a run on a full disk used to leave behind: an empty lock file. It blocks nothing now.
    writeFileSync(path.join(dataDir, 'eviction.lock'), '');
    const plan = json(['--yes', '--tenant', 'globex', '--max-bytes', '150KiB']);
    expect(plan.victims.map((v) => v.name)).toEqual(['pub/globex/cachedtickets/g-0.pdf']);
    rmSync(path.join(dataDir, 'eviction.lock'), { force: true });
  });

  it('--wait: says once that it waits for the run holding the lock, runs as soon as the holder is gone, and gives up with exit 3 when the wait is over', async () => {
    // A real run (dry runs take no lock) that removes nothing.
    const noop = ['--yes', '--json', '--tenant', 'nobody', '--max-age', '3650d'];
    const holder = await holdLockInChild(dataDir);
    try {
      const started = Date.now();
      const gaveUp = cleanup([...noop, '--wait', '1500ms']);
      expect(gaveUp.status, gaveUp.stderr).toBe(3);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
      expect(gaveUp.stderr).toContain(`pid ${holder.pid}`);
      expect(gaveUp.stderr.match(/waiting up to 1500ms for it to end/g)).toHaveLength(1);
      expect(gaveUp.stderr).toContain('(waited 1500ms)');

      const waiter = startCli(['cleanup', ...noop, '--wait', '60s'], { NANOCDN_DATA_DIR: dataDir, NANOCDN_CONFIG: configFile });
      try {
        await waiter.stderrContains('waiting up to 60s', 20_000);
        expect(waiter.stderr()).toContain(`pid ${holder.pid}`);
        // Still waiting a second later: it neither ran nor gave up.
        await new Promise((r) => setTimeout(r, 1000));
        expect(waiter.child.exitCode).toBeNull();
        await holder.kill9();
        expect(await waiter.exited, waiter.stderr()).toBe(0);
        expect(JSON.parse(waiter.stdout()) as Summary).toMatchObject({ dryRun: false, files: 0, error: null });
      } finally {
        waiter.kill();
      }
    } finally {
      await holder.kill9();
    }
  });

  it('with the server stopped and the index deleted it refuses (exit 66, creates nothing) until `nanocdn reindex`; npm run cleanup runs the same command', async () => {
    expect(await server!.stop()).toBe(0);
    server = undefined;
    for (const entry of readdirSync(dataDir)) if (entry.startsWith('index.sqlite')) rmSync(path.join(dataDir, entry));

    const refused = cleanup(['--dry-run', '--max-age', '0s']);
    expect(refused.status).toBe(66);
    expect(refused.stderr).toContain('has no index.sqlite');
    expect(existsSync(path.join(dataDir, 'index.sqlite'))).toBe(false);
    const reindex = spawnSync(process.execPath, [CLI, 'reindex'], { env: { ...process.env, NANOCDN_DATA_DIR: dataDir, NANOCDN_CONFIG: configFile }, encoding: 'utf8' });
    expect(reindex.status, reindex.stderr).toBe(0);

    const plan = json(['--dry-run', '--max-age', '0s']);
    const expected = [...cacheNames.slice(3), 'pub/globex/cachedtickets/g-1.pdf'].sort();
    expect(plan.victims.map((v) => v.name).sort()).toEqual(expected);

    const script = cleanup(['--yes', '--json', '--max-age', '0s'], path.join(REPO_ROOT, 'dist', 'scripts', 'cleanup.js'));
    expect(script.status, script.stderr).toBe(0);
    const done = JSON.parse(script.stdout) as Summary;
    expect(done.victims.map((v) => v.name).sort()).toEqual(expected);
    for (const name of expected) expect(onDisk(name), name).toBe(false);
    // Files of a non-evictable class are never removed.
    for (const name of ['pub/acme/invoices/inv-0.pdf', 'priv/acme/report.csv']) expect(onDisk(name), name).toBe(true);
  });
});
