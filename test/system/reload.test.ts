import http from 'node:http';
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';

const OLD_TOKEN = 'reload-old-token-0123456789';
const NEW_TOKEN = 'reload-new-token-0123456789';

function put(url: string, token: string, body = 'x'): Promise<number> {
  return fetch(url, { method: 'PUT', body, headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
}

async function waitFor(check: () => boolean, what: string, output: () => string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}:\n${output()}`);
}

describe('SIGHUP reloads tokens, classes and the log level without dropping a connection', () => {
  let server: SpawnedServer;
  beforeAll(async () => {
    server = await spawnServer({ config: { logLevel: 'info', auth: { tokens: [OLD_TOKEN], trustedNetworks: [], signingSecret: null } } });
  });
  afterAll(async () => { await server.stop(); });

  it('an upload streaming across the SIGHUP completes; the next requests see the new tokens, classes and level', async () => {
    const configFile = server.configFile;
    const reloads = () => server.output().split('\n').filter((l) => l.includes('configuration reloaded')).length;
    // An upload admitted (100 Continue: auth passed) and half sent on its own connection, then the signal, then the rest.
    const status = new Promise<number>((resolve, reject) => {
      const req = http.request(`${server.url}/upload/pub/acme/exports/inflight.csv`, {
        method: 'PUT', headers: { authorization: `Bearer ${OLD_TOKEN}`, 'content-length': 8, expect: '100-continue' }, agent: false,
      }, (res) => { res.resume(); resolve(res.statusCode!); });
      req.on('error', reject);
      req.on('continue', () => {
        req.write('half');
        writeFileSync(configFile, JSON.stringify({
          logLevel: 'debug', usage: { topTenants: 5 },
          auth: { tokens: [NEW_TOKEN], trustedNetworks: [], signingSecret: null },
          classes: { archive: { match: ['*/*/exports/**'], evictable: false }, default: {} },
        }));
        process.kill(server.pid, 'SIGHUP');
        waitFor(() => reloads() === 1, 'the reload line', server.output).then(() => req.end('done'), reject);
      });
    });
    expect(await status).toBe(201);
    expect(server.child.exitCode).toBeNull();
    const line = JSON.parse(server.output().split('\n').find((l) => l.includes('configuration reloaded'))!) as { applied: string[]; needsRestart: string[] };
    expect(line.applied.sort()).toEqual(['auth.tokens', 'classes', 'logLevel']);
    expect(line.needsRestart).toEqual(['usage.topTenants']);

    expect(await put(`${server.url}/upload/pub/acme/a.txt`, OLD_TOKEN)).toBe(401);
    expect(await put(`${server.url}/upload/pub/acme/exports/b.csv`, NEW_TOKEN)).toBe(201);
    const usage = await fetch(`${server.url}/usage`, { headers: { authorization: `Bearer ${NEW_TOKEN}` } }).then((r) => r.json()) as { classes: { class: string; files: number }[] };
    // The exports uploaded after the reload are "archive"; the one admitted before it keeps "cache".
    expect(usage.classes.find((c) => c.class === 'archive')?.files).toBe(1);
    // debug is on: a probe now logs its line.
    const before = server.output().length;
    await fetch(`${server.url}/healthz`);
    await waitFor(() => server.output().slice(before).includes('"/healthz"'), 'a debug probe line', server.output);
  });

  it('an invalid config on SIGHUP is refused with a log line and the node keeps running on the old one', async () => {
    writeFileSync(server.configFile, '{ not json');
    process.kill(server.pid, 'SIGHUP');
    await waitFor(() => server.output().includes('reload refused'), 'the refusal line', server.output);
    expect(server.child.exitCode).toBeNull();
    expect(await put(`${server.url}/upload/pub/acme/c.txt`, NEW_TOKEN)).toBe(201);
  });
});
