import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, writeConfig } from '../helpers/spawn-server.js';

/** Runs the built CLI with a clean NANOCDN_* environment plus `env`. */
function nanocdn(args: string[], env: Record<string, string> = {}) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('NANOCDN_')));
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-start-'));
  const result = spawnSync(process.execPath, [CLI, ...args], {
    env: { ...clean, NANOCDN_DATA_DIR: dataDir, NANOCDN_HOST: '127.0.0.1', NANOCDN_PORT: '0', ...env }, encoding: 'utf8', timeout: 30_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** One line on stderr, no stack trace. */
function expectOneLine(stderr: string): void {
  expect(stderr.trim().split('\n'), stderr).toHaveLength(1);
  expect(stderr).not.toMatch(/^\s+at /m);
}

/** Issue 13 finding 6: a config that validates but cannot start, and startup errors. */
describe('nanocdn serve: what cannot start says so in one line', () => {
  it('http.requestTimeout below http.headersTimeout is a configuration error naming the key (exit 78), not a RangeError', () => {
    const result = nanocdn(['serve'], { NANOCDN_CONFIG: writeConfig({ http: { requestTimeout: '15s' } }) });
    expect(result.status).toBe(78);
    expect(result.stderr).toContain('http.requestTimeout');
    expect(result.stderr).not.toContain('RangeError');
    expectOneLine(result.stderr);
  });

  it('a port in use (EADDRINUSE): one line, exit 1', async () => {
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    try {
      const port = (busy.address() as net.AddressInfo).port;
      const result = nanocdn(['serve'], { NANOCDN_PORT: String(port) });
      expect(result.status).toBe(1);
      expect(result.stderr).toContain('EADDRINUSE');
      expect(result.stderr).toContain(String(port));
      expectOneLine(result.stderr);
    } finally {
      busy.close();
    }
  });

  it('a data dir that is a file (ENOTDIR/EEXIST): one line, exit 1', () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'nanocdn-start-')), 'not-a-dir');
    writeFileSync(file, 'x');
    const result = nanocdn(['serve'], { NANOCDN_DATA_DIR: file });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/cannot start: .*(ENOTDIR|EEXIST)/);
    expectOneLine(result.stderr);
  });

  it('`nanocdn … | true` (reader gone: EPIPE) exits 0 without a stack', () => {
    for (let i = 0; i < 3; i++) {
      const run = spawnSync('bash', ['-c', `"${process.execPath}" "${CLI}" sign priv/a/b.pdf --ttl 1h | true; echo "status \${PIPESTATUS[0]}" >&2`], {
        env: { ...process.env, NANOCDN_SIGNING_SECRET: 'cli-signing-secret-0123456789' }, encoding: 'utf8',
      });
      expect(run.stderr.trim(), run.stderr).toBe('status 0');
    }
    const help = spawnSync('bash', ['-c', `"${process.execPath}" "${CLI}" --help | head -c 1 >/dev/null; echo "status \${PIPESTATUS[0]}" >&2`], { encoding: 'utf8' });
    expect(help.stderr.trim()).toBe('status 0');
  });
});

describe('nanocdn sign and auth.maxSignedTtl', () => {
  const secret = { NANOCDN_SIGNING_SECRET: 'cli-signing-secret-0123456789' };
  it('refuses a --ttl above auth.maxSignedTtl (default 7d) with exit 2 naming the key; accepts it when the config allows', () => {
    const refused = nanocdn(['sign', 'priv/a/b.pdf', '--ttl', '8d'], secret);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain('auth.maxSignedTtl');
    expect(refused.stdout).toBe('');
    expect(nanocdn(['sign', 'priv/a/b.pdf', '--ttl', '7d'], secret).status).toBe(0);
    const allowed = nanocdn(['sign', 'priv/a/b.pdf', '--ttl', '8d'], { ...secret, NANOCDN_CONFIG: writeConfig({ auth: { tokens: [], trustedNetworks: [], signingSecret: null, maxSignedTtl: '30d' } }) });
    expect(allowed.status, allowed.stderr).toBe(0);
  });
});
