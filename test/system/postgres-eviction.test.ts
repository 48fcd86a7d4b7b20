import { spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MetadataIndex } from '../../src/index/index.js';
import { openPostgresIndex } from '../../src/index/postgres/postgres-index.js';
import { postgresRequirement, startPostgres, type PostgresCluster } from '../helpers/postgres.js';
import { startCli } from '../helpers/cli-process.js';
import { CLI, REPO_ROOT, spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';
import { startSwift, swiftRequirement, type SwiftCluster } from '../helpers/swift.js';

const TOKEN = 'pg-evict-token-0123456789abcdef';
const auth = { Authorization: `Bearer ${TOKEN}` };

/**
 * Eviction once for a cluster (docs/design.md §15), three nodes on one
 * PostgreSQL + one Swift bucket: the schedule's ticks run on one node each,
 * the eviction lock (pg_advisory_lock on a connection of its own) is the
 * cluster's — the cleanup command and POST /admin/evict of any node are
 * refused while another process holds it, and `cleanup --wait` waits for
 * it — and the server lets it go when its holder dies.
 */
describe.runIf(postgresRequirement() && swiftRequirement())('eviction lock and schedule, /usage and /metrics of a cluster (PostgreSQL + Swift)', () => {
  let pg: PostgresCluster;
  let swift: SwiftCluster;
  let bucket: string;
  let url: string;
  let nodes: SpawnedServer[] = [];
  let index: MetadataIndex;

  const config = () => ({
    storage: swift.s3Config(bucket),
    index: { engine: 'postgres', url },
    auth: { tokens: [TOKEN], trustedNetworks: [], signingSecret: null },
    // Every second: ticks the three nodes' timers fire together.
    eviction: { schedule: '* * * * * *' },
  });

  beforeAll(async () => {
    // One after the other: each picks free ports, which the other could take meanwhile.
    swift = await startSwift();
    pg = await startPostgres();
    bucket = await swift.newBucket('evict');
    url = await pg.newDatabase('evict');
    nodes = [await spawnServer({ config: config() })];
    nodes.push(await spawnServer({ config: config() }));
    nodes.push(await spawnServer({ config: config() }));
    index = await openPostgresIndex(url);
  }, 240_000);
  afterAll(async () => {
    await index?.close();
    for (const node of nodes) await node.stop();
    await swift?.dropBucket(bucket).catch(() => undefined);
    await swift?.stop();
    await pg?.stop();
  }, 60_000);

  it('each scheduled tick runs on one node only: as many schedule runs as ticks, each tick claimed once', async () => {
    const since = await index.runs.cursor();
    await new Promise((r) => setTimeout(r, 6000));
    const runs = (await index.runs.since(since, 1000)).filter((run) => run.reason === 'schedule');
    const seconds = new Set(runs.map((run) => Math.round(run.atMs / 1000)));
    expect(runs.length).toBeGreaterThanOrEqual(3);
    // Three nodes without the cluster's tick would record three runs per second.
    expect(runs.length).toBe(seconds.size);
    expect(runs.length).toBeLessThanOrEqual(8);
  });

  it('the cleanup command and POST /admin/evict are refused while another process anywhere holds the lock; free again once it lets go', async () => {
    const lock = await index.eviction!.tryLock({ host: 'other-host', pid: 4242 });
    expect(lock).not.toBeNull();
    try {
      expect(await index.eviction!.holder()).toMatchObject({ host: 'other-host', pid: 4242 });
      expect(await index.eviction!.tryLock({ host: 'third', pid: 1 })).toBeNull();
      const cli = spawnSync(process.execPath, [CLI, 'cleanup', '--yes'], {
        env: { ...process.env, NANOCDN_CONFIG: nodes[0].configFile, NANOCDN_DATA_DIR: nodes[0].dataDir, NANOCDN_WORKERS: '1' }, encoding: 'utf8', timeout: 60_000,
      });
      expect(cli.status, cli.stderr).toBe(3);
      expect(cli.stderr).toContain('another eviction run holds the eviction lock (host other-host, pid 4242');
      for (const node of nodes) {
        const admin = await fetch(`${node.url}/admin/evict`, { method: 'POST', headers: auth });
        expect(admin.status).toBe(409);
        expect(((await admin.json()) as { error: string }).error).toBe('eviction_running');
      }
    } finally {
      await lock!.release();
    }
    expect(await index.eviction!.holder()).toBeNull();
    const admin = await fetch(`${nodes[1].url}/admin/evict`, { method: 'POST', headers: auth });
    expect([200, 409]).toContain(admin.status); // 409 only if a scheduled run of that second holds it
  });

  it('a cleanup with --wait on one node waits for the run another node holds the lock for, and runs once that run lets go', async () => {
    const lock = await index.eviction!.tryLock({ host: 'other-host', pid: 4343 });
    expect(lock).not.toBeNull();
    let released = false;
    const waiter = startCli(['cleanup', '--yes', '--json', '--tenant', 'nobody', '--wait', '60s'],
      { NANOCDN_CONFIG: nodes[0].configFile, NANOCDN_DATA_DIR: nodes[0].dataDir, NANOCDN_WORKERS: '1' });
    try {
      await waiter.stderrContains('waiting up to 60s', 30_000);
      // The nodes' schedule runs every second: the run the waiter first saw may be one of theirs, just ending.
      expect(waiter.stderr()).toMatch(/another eviction run holds the eviction lock \((host other-host, pid 4343|pid \d+, since)/);
      await new Promise((r) => setTimeout(r, 1500));
      expect(waiter.child.exitCode, waiter.stderr()).toBeNull();
      await lock!.release();
      released = true;
      expect(await waiter.exited, waiter.stderr()).toBe(0);
      expect(JSON.parse(waiter.stdout())).toMatchObject({ dryRun: false, error: null });
    } finally {
      if (!released) await lock!.release();
      waiter.kill();
    }
  }, 60_000);

  it('the server lets the lock go when its holder dies (kill -9)', async () => {
    const module = path.join(REPO_ROOT, 'dist', 'src', 'index', 'postgres', 'postgres-index.js');
    const script = `const { openPostgresIndex } = await import(${JSON.stringify(module)});
      const index = await openPostgresIndex(process.argv[1]);
      const lock = await index.eviction.tryLock({ host: 'doomed', pid: process.pid });
      process.stdout.write(lock ? 'locked\\n' : 'refused\\n');
      setInterval(() => undefined, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, url], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const said = await new Promise<string>((resolve) => child.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString().trim())));
      // A scheduled run of a node may hold it for a moment: try again until the child has it.
      expect(['locked', 'refused']).toContain(said);
      if (said === 'refused') return;
      expect(await index.eviction!.holder()).toMatchObject({ host: 'doomed', pid: child.pid });
      expect(await index.eviction!.tryLock({ host: 'me', pid: process.pid })).toBeNull();
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    const deadline = Date.now() + 10_000;
    let holder = await index.eviction!.holder();
    while (holder?.host === 'doomed' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      holder = await index.eviction!.holder();
    }
    expect(holder?.host).not.toBe('doomed');
  });

  it('/usage reads the same from every node (uploads in flight from the shared holds); /metrics marks the cluster totals scope="cluster"', async () => {
    const body = Buffer.alloc(300_000, 7);
    expect((await fetch(`${nodes[0].url}/upload/pub/acme/stored.bin`, { method: 'PUT', headers: auth, body })).status).toBe(201);
    // An upload in flight on node 0: declared size, half of the body sent.
    const req = http.request(`${nodes[0].url}/upload/pub/acme/slow.bin`, { method: 'PUT', headers: { ...auth, 'Content-Length': '200000' } });
    const answered = new Promise<number>((resolve, reject) => {
      req.on('response', (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)); });
      req.on('error', reject);
    });
    req.write(Buffer.alloc(100_000, 1));
    try {
      type Usage = { inflight: { uploads: number; reservedBytes: number }; tenants: { tenant: string; inflight: { uploads: number; bytes: number } }[] };
      const usageOf = async (url: string) => (await (await fetch(`${url}/usage`, { headers: auth })).json()) as Usage;
      let usages: Usage[] = [];
      for (let i = 0; i < 50; i++) {
        usages = await Promise.all(nodes.map((node) => usageOf(node.url)));
        // The upload's hold is taken while a report is built: wait for one that saw it throughout.
        if (usages.every((u) => u.inflight.uploads === 1 && u.tenants.find((t) => t.tenant === 'acme')?.inflight.uploads === 1)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      for (const usage of usages) {
        expect(usage.inflight).toEqual({ uploads: 1, reservedBytes: 200_000 });
        expect(usage.tenants.find((t) => t.tenant === 'acme')?.inflight).toEqual({ uploads: 1, bytes: 200_000 });
      }
      const metrics = await Promise.all(nodes.map(async (node) => (await fetch(`${node.url}/metrics`, { headers: auth })).text()));
      for (const text of metrics) {
        expect(text).toContain('nanocdn_inflight_uploads{scope="cluster"} 1');
        expect(text).toMatch(/nanocdn_stored_bytes\{class="[^"]+",scope="cluster"\} 300000/);
        expect(text).toContain('nanocdn_tenant_stored_bytes{tenant="acme",scope="cluster"} 300000');
        // Per-node figures keep no scope label.
        expect(text).toMatch(/nanocdn_ready 1/);
      }
    } finally {
      req.end(Buffer.alloc(100_000, 1));
    }
    expect(await answered).toBe(201);
  });

  it('claimTick: of 3 handles racing for each of 5 ticks, exactly one wins each', async () => {
    const handles = [index, await openPostgresIndex(url), await openPostgresIndex(url)];
    try {
      const base = Date.now() + 3_600_000;
      for (let t = 0; t < 5; t++) {
        const won = await Promise.all(handles.map((h, i) => h.eviction!.claimTick(base + t * 1000, `n${i}`)));
        expect(won.filter(Boolean)).toHaveLength(1);
      }
    } finally {
      await Promise.all(handles.slice(1).map((h) => h.close()));
    }
  });
});
