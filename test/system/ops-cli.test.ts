import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, REPO_ROOT, freePort, writeConfig } from '../helpers/spawn-server.js';

const TOKEN = 'ops-token-0123456789abcdef';
const SECRET = 'ops-signing-secret-0123456789';

/** The built CLI in `cwd` (a fresh empty dir by default) with no NANOCDN_* variables but `env`. */
function nanocdn(args: string[], env: Record<string, string> = {}, cwd = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-cwd-'))) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('NANOCDN_')));
  const run = spawnSync(process.execPath, [CLI, ...args], { env: { ...clean, ...env }, cwd, encoding: 'utf8', timeout: 30_000 });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr, cwd };
}

describe('nanocdn --version', () => {
  it('prints package.json\'s version and exits 0', () => {
    const { version } = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    const run = nanocdn(['--version']);
    expect(run.status).toBe(0);
    expect(run.stdout.trim()).toBe(version);
  });
});

describe('nanocdn config check', () => {
  it('prints the effective config with secrets masked and says ok (exit 0)', () => {
    const file = writeConfig({ auth: { tokens: [TOKEN], signingSecret: SECRET }, classes: { archive: { match: ['*/*/exports/**'] }, default: {} } });
    const run = nanocdn(['config', 'check', '--config', file], { NANOCDN_AUTH__TRUSTED_NETWORKS: '10.0.0.0/8', NANOCDN_MONITORING__PUBLIC: 'true' });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).not.toContain(TOKEN);
    expect(run.stdout).not.toContain(SECRET);
    const effective = JSON.parse(run.stdout) as { auth: { tokens: string[]; signingSecret: string; trustedNetworks: string[] }; classes: Record<string, unknown>; monitoring: { public: boolean } };
    expect(effective.auth.tokens).toEqual([expect.stringMatching(/^tok:[0-9a-f]{8}$/)]);
    expect(effective.auth.signingSecret).toBe('********');
    expect(effective.auth.trustedNetworks).toEqual(['10.0.0.0/8']);
    expect(effective.monitoring.public).toBe(true);
    expect(Object.keys(effective.classes)).toEqual(['archive', 'default']);
    expect(run.stderr).toContain('configuration ok');
    expect(run.stderr).toContain(file);
    expect(run.stderr).toContain('NANOCDN_AUTH__TRUSTED_NETWORKS');
  });

  it('masks the s3 secret key', () => {
    const run = nanocdn(['config', 'check'], {
      NANOCDN_STORAGE__ENGINE: 's3', NANOCDN_S3_ENDPOINT: 'http://127.0.0.1:9000', NANOCDN_S3_BUCKET: 'b',
      NANOCDN_S3_ACCESS_KEY_ID: 'AKIA0000', NANOCDN_S3_SECRET_ACCESS_KEY: 's3-secret-do-not-print', NANOCDN_STORAGE__S3__CAPACITY_BYTES: '10GiB',
    });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).not.toContain('s3-secret-do-not-print');
    expect(run.stdout).toContain('AKIA0000');
  });

  it('exits 78 naming the key of an invalid config, prints no config', () => {
    const run = nanocdn(['config', 'check', '--config', writeConfig({ disk: { minFreeByte: 5 } })]);
    expect(run.status).toBe(78);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('disk.minFreeByte');
  });
});

describe('nanocdn serve --config F --data-dir D', () => {
  it('starts on the port of the file, in the data dir of the flag', async () => {
    const port = await freePort();
    const dataDir = path.join(mkdtempSync(path.join(os.tmpdir(), 'nanocdn-ops-')), 'data');
    mkdirSync(dataDir);
    const file = writeConfig({ host: '127.0.0.1', port, logLevel: 'warn' });
    const clean = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('NANOCDN_')));
    const child = spawn(process.execPath, [CLI, 'serve', '--config', file, '--data-dir', dataDir], { env: { ...clean, NANOCDN_TOKENS: TOKEN }, stdio: 'ignore' });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      let status = 0;
      for (let i = 0; i < 300 && status !== 200; i++) {
        status = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.status, () => 0);
        if (status !== 200) await new Promise((r) => setTimeout(r, 50));
      }
      expect(status).toBe(200);
      const put = await fetch(`http://127.0.0.1:${port}/upload/pub/acme/a.txt`, { method: 'PUT', body: 'hello', headers: { authorization: `Bearer ${TOKEN}` } });
      expect(put.status).toBe(201);
      expect(existsSync(path.join(dataDir, 'files', 'pub', 'acme', 'a.txt'))).toBe(true);
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });
});

describe('ops commands refuse what is not a data dir', () => {
  it('cleanup --dry-run from another directory: one sentence, exit 66, creates nothing', () => {
    const run = nanocdn(['cleanup', '--dry-run']);
    expect(run.status).toBe(66);
    expect(run.stdout).toBe('');
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toContain('is not a nanocdn data dir');
    expect(readdirSync(run.cwd)).toEqual([]);
  });

  it('cleanup and reindex --check on a missing --data-dir exit 66 and create nothing', () => {
    const missing = path.join(mkdtempSync(path.join(os.tmpdir(), 'nanocdn-ops-')), 'nope');
    for (const args of [['cleanup', '--dry-run', '--data-dir', missing], ['reindex', '--check', '--data-dir', missing], ['reindex', '--data-dir', missing]]) {
      const run = nanocdn(args);
      expect(run.status, args.join(' ')).toBe(66);
      expect(run.stderr).toContain(`${missing} is not a nanocdn data dir`);
      expect(existsSync(missing)).toBe(false);
    }
  });

  it('cleanup and reindex --check on a directory without an index exit 66 and create no index', () => {
    const empty = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-ops-'));
    for (const args of [['cleanup', '--dry-run'], ['reindex', '--check']]) {
      const run = nanocdn(args, { NANOCDN_DATA_DIR: empty });
      expect(run.status, args.join(' ')).toBe(66);
      expect(run.stderr).toContain('has no index.sqlite');
      expect(readdirSync(empty)).toEqual([]);
    }
  });
});

describe('CLI output is human or pure --json, never JSON log lines', () => {
  it('cleanup on a disk past the high watermark: the disk-state line is a sentence on stderr, stdout is the report', () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-ops-'));
    // Every disk in use is above 1 %: the guard moves ok -> warning when the command opens the data dir.
    const env = { NANOCDN_DATA_DIR: dataDir, NANOCDN_DISK__HIGH_WATERMARK_PERCENT: '1', NANOCDN_DISK__LOW_WATERMARK_PERCENT: '0' };
    expect(nanocdn(['reindex'], env).status).toBe(0);
    const human = nanocdn(['cleanup', '--dry-run'], env);
    expect(human.status, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/^cleanup \(dry run\) of /);
    expect(human.stderr).toContain('disk state ok -> warning');
    for (const line of [...human.stdout.split('\n'), ...human.stderr.split('\n')]) expect(line.trimStart().startsWith('{'), line).toBe(false);
    const json = nanocdn(['cleanup', '--dry-run', '--json'], env);
    expect(json.status).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ dryRun: true, files: 0 });
    for (const line of json.stderr.split('\n')) expect(line.trimStart().startsWith('{'), line).toBe(false);
  });
});
