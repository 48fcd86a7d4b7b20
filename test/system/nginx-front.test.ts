// The shipped nginx front (config/nginx.conf.example, placeholders
// substituted, nothing else changed) in front of the BUILT node with
// download.accelRedirect: pub from disk by nginx, priv authorized by the node
// and sent by nginx via X-Accel-Redirect, errors as the node's JSON.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SANDBOX_EXTENSIONS } from '../../src/config/schema.js';
import { signedQuery } from '../../src/signing.js';
import { freePort, REPO_ROOT, spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';
import { hasTool, requirement } from '../helpers/system-tools.js';

const TOKEN = 'front-test-token-0123456789';
const SECRET = 'front-test-signing-secret-0123';
const EXAMPLE = path.join(REPO_ROOT, 'config', 'nginx.conf.example');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** config/nginx.conf.example with its three placeholders substituted; fails if one is missing. */
function renderExample(dataDir: string, upstream: string, listen: string): string {
  let text = readFileSync(EXAMPLE, 'utf8');
  const substitutions: Array<[RegExp, string]> = [
    [/NANOCDN_DATA_DIR/g, dataDir],
    [/^(\s*server\s+)127\.0\.0\.1:8080;/gm, `$1${upstream};`],
    [/^(\s*listen\s+)80;/gm, `$1${listen};`],
  ];
  for (const [pattern, value] of substitutions) {
    if (!pattern.test(text)) throw new Error(`${EXAMPLE}: placeholder ${pattern} not found`);
    text = text.replace(pattern, value);
  }
  return text;
}

/** A whole nginx.conf around the example: every path nginx writes is under `prefix`. */
function mainConfig(prefix: string, server: string): string {
  const mime = existsSync('/etc/nginx/mime.types')
    ? readFileSync('/etc/nginx/mime.types', 'utf8')
    : 'types { application/pdf pdf; text/plain txt; application/octet-stream bin; }\n';
  writeFileSync(path.join(prefix, 'mime.types'), mime);
  // As root nginx would run its workers as "nobody", who cannot enter the 0700 temp dirs.
  const user = process.getuid?.() === 0 ? 'user root;' : '';
  return `${user}
worker_processes 1;
daemon off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 256; }
http {
  include ${prefix}/mime.types;
  default_type application/octet-stream;
  access_log off;
  client_body_temp_path ${prefix}/client_body_temp;
  proxy_temp_path ${prefix}/proxy_temp;
  fastcgi_temp_path ${prefix}/fastcgi_temp;
  uwsgi_temp_path ${prefix}/uwsgi_temp;
  scgi_temp_path ${prefix}/scgi_temp;
${server}
}
`;
}

describe.runIf(requirement('nginx', hasTool('nginx'), 'apt-get install nginx-light'))('the shipped nginx front (config/nginx.conf.example)', () => {
  let node: SpawnedServer;
  let nginx: ChildProcess | undefined;
  let nginxExited: Promise<void> = Promise.resolve();
  let nginxOutput = '';
  let front = '';
  let prefix = '';
  const pubBody = randomBytes(200 * 1024);
  const cachedBody = randomBytes(3000);
  const privBody = Buffer.concat([Buffer.from('%PDF-1.7\n'), randomBytes(150 * 1024)]);
  const signed = (name: string, ttlSeconds = 600) => `/${name}?${signedQuery(SECRET, name, Math.floor(Date.now() / 1000) + ttlSeconds)}`;
  const upload = (name: string, body: Buffer, token = TOKEN) =>
    fetch(`${front}/upload/${name}`, { method: 'PUT', body, headers: { authorization: `Bearer ${token}` } });
  const bytes = async (res: Response) => Buffer.from(await res.arrayBuffer());
  /** GETs of `target` the node logged (its 'request' lines at level http). */
  const requestsSeenByNode = (target: string) => node.output().split('\n')
    .filter((line) => line.includes('"message":"request"') && line.includes(`"path":"${target}"`) && line.includes('"method":"GET"')).length;
  /** Waits (bounded) for the node's output to show `count` GETs of `target`; a log line reaches the pipe after the response. */
  const seenByNode = async (target: string, count: number) => {
    const deadline = Date.now() + 10_000;
    while (requestsSeenByNode(target) < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return requestsSeenByNode(target);
  };

  beforeAll(async () => {
    node = await spawnServer({
      config: {
        // 'http' logs one line per request the node sees: which reads reached it is part of what is tested.
        logLevel: 'http',
        download: { accelRedirect: '/_files/' },
        // Behind the front every request comes from 127.0.0.1: trust no network (as the example says).
        auth: { tokens: [TOKEN], trustedNetworks: [], signingSecret: SECRET },
      },
    });
    prefix = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-nginx-'));
    mkdirSync(path.join(prefix, 'logs'));
    const port = await freePort();
    const conf = path.join(prefix, 'nginx.conf');
    writeFileSync(conf, mainConfig(prefix, renderExample(node.dataDir, `127.0.0.1:${node.port}`, `127.0.0.1:${port}`)));
    const child = spawn('nginx', ['-p', prefix, '-c', conf, '-e', path.join(prefix, 'error.log')], { stdio: ['ignore', 'pipe', 'pipe'] });
    nginx = child;
    child.stdout.on('data', (d) => { nginxOutput += d; });
    child.stderr.on('data', (d) => { nginxOutput += d; });
    nginxExited = new Promise((resolve) => child.once('exit', () => resolve()));
    front = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}:\n${nginxOutput}`);
      const ok = await fetch(`${front}/healthz`).then((r) => r.ok, () => false);
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`nginx did not answer /healthz:\n${nginxOutput}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  });

  afterAll(async () => {
    if (nginx?.pid !== undefined && nginx.exitCode === null) {
      nginx.kill('SIGTERM');
      await nginxExited;
    }
    await node?.stop();
    if (prefix) rmSync(prefix, { recursive: true, force: true });
    if (node) rmSync(node.dataDir, { recursive: true, force: true });
  });

  it('takes uploads through the front: 201 with a token, 401 JSON from the node without one', async () => {
    for (const [name, body] of [['pub/acme/files/a.bin', pubBody], ['pub/acme/cachedtickets/t.bin', cachedBody], ['priv/acme/secret.pdf', privBody]] as const) {
      const res = await upload(name, body);
      expect(res.status).toBe(201);
      expect(await res.json()).toMatchObject({ name, size: body.length, sha256: sha(body) });
    }
    const refused = await fetch(`${front}/upload/pub/acme/files/b.bin`, { method: 'PUT', body: Buffer.from('x') });
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ error: 'unauthorized' });
  });

  it('serves pub files straight from disk: nginx headers (its mtime-size ETag, no X-Request-Id of the node)', async () => {
    const res = await fetch(`${front}/pub/acme/files/a.bin`);
    expect(res.status).toBe(200);
    expect(sha(await bytes(res))).toBe(sha(pubBody));
    expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    // The node would send the sha256 ETag and an X-Request-Id; nginx's static module sends neither.
    expect(res.headers.get('etag')).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/);
    expect(res.headers.get('x-request-id')).toBeNull();
    // A miss goes to the node; once its line is there, a line of the GET above would be too (one process, in order).
    expect((await fetch(`${front}/pub/acme/files/marker.bin`)).status).toBe(404);
    expect(await seenByNode('/pub/acme/files/marker.bin', 1)).toBe(1);
    expect(requestsSeenByNode('/pub/acme/files/a.bin')).toBe(0);
  });

  it('sends pub files of evictable classes through the node (access accounting), bytes by nginx', async () => {
    const res = await fetch(`${front}/pub/acme/cachedtickets/t.bin`);
    expect(res.status).toBe(200);
    expect(sha(await bytes(res))).toBe(sha(cachedBody));
    expect(res.headers.get('x-accel-redirect')).toBeNull();
    expect(res.headers.get('etag')).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/);
    expect(await seenByNode('/pub/acme/cachedtickets/t.bin', 1)).toBe(1);
  });

  it('serves priv with a valid signature: 200, the right bytes and type, private caching, no X-Accel-Redirect leaked', async () => {
    const res = await fetch(`${front}${signed('priv/acme/secret.pdf')}`);
    expect(res.status).toBe(200);
    const body = await bytes(res);
    expect(body.length).toBe(privBody.length);
    expect(sha(body)).toBe(sha(privBody));
    expect(res.headers.get('content-type')).toBe('application/pdf');
    expect(res.headers.get('cache-control')).toBe('private');
    expect(res.headers.get('x-accel-redirect')).toBeNull();
    // The node authorized it (its log line) and nginx sent the bytes (its mtime-size ETag, not the node's sha256).
    expect(res.headers.get('etag')).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/);
    expect(await seenByNode('/priv/acme/secret.pdf', 1)).toBe(1);
  });

  it('answers HEAD and Range of a signed priv URL through the front', async () => {
    const head = await fetch(`${front}${signed('priv/acme/secret.pdf')}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(privBody.length));
    expect((await bytes(head)).length).toBe(0);
    const range = await fetch(`${front}${signed('priv/acme/secret.pdf')}`, { headers: { range: 'bytes=0-8' } });
    expect(range.status).toBe(206);
    expect((await bytes(range)).toString()).toBe('%PDF-1.7\n');
  });

  it('refuses priv without credentials with the node\'s 401 JSON, and a bad signature with 403 JSON', async () => {
    const bare = await fetch(`${front}/priv/acme/secret.pdf`);
    expect(bare.status).toBe(401);
    expect(bare.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await bare.json()).toMatchObject({ error: 'unauthorized' });

    const good = signed('priv/acme/secret.pdf');
    const bad = good.replace(/sig=([0-9a-f])/, (_m, c: string) => `sig=${c === '0' ? '1' : '0'}`);
    const forged = await fetch(`${front}${bad}`);
    expect(forged.status).toBe(403);
    expect(await forged.json()).toMatchObject({ error: 'signature_invalid' });

    const otherName = await fetch(`${front}/priv/acme/other.pdf?${good.split('?')[1]}`);
    expect(otherName.status).toBe(403);
  });

  it('answers absent names with the node\'s 404 JSON, for pub (nginx falls back to the node) and signed priv', async () => {
    const pub = await fetch(`${front}/pub/acme/files/missing.bin`);
    expect(pub.status).toBe(404);
    expect(await pub.json()).toMatchObject({ error: 'not_found', name: 'pub/acme/files/missing.bin' });
    const priv = await fetch(`${front}${signed('priv/acme/missing.pdf')}`);
    expect(priv.status).toBe(404);
    expect(await priv.json()).toMatchObject({ error: 'not_found' });
    const headMissing = await fetch(`${front}${signed('priv/acme/missing.pdf')}`, { method: 'HEAD' });
    expect(headMissing.status).toBe(404);
  });

  it('sends nosniff on every file and CSP sandbox on active content, from disk (pub) and via X-Accel-Redirect (priv, evictable pub), as the node does', async () => {
    const active = DEFAULT_SANDBOX_EXTENSIONS.flatMap((ext) => [`pub/acme/files/page.${ext}`, `priv/acme/page.${ext}`, `pub/acme/cachedtickets/page.${ext}`]);
    const passive = ['pub/acme/files/doc.pdf', 'priv/acme/doc.txt', 'pub/acme/files/page.html.bin'];
    for (const name of [...active, ...passive]) expect((await upload(name, Buffer.from('<svg onload="alert(1)"/>'))).status).toBe(201);
    const check = async (name: string, sandboxed: boolean) => {
      const res = await fetch(`${front}${name.startsWith('priv/') ? signed(name) : `/${name}`}`);
      expect(res.status, name).toBe(200);
      expect(res.headers.get('x-content-type-options'), name).toBe('nosniff');
      expect(res.headers.get('content-security-policy'), name).toBe(sandboxed ? 'sandbox' : null);
      await res.arrayBuffer();
    };
    for (const name of active) await check(name, true);
    for (const name of passive) await check(name, false);
    // An upper-case extension is the same type.
    expect((await upload('pub/acme/files/UP.HTML', Buffer.from('<p>'))).status).toBe(201);
    await check('pub/acme/files/UP.HTML', true);
  });

  it('keeps the X-Accel-Redirect target internal', async () => {
    const res = await fetch(`${front}/_files/priv/acme/secret.pdf`);
    expect(res.status).toBe(404);
    expect((await bytes(res)).includes(Buffer.from('%PDF'))).toBe(false);
  });

  it('deletes through the front with a token: 204, then a signed GET is 404', async () => {
    const del = await fetch(`${front}/priv/acme/secret.pdf`, { method: 'DELETE', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(del.status).toBe(204);
    expect((await fetch(`${front}${signed('priv/acme/secret.pdf')}`)).status).toBe(404);
  });
});
