import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { verifySignature } from '../../src/signing.js';
import { CLI, writeConfig } from '../helpers/spawn-server.js';

const SECRET = 'cli-signing-secret-0123456789';

/** Runs the built CLI with a clean NANOCDN_* environment plus `env`. */
function nanocdn(args: string[], env: Record<string, string> = {}) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('NANOCDN_')));
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-cli-'));
  const result = spawnSync(process.execPath, [CLI, ...args], {
    env: { ...clean, NANOCDN_DATA_DIR: dataDir, NANOCDN_HOST: '127.0.0.1', NANOCDN_PORT: '0', ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('nanocdn serve: configuration errors stop the start with exit 78', () => {
  it('an unknown key, named in the message', () => {
    const result = nanocdn(['serve'], { NANOCDN_CONFIG: writeConfig({ upload: { maxBytes: '1MiB', maxByte: 5 } }) });
    expect(result.status).toBe(78);
    expect(result.stderr).toContain('upload.maxByte');
    expect(result.stderr).toMatch(/unknown key/);
  });

  it('a bad size, named in the message', () => {
    const result = nanocdn(['serve'], { NANOCDN_CONFIG: writeConfig({ disk: { minFreeBytes: 'lots' } }) });
    expect(result.status).toBe(78);
    expect(result.stderr).toContain('disk.minFreeBytes');
    expect(result.stderr).toContain('lots');
  });

  it('a config file that is not JSON, named in the message', () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'nanocdn-cli-')), 'missing.json');
    const result = nanocdn(['serve'], { NANOCDN_CONFIG: file });
    expect(result.status).toBe(78);
    expect(result.stderr).toContain(file);
  });

  it('a bad environment variable, named in the message', () => {
    const result = nanocdn(['serve'], { NANOCDN_PORT: 'eighty' });
    expect(result.status).toBe(78);
    expect(result.stderr).toContain('NANOCDN_PORT');
  });
});

describe('ops commands on the memory engine', () => {
  it.each(['cleanup', 'reindex'])('%s refuses with exit 2: the files live only inside the serving process', (command) => {
    const result = nanocdn([command, ...(command === 'cleanup' ? ['--dry-run'] : [])], { NANOCDN_CONFIG: writeConfig({ storage: { engine: 'memory' } }) });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('storage.engine is "memory"');
  });
});

describe('nanocdn sign', () => {
  it('prints a URL whose signature verifies for the name, valid for the ttl', () => {
    const before = Math.floor(Date.now() / 1000);
    const result = nanocdn(['sign', 'priv/a/b.pdf', '--ttl', '1h'], { NANOCDN_SIGNING_SECRET: SECRET });
    const after = Math.floor(Date.now() / 1000);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const url = new URL(result.stdout.trim(), 'http://cdn.example');
    expect(url.pathname).toBe('/priv/a/b.pdf');
    const expires = Number(url.searchParams.get('expires'));
    expect(expires).toBeGreaterThanOrEqual(before + 3600);
    expect(expires).toBeLessThanOrEqual(after + 3600);
    const name = url.pathname.slice(1);
    expect(() => verifySignature(SECRET, name, url.searchParams.get('expires'), url.searchParams.get('sig'), Date.now())).not.toThrow();
    // And not for another secret.
    expect(() => verifySignature(`${SECRET}x`, name, url.searchParams.get('expires'), url.searchParams.get('sig'), Date.now()))
      .toThrow(expect.objectContaining({ code: 'signature_invalid' }));
  });

  it('prefixes --base and accepts a leading slash', () => {
    const result = nanocdn(['sign', '/priv/a/b.pdf', '--ttl', '90s', '--base', 'https://cdn.example.com/'], { NANOCDN_SIGNING_SECRET: SECRET });
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^https:\/\/cdn\.example\.com\/priv\/a\/b\.pdf\?expires=\d+&sig=[0-9a-f]{64}\n$/);
  });

  it('refuses without a signing secret, an invalid name, or a bad ttl (exit 2)', () => {
    const noSecret = nanocdn(['sign', 'priv/a/b.pdf']);
    expect(noSecret.status).toBe(2);
    expect(noSecret.stderr).toContain('signingSecret');
    const badName = nanocdn(['sign', 'priv/../b.pdf'], { NANOCDN_SIGNING_SECRET: SECRET });
    expect(badName.status).toBe(2);
    expect(badName.stdout).toBe('');
    const badTtl = nanocdn(['sign', 'priv/a/b.pdf', '--ttl', 'forever'], { NANOCDN_SIGNING_SECRET: SECRET });
    expect(badTtl.status).toBe(2);
    expect(badTtl.stderr).toContain('--ttl');
  });
});
