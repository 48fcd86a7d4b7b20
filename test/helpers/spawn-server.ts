import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ABOVE = fileURLToPath(new URL('../..', import.meta.url));
/** The checkout, also when this file runs compiled under dist/ (bench/nodes.ts uses the cluster helpers). */
export const REPO_ROOT = path.basename(ABOVE) === 'dist' ? `${path.dirname(ABOVE)}/` : ABOVE;
export const CLI = path.join(REPO_ROOT, 'dist', 'src', 'cli.js');

export interface SpawnedServer {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  readonly dataDir: string;
  /** The config file passed as NANOCDN_CONFIG (rewrite it and send SIGHUP to reload). */
  readonly configFile: string;
  readonly child: ChildProcess;
  /** Everything the process printed (JSON log lines). */
  output(): string;
  /** SIGTERM and wait for exit; returns the exit code. */
  stop(): Promise<number | null>;
  /** kill -9 and wait. */
  kill9(): Promise<void>;
}

/**
 * Spawns the built server (`node dist/src/cli.js serve`, built by `pretest`)
 * on a random loopback port (or `port`). `config` is written to a file passed as
 * NANOCDN_CONFIG. Resolves once /healthz answers.
 */
export async function spawnServer(options: { dataDir?: string; config?: Record<string, unknown>; env?: Record<string, string>; port?: number } = {}): Promise<SpawnedServer> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` (npm test does it in pretest)`);
  const dataDir = options.dataDir ?? mkdtempSync(path.join(os.tmpdir(), 'nanocdn-sys-'));
  const configFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'nanocdn-cfg-')), 'config.json');
  writeFileSync(configFile, JSON.stringify({ logLevel: 'info', ...options.config }));
  // A fixed port lets a restarted node come back where a proxy expects it (test/helpers/node-cluster.ts).
  const port = options.port ?? await freePort();
  const child = spawn(process.execPath, [CLI, 'serve'], {
    env: { ...process.env, NANOCDN_WORKERS: '1', NANOCDN_HOST: '127.0.0.1', NANOCDN_PORT: String(port), NANOCDN_DATA_DIR: dataDir, NANOCDN_CONFIG: configFile, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}:\n${output}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error(`server did not become healthy:\n${output}`); }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url, port, pid: child.pid!, dataDir, configFile, child,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
    async kill9() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** `n` distinct free loopback ports (all held open together while picked, so they differ). */
/** One sample's value from a /metrics text (0 when absent). */
export function metricSample(metrics: string, series: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

export async function freePorts(n: number): Promise<number[]> {
  const net = await import('node:net');
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise<import('node:net').Server>((resolve, reject) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => resolve(srv));
    srv.on('error', reject);
  })));
  const ports = servers.map((srv) => (srv.address() as import('node:net').AddressInfo).port);
  await Promise.all(servers.map((srv) => new Promise((resolve) => srv.close(resolve))));
  return ports;
}

/** One free loopback port. */
export async function freePort(): Promise<number> {
  return (await freePorts(1))[0];
}

/** Writes a config file and returns its path (for CLI subprocess tests). */
export function writeConfig(config: Record<string, unknown>): string {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'nanocdn-cfg-')), 'config.json');
  writeFileSync(file, JSON.stringify(config));
  return file;
}
