import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkGet, checkPut, placeFixture, removeStored } from './fixtures.js';
import { authHeaders } from './measure.js';
import { fixtureName, type Scenario, type TargetId } from './scenarios.js';
import { NO_TENANT_LIMITS, startFront, startNginx, startNode, type Target } from './targets.js';

export interface SetupOptions {
  workDir: string;
  /** dist/src/cli.js */
  cliPath: string;
  /** config/nginx.conf.example */
  examplePath: string;
  token: string;
  /** Extra node flags per node id (--cpu-prof). */
  nodeFlags: (id: string) => string[];
}

/** The node's config in the bench (NANOCDN_CONFIG), deep-merged over the defaults by the node. */
export function nodeConfig(durability: 'fsync' | 'none', extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    durability,
    // priv reads through the token path: trust no address, not even loopback.
    auth: { trustedNetworks: [] },
    disk: { minFreeBytes: 0, minFreePercent: 0 },
    // The write path's throughput, not the per-tenant limits: one bench tenant PUTs far past 1,200 uploads a minute.
    limits: { tenant: NO_TENANT_LIMITS },
    ...extra,
  };
}

/** Starts the targets the scenarios need (and the node behind the front). */
export async function startTargets(scenarios: Scenario[], options: SetupOptions): Promise<Map<TargetId, Target>> {
  const needed = new Set(scenarios.flatMap((s) => s.variants.map((v) => v.target)));
  const targets = new Map<TargetId, Target>();
  const { workDir, cliPath, token } = options;
  const nginxRoot = join(workDir, 'nginx-root');
  mkdirSync(nginxRoot, { recursive: true });
  for (const [id, label, workerProcesses] of [['nginx-1', 'nginx 1 worker', '1'], ['nginx-auto', 'nginx auto workers', 'auto']] as const) {
    if (needed.has(id)) targets.set(id, await startNginx({ id, label, workerProcesses, root: nginxRoot, workDir }));
  }
  // workers (issue 11): 1 = one process; auto = one per core the process may use (primary + workers: CPU summed over the tree).
  for (const [id, durability, workers] of [['node-1', 'fsync', '1'], ['node-auto', 'fsync', 'auto'], ['node-none', 'none', '1']] as const) {
    if (!needed.has(id)) continue;
    targets.set(id, await startNode({
      id, label: `${id} (workers=${workers}, ${durability})`, cliPath, dataDir: join(workDir, id), config: nodeConfig(durability), token, workDir,
      nodeFlags: options.nodeFlags(id), env: { NANOCDN_WORKERS: workers },
    }));
  }
  if (needed.has('front')) {
    const dataDir = join(workDir, 'node-front');
    const backend = await startNode({
      id: 'node-front', label: 'node behind the front', cliPath, dataDir, token, workDir, nodeFlags: options.nodeFlags('node-front'),
      env: { NANOCDN_WORKERS: 'auto' },
      config: nodeConfig('none', { download: { accelRedirect: '/_files/' } }),
    });
    targets.set('front', await startFront({ id: 'front', label: 'front (config/nginx.conf.example)', node: backend, dataDir, examplePath: options.examplePath, workDir }));
  }
  return targets;
}

/**
 * Places the GET files on every target that serves them and writes the PUT
 * bodies; then sends one request of every variant as wrk will, so a wrong
 * setup fails here with a message rather than as a table of errors.
 * Returns the PUT body file of each size.
 */
export async function prepareFixtures(scenarios: Scenario[], targets: Map<TargetId, Target>, workDir: string, token: string): Promise<Map<number, string>> {
  const bodies = new Map<number, Buffer>();
  const body = (size: number) => bodies.get(size) ?? bodies.set(size, randomBytes(size)).get(size)!;
  const putBodies = new Map<number, string>();
  for (const scenario of scenarios) {
    if (scenario.method === 'PUT') {
      const path = join(workDir, `body-${scenario.size}.bin`);
      writeFileSync(path, body(scenario.size));
      putBodies.set(scenario.size, path);
      continue;
    }
    for (const target of new Set(scenario.variants.map((v) => targets.get(v.target)!))) {
      for (const visibility of ['pub', 'priv'] as const) {
        await placeFixture(target, fixtureName(visibility, scenario.size), body(scenario.size), token);
      }
    }
  }
  for (const scenario of scenarios) {
    for (const variant of scenario.variants) {
      const target = targets.get(variant.target)!;
      if (scenario.method === 'GET') {
        await checkGet(target, variant.name!, scenario.size, authHeaders(variant, token));
      } else {
        await checkPut(target, 'pub/bench-check/0.bin', body(scenario.size), authHeaders(variant, token));
        await removeStored(target, 'pub/bench-check', token);
      }
    }
  }
  return putBodies;
}
