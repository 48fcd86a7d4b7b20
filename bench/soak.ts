/**
 * `npm run soak -- --minutes N`: a long mixed, bounded load against the
 * built node, watching for leaks (issue 13).
 *
 * Starts the built node (`dist/src/cli.js serve`) on a 64 MiB tmpfs when
 * root may mount one (else a temp dir, without the disk that fills), then
 * for N minutes runs a few workers that upload cache files (with retries
 * on 5xx/507 and some uploads aborted half-way), read them (whole and
 * ranged), delete some and ask for eviction runs, while a filler writes a
 * big file behind the node's back every cycle so the disk crosses the high
 * watermark (the node evicts) and then drains. Every few seconds it samples
 * the node's RSS and open fds (/proc), its event-loop delay (p99 from
 * /metrics) and the entries in tmp/. It fails (exit 1) if any of them keeps
 * growing: the mean of the last third of the samples above the mean of the
 * first third (after a warm-up) by more than a margin.
 *
 *   npm run soak -- --minutes 20            options: --sample-seconds S  --json  --keep
 * Every process it starts is stopped by pid; the tmpfs is unmounted.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync, unlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { trends, type Sample } from './soak-trend.js';
import { NODE_FLAGS } from '../src/node-flags.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli.js');
const KiB = 1024;
/** Concurrent clients (the tmp-entries limit allows this many uploads in flight). */
const WORKERS = 6;

interface Options { minutes: number; sampleSeconds: number; json: boolean; keep: boolean }

function parseArgs(argv: string[]): Options {
  const options: Options = { minutes: 1, sampleSeconds: 0, json: false, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--minutes') options.minutes = Number(argv[++i]);
    else if (arg === '--sample-seconds') options.sampleSeconds = Number(argv[++i]);
    else if (arg === '--json') options.json = true;
    else if (arg === '--keep') options.keep = true;
    else throw new Error(`unknown option ${arg} (--minutes N, --sample-seconds S, --json, --keep)`);
  }
  if (!(options.minutes > 0)) throw new Error('--minutes must be a positive number');
  // About 30+ samples whatever the duration.
  if (!(options.sampleSeconds > 0)) options.sampleSeconds = Math.max(1, Math.min(15, Math.round((options.minutes * 60) / 40)));
  return options;
}

interface Answer { status: number; body: Buffer }

/** One request on its own connection; network errors resolve to status 0. `abortAt`: send that many body bytes, then cut. */
function request(port: number, method: string, path: string, body?: Buffer, headers: Record<string, string | number> = {}, abortAt?: number): Promise<Answer> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, agent: false, headers: body ? { 'content-length': body.length, ...headers } : headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.setTimeout(30_000, () => req.destroy());
    req.on('error', () => resolve({ status: 0, body: Buffer.alloc(0) }));
    if (abortAt !== undefined && body) {
      req.write(body.subarray(0, abortAt), () => setTimeout(() => { req.destroy(); resolve({ status: 0, body: Buffer.alloc(0) }); }, 20));
      return;
    }
    req.end(body);
  });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/** A 64 MiB tmpfs when root may mount one, else null. */
function tryTmpfs(): string | null {
  if (process.getuid?.() !== 0) return null;
  const dir = mkdtempSync(join(tmpdir(), 'nanocdn-soak-fs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', dir], { stdio: 'ignore' });
    return dir;
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return null;
  }
}

interface Counters { uploads: number; uploadRetries: number; aborted: number; reads: number; deletes: number; evictions: number; fills: number; serverErrors: number; refused507: number }


function sampleOf(pid: number, dataDir: string, loopP99Ms: number, startMs: number): Sample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const st = statfsSync(dataDir);
  return {
    atS: Math.round((Date.now() - startMs) / 1000),
    rssMiB: Number((rssKiB / 1024).toFixed(1)),
    fds: readdirSync(`/proc/${pid}/fd`).length,
    loopP99Ms: Number(loopP99Ms.toFixed(2)),
    tmpEntries: readdirSync(join(dataDir, 'tmp')).length,
    usedPercent: Number(((100 * (st.blocks - st.bavail)) / st.blocks).toFixed(1)),
  };
}

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  const tmpfsDir = tryTmpfs();
  const dataDir = tmpfsDir ?? mkdtempSync(join(tmpdir(), 'nanocdn-soak-'));
  const configDir = mkdtempSync(join(tmpdir(), 'nanocdn-soak-cfg-'));
  const configFile = join(configDir, 'config.json');
  writeFileSync(configFile, JSON.stringify({
    logLevel: 'warn',
    durability: 'none',
    upload: { maxBytes: '4MiB' },
    disk: { minFreeBytes: '2MiB', minFreePercent: 0, highWatermarkPercent: 75, lowWatermarkPercent: 55 },
    eviction: { schedule: '*/10 * * * * *', tmpMaxAge: '1h' },
    classes: {
      cache: { match: ['*/*/cachedtickets/**'], evictable: true, maxAge: '90s', maxIdle: null, maxBytes: null, maxBytesPerTenant: '12MiB' },
      default: { evictable: false, maxBytesPerTenant: null },
    },
  }));
  const port = await freePort();
  // As shipped: with the V8 flags of the nanocdn binary's first line.
  const child = spawn(process.execPath, [...NODE_FLAGS, CLI, 'serve'], {
    env: { ...process.env, NANOCDN_HOST: '127.0.0.1', NANOCDN_PORT: String(port), NANOCDN_DATA_DIR: dataDir, NANOCDN_CONFIG: configFile },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-20_000); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const cleanup = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await Promise.race([exited, sleep(15_000)]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (tmpfsDir) spawnSync('umount', ['-l', tmpfsDir], { stdio: 'ignore' });
    if (!options.keep) rmSync(dataDir, { recursive: true, force: true });
    rmSync(configDir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => { void cleanup().then(() => process.exit(130)); });

  try {
    for (let i = 0; ; i++) {
      if ((await request(port, 'GET', '/healthz')).status === 200) break;
      if (child.exitCode !== null || i > 300) throw new Error(`the node did not start:\n${stderr}`);
      await sleep(100);
    }
    const startMs = Date.now();
    const endMs = startMs + options.minutes * 60_000;
    const counters: Counters = { uploads: 0, uploadRetries: 0, aborted: 0, reads: 0, deletes: 0, evictions: 0, fills: 0, serverErrors: 0, refused507: 0 };
    const names: string[] = [];
    let seq = 0;
    const note = (status: number) => {
      if (status >= 500 && status !== 507 && status !== 503) counters.serverErrors++;
      if (status === 507) counters.refused507++;
    };

    const upload = async (): Promise<void> => {
      const name = `pub/t${seq % 4}/cachedtickets/s-${seq++}.bin`;
      const body = Buffer.alloc((16 + Math.floor(Math.random() * 240)) * KiB, seq % 251);
      if (Math.random() < 0.1) {
        await request(port, 'PUT', `/upload/${name}`, body, {}, Math.floor(body.length / 2));
        counters.aborted++;
      }
      // Retries, as a client would: a cut upload left nothing, so the same name goes again.
      for (let attempt = 0; attempt < 3; attempt++) {
        const res = await request(port, 'PUT', `/upload/${name}`, body);
        note(res.status);
        if (res.status === 201 || res.status === 409) { counters.uploads++; names.push(name); return; }
        counters.uploadRetries++;
        await sleep(100 * (attempt + 1));
      }
    };
    const read = async (): Promise<void> => {
      const name = names[Math.floor(Math.random() * names.length)];
      if (!name) return;
      const headers: Record<string, string> = Math.random() < 0.3 ? { range: 'bytes=100-4195' } : {};
      note((await request(port, 'GET', `/${name}`, undefined, headers)).status);
      counters.reads++;
    };
    const remove = async (): Promise<void> => {
      const i = Math.floor(Math.random() * names.length);
      const name = names[i];
      if (!name) return;
      names.splice(i, 1);
      note((await request(port, 'DELETE', `/${name}`)).status);
      counters.deletes++;
    };
    const worker = async (): Promise<void> => {
      while (Date.now() < endMs) {
        const roll = Math.random();
        if (roll < 0.4) await upload();
        else if (roll < 0.85) await read();
        else if (roll < 0.97) await remove();
        else { note((await request(port, 'POST', '/admin/evict')).status); counters.evictions++; }
      }
    };
    // The disk fills behind the node's back, then drains (tmpfs only).
    const filler = async (): Promise<void> => {
      if (!tmpfsDir) return;
      const file = join(dataDir, 'filler.bin');
      while (Date.now() < endMs) {
        await sleep(8000);
        const st = statfsSync(dataDir);
        const bytes = Math.max(0, Math.floor(st.bavail * st.bsize - 0.03 * st.blocks * st.bsize));
        try { writeFileSync(file, Buffer.alloc(bytes)); } catch { /* full: as intended */ }
        counters.fills++;
        await sleep(4000);
        try { unlinkSync(file); } catch { /* gone */ }
      }
    };
    const samples: Sample[] = [];
    const sampler = async (): Promise<void> => {
      while (Date.now() < endMs) {
        await sleep(options.sampleSeconds * 1000);
        const metrics = (await request(port, 'GET', '/metrics')).body.toString();
        const p99 = Number(/^nodejs_eventloop_lag_p99_seconds (\S+)/m.exec(metrics)?.[1] ?? 0) * 1000;
        try { samples.push(sampleOf(child.pid!, dataDir, p99, startMs)); } catch { /* the node is gone: reported below */ }
        if (!options.json) {
          const s = samples.at(-1);
          if (s) process.stderr.write(`soak ${s.atS}s: rss ${s.rssMiB} MiB, fds ${s.fds}, loop p99 ${s.loopP99Ms} ms, tmp ${s.tmpEntries}, disk ${s.usedPercent} %\n`);
        }
      }
    };
    await Promise.all([...Array.from({ length: WORKERS }, worker), filler(), sampler()]);
    if (child.exitCode !== null) throw new Error(`the node exited during the soak:\n${stderr}`);
    // After the load: uploads done, nothing may stay in tmp/.
    await sleep(500);
    const tmpAfter = readdirSync(join(dataDir, 'tmp')).length;
    const verdict = trends(samples);
    const ok = verdict.every((t) => t.ok) && counters.serverErrors === 0 && tmpAfter === 0;
    const report = {
      minutes: options.minutes, disk: tmpfsDir ? 'tmpfs 64 MiB (fills and drains)' : 'temp dir (no fill: not root)',
      samples: samples.length, sampleSeconds: options.sampleSeconds, counters, tmpAfter, trends: verdict, ok,
      first: samples[0], last: samples.at(-1),
      peak: { rssMiB: Math.max(...samples.map((s) => s.rssMiB)), fds: Math.max(...samples.map((s) => s.fds)), loopP99Ms: Math.max(...samples.map((s) => s.loopP99Ms)), tmpEntries: Math.max(...samples.map((s) => s.tmpEntries)) },
    };
    if (options.json) {
      process.stdout.write(`${JSON.stringify(report)}\n`);
    } else {
      process.stdout.write(`soak ${options.minutes} min on ${report.disk}: ${samples.length} samples every ${options.sampleSeconds} s\n`);
      process.stdout.write(`load: ${JSON.stringify(counters)}; tmp entries after: ${tmpAfter}\n`);
      for (const t of verdict) process.stdout.write(`  ${t.metric.padEnd(11)} first third ${t.first}, last third ${t.last}, limit ${t.limit}: ${t.ok ? 'ok' : 'GROWING'}\n`);
      process.stdout.write(`${ok ? 'PASS' : 'FAIL'}\n`);
    }
    return ok ? 0 : 1;
  } finally {
    await cleanup();
  }
}

main().then((code) => { process.exitCode = code; }, (err: unknown) => {
  process.stderr.write(`soak: ${(err as Error).message}\n`);
  process.exitCode = 1;
});
