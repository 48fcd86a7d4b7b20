import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { PostgresCluster } from './postgres.js';
import { freePorts, REPO_ROOT, spawnServer, type SpawnedServer } from './spawn-server.js';
import type { SwiftCluster } from './swift.js';
import { hasTool, requirement } from './system-tools.js';

/** The shipped HAProxy example (docs/several-nodes.md). */
export const SHIPPED_HAPROXY_CFG = path.join(REPO_ROOT, 'config', 'haproxy.cfg');
export const CLUSTER_TOKEN = 'cluster-token-0123456789abcdef';
export const clusterAuth = { Authorization: `Bearer ${CLUSTER_TOKEN}` };

/** requirement() for tests that need HAProxy (Debian's `haproxy`, 2.6 on Debian 12): runs in CI, skips loudly elsewhere. */
export function haproxyRequirement(): boolean {
  return requirement('HAProxy (apt-get install haproxy)', hasTool('haproxy'), 'apt-get install haproxy');
}

/**
 * The shipped config with only its `bind` port and `server` lines replaced:
 * every other setting (checks, retries, redispatch, timeouts) is the one an
 * operator copies. Throws when the shipped file no longer has exactly one
 * `bind` and at least one `server` line, so this cannot drift silently.
 */
export function haproxyConfigFor(shipped: string, bindPort: number, servers: { name: string; port: number }[]): string {
  const lines = shipped.split('\n');
  const binds = lines.filter((l) => /^\s*bind\s/.test(l));
  const serverAt = lines.findIndex((l) => /^\s*server\s/.test(l));
  if (binds.length !== 1 || serverAt < 0) throw new Error('config/haproxy.cfg must have one bind line and at least one server line');
  const out: string[] = [];
  for (const [i, line] of lines.entries()) {
    if (/^\s*bind\s/.test(line)) out.push(line.replace(/bind\s+\S+/, `bind 127.0.0.1:${bindPort}`));
    else if (/^\s*server\s/.test(line)) {
      if (i === serverAt) for (const s of servers) out.push(`    server ${s.name} 127.0.0.1:${s.port} check`);
    } else out.push(line);
  }
  return out.join('\n');
}

export interface NodeCluster {
  /** HAProxy's frontend, e.g. http://127.0.0.1:41234. */
  readonly proxyUrl: string;
  readonly bucket: string;
  /** The database every node shares. */
  readonly dbUrl: string;
  /** Node i (0-based) while it runs; HAProxy knows it as `node<i+1>` on ports[i]. */
  readonly nodes: (SpawnedServer | undefined)[];
  readonly ports: readonly number[];
  /** Starts node i (again) on its port, with its own data dir. */
  startNode(i: number): Promise<SpawnedServer>;
  /** SIGTERM (a drain) and wait; returns the exit code. */
  stopNode(i: number): Promise<number | null>;
  kill9Node(i: number): Promise<void>;
  /** Everything node i printed, the running process or the last one stopped (JSON log lines). */
  outputOf(i: number): string;
  /** HAProxy's log (stdout + stderr). */
  haproxyOutput(): string;
  /** Waits until HAProxy logs that `node<i+1>` is `state` (UP/DOWN) after `since` characters of its log; returns the ms waited. */
  waitServer(i: number, state: 'UP' | 'DOWN', since: number, timeoutMs?: number): Promise<number>;
  /** Stops HAProxy and every node (by pid), removes the data dirs; the bucket and database stay (the caller owns pg/swift). */
  stop(): Promise<void>;
}

export interface ClusterOptions {
  pg: PostgresCluster;
  swift: SwiftCluster;
  nodes: number;
  /** Extra config merged into each node's (storage.s3 extras go in `s3`). */
  config?: Record<string, unknown>;
  s3?: Record<string, unknown>;
  env?: Record<string, string>;
  label?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * N nodes (index.engine "postgres" + storage.engine "s3") on one fresh
 * database and one fresh bucket, each with its own data dir and
 * NANOCDN_WORKERS=1, behind HAProxy 2.6 run from the shipped
 * config/haproxy.cfg (`haproxy -db -f`). Everything started is stopped by
 * pid in stop().
 */
export async function startCluster(options: ClusterOptions): Promise<NodeCluster> {
  const { pg, swift } = options;
  const label = options.label ?? 'ha';
  const [bucket, dbUrl] = await Promise.all([swift.newBucket(label), pg.newDatabase(label)]);
  const ports = await freePorts(options.nodes + 1);
  const proxyPort = ports.pop()!;
  const dataDirs: string[] = [];
  const nodes: (SpawnedServer | undefined)[] = Array.from({ length: options.nodes }, () => undefined);
  const last: (SpawnedServer | undefined)[] = [];
  const config = {
    logLevel: 'info',
    storage: swift.s3Config(bucket, options.s3),
    index: { engine: 'postgres', url: dbUrl },
    auth: { tokens: [CLUSTER_TOKEN], trustedNetworks: [], signingSecret: null },
    monitoring: { public: true },
    ...options.config,
  };

  const startNode = async (i: number): Promise<SpawnedServer> => {
    if (nodes[i]) throw new Error(`node${i + 1} is running`);
    const dataDir = mkdtempSync(path.join(os.tmpdir(), `nanocdn-${label}-node${i + 1}-`));
    dataDirs.push(dataDir);
    const node = await spawnServer({ dataDir, port: ports[i], config, env: options.env });
    nodes[i] = node;
    last[i] = node;
    return node;
  };

  let haproxy: ChildProcess | undefined;
  let haproxyOut = '';
  const cfgDir = mkdtempSync(path.join(os.tmpdir(), `nanocdn-${label}-haproxy-`));
  const stopAll = async () => {
    if (haproxy && haproxy.exitCode === null && haproxy.signalCode === null) {
      const exited = new Promise((r) => haproxy!.once('exit', r));
      haproxy.kill('SIGTERM');
      const killer = setTimeout(() => haproxy!.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
    }
    await Promise.all(nodes.map(async (node, i) => {
      nodes[i] = undefined;
      // SIGTERM drains for up to http.shutdownGrace; a test's cleanup does not wait for that.
      await node?.kill9();
    }));
    for (const dir of [...dataDirs, cfgDir]) rmSync(dir, { recursive: true, force: true });
  };

  try {
    await Promise.all(nodes.map((_, i) => startNode(i)));
    const cfgFile = path.join(cfgDir, 'haproxy.cfg');
    writeFileSync(cfgFile, haproxyConfigFor(readFileSync(SHIPPED_HAPROXY_CFG, 'utf8'), proxyPort, ports.map((port, i) => ({ name: `node${i + 1}`, port }))));
    const check = spawnSync('haproxy', ['-c', '-f', cfgFile], { encoding: 'utf8' });
    if (check.status !== 0) throw new Error(`haproxy -c refused the test config:\n${check.stdout}${check.stderr}`);
    haproxy = spawn('haproxy', ['-db', '-f', cfgFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    haproxy.stdout!.on('data', (d) => { haproxyOut += d; });
    haproxy.stderr!.on('data', (d) => { haproxyOut += d; });
    const proxyUrl = `http://127.0.0.1:${proxyPort}`;
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (haproxy.exitCode !== null) throw new Error(`haproxy exited with ${haproxy.exitCode}:\n${haproxyOut}`);
      try {
        if ((await fetch(`${proxyUrl}/readyz`)).ok) break;
      } catch { /* not listening yet */ }
      if (Date.now() > deadline) throw new Error(`haproxy did not answer:\n${haproxyOut}`);
      await sleep(100);
    }
    return {
      proxyUrl, bucket, dbUrl, nodes, ports,
      startNode,
      async stopNode(i) {
        const node = nodes[i];
        nodes[i] = undefined;
        return node ? node.stop() : null;
      },
      async kill9Node(i) {
        const node = nodes[i];
        nodes[i] = undefined;
        await node?.kill9();
      },
      outputOf: (i) => last[i]?.output() ?? '',
      haproxyOutput: () => haproxyOut,
      async waitServer(i, state, since, timeoutMs = 20_000) {
        const started = Date.now();
        const pattern = new RegExp(`Server nanocdn_nodes/node${i + 1} is ${state}\\b`);
        while (!pattern.test(haproxyOut.slice(since))) {
          if (Date.now() - started > timeoutMs) throw new Error(`HAProxy did not mark node${i + 1} ${state} within ${timeoutMs} ms:\n${haproxyOut.slice(since)}`);
          await sleep(50);
        }
        return Date.now() - started;
      },
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
