import type { ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, closeSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mimeTypes, renderFront, renderMainConfig, renderStaticServer } from './nginx-config.js';
import { startProcess, stopProcess } from './processes.js';
import { nginxHasErrorLogFlag } from './tools.js';
import { NODE_FLAGS } from '../src/node-flags.js';

/** limits.tenant all off (README "Tenants"): benches measure capacity, and all their load is one tenant. */
export const NO_TENANT_LIMITS = { uploadsPerMinute: null, bytesPerMinute: null, inflightUploads: null, inflightBytes: null };

/** Something the bench measures: an HTTP server on 127.0.0.1 that it started itself. */
export interface Target {
  id: string;
  label: string;
  /** floor: the plain node:http server of bench/floor-server.ts. */
  kind: 'nginx' | 'node' | 'front' | 'floor';
  /** http://127.0.0.1:<port> */
  url: string;
  pid: number;
  /** Processes whose CPU time counts as this target's, each with its children (nginx workers, the node's workers; a front: nginx and its node). */
  cpuPids: number[];
  /** Request path that uploads `name` (e.g. pub/bench/x.bin). */
  putPath(name: string): string;
  /** Directory under which `name` is stored. */
  filesDir: string;
  /** Log file (nginx error log, node stdout/stderr). */
  logPath: string;
}

export interface NginxTargetOptions {
  id: string;
  label: string;
  /** "1" or "auto". */
  workerProcesses: string;
  /** Document root, shared by the plain nginx targets. */
  root: string;
  /** Where this instance's prefix (config, pid, logs, temp dirs) goes. */
  workDir: string;
  /** For many connections (the clients bench): worker_connections and worker_rlimit_nofile. */
  workerConnections?: number;
  rlimitNofile?: number;
}

/** A plain nginx: static files plus WebDAV PUT/DELETE into `root`. */
export async function startNginx(options: NginxTargetOptions): Promise<Target> {
  const port = await freePort();
  const listen = `127.0.0.1:${port}`;
  const server = renderStaticServer(listen, options.root);
  const prefix = join(options.workDir, `nginx-${options.id}`);
  const pid = await launchNginx(options.label, prefix, options.workerProcesses, server, `http://${listen}/`, options);
  return {
    id: options.id, label: options.label, kind: 'nginx', url: `http://${listen}`, pid, cpuPids: [pid],
    putPath: (name) => `/${name}`, filesDir: options.root, logPath: join(prefix, 'error.log'),
  };
}

export interface FrontTargetOptions {
  id: string;
  label: string;
  node: Target;
  /** The node's dataDir. */
  dataDir: string;
  /** config/nginx.conf.example */
  examplePath: string;
  workDir: string;
}

/** The shipped front (config/nginx.conf.example) in front of a node. */
export async function startFront(options: FrontTargetOptions): Promise<Target> {
  const port = await freePort();
  const listen = `127.0.0.1:${port}`;
  const server = renderFront(options.examplePath, {
    dataDir: options.dataDir, upstream: options.node.url.replace(/^http:\/\//, ''), listen,
  });
  const prefix = join(options.workDir, `nginx-${options.id}`);
  const pid = await launchNginx(options.label, prefix, 'auto', server, `http://${listen}/healthz`);
  return {
    id: options.id, label: options.label, kind: 'front', url: `http://${listen}`, pid, cpuPids: [pid, options.node.pid],
    putPath: (name) => `/upload/${name}`, filesDir: join(options.dataDir, 'files'), logPath: join(prefix, 'error.log'),
  };
}

async function launchNginx(label: string, prefix: string, workers: string, http: string, readyUrl: string,
  limits: { workerConnections?: number; rlimitNofile?: number } = {}): Promise<number> {
  mkdirSync(prefix, { recursive: true });
  writeFileSync(join(prefix, 'mime.types'), mimeTypes());
  const confPath = join(prefix, 'nginx.conf');
  writeFileSync(confPath, renderMainConfig({ prefix, workerProcesses: workers, http, workerConnections: limits.workerConnections, rlimitNofile: limits.rlimitNofile }));
  const errorLog = join(prefix, 'error.log');
  // -e (nginx >= 1.19.5) keeps even the messages before the config is read
  // out of the distro's /var/log/nginx/error.log.
  const args = ['-p', `${prefix}/`, '-c', confPath, ...(nginxHasErrorLogFlag() ? ['-e', errorLog] : [])];
  const check = startProcess(`nginx -t (${label})`, 'nginx', [...args, '-t', '-q'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const checkErr = await collect(check);
  if (check.exitCode !== 0) throw new Error(`nginx config of ${label} is invalid (${confPath}):\n${checkErr}`);
  const child = startProcess(label, 'nginx', args, { stdio: ['ignore', 'ignore', 'pipe'], stopSignal: 'SIGQUIT' });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  await waitForHttp(readyUrl, child, () => `${stderr}${tail(errorLog)}`, label);
  return child.pid!;
}

export interface NodeTargetOptions {
  id: string;
  label: string;
  /** dist/src/cli.js */
  cliPath: string;
  dataDir: string;
  /** Deep-merged over the defaults (NANOCDN_CONFIG). */
  config: Record<string, unknown>;
  token: string;
  workDir: string;
  /** Extra node flags, e.g. --cpu-prof. */
  nodeFlags?: string[];
  /** Extra environment, e.g. NANOCDN_WORKERS. */
  env?: Record<string, string>;
}

/** The built node, `node dist/src/cli.js serve`, on loopback with its own data dir. */
export async function startNode(options: NodeTargetOptions): Promise<Target> {
  const port = await freePort();
  mkdirSync(options.dataDir, { recursive: true });
  const configPath = join(options.workDir, `${options.id}.config.json`);
  writeFileSync(configPath, JSON.stringify(options.config, null, 2));
  const logPath = join(options.workDir, `${options.id}.log`);
  const logFd = openSync(logPath, 'a');
  // As `npm start` and the `nanocdn` binary start it (src/node-flags.ts).
  const child = startProcess(options.label, process.execPath, [...NODE_FLAGS, ...(options.nodeFlags ?? []), options.cliPath, 'serve'], {
    stdio: ['ignore', logFd, logFd],
    env: {
      ...process.env,
      NANOCDN_HOST: '127.0.0.1',
      NANOCDN_PORT: String(port),
      NANOCDN_DATA_DIR: options.dataDir,
      NANOCDN_TOKENS: options.token,
      NANOCDN_CONFIG: configPath,
      ...options.env,
    },
  });
  closeSync(logFd);
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/healthz`, child, () => tail(logPath), options.label);
  return {
    id: options.id, label: options.label, kind: 'node', url, pid: child.pid!, cpuPids: [child.pid!],
    putPath: (name) => `/upload/${name}`, filesDir: join(options.dataDir, 'files'), logPath,
  };
}

export interface FloorTargetOptions {
  id: string;
  label: string;
  /** Its files/ and tmp/ go here (one filesystem: the rename is atomic). */
  dataDir: string;
  workDir: string;
  /** false: --no-hash, no sha256 of the body. */
  hash: boolean;
  /** How a GET reads: through the thread pool (default), blocking the event loop (--blocking-reads), or small bodies kept in memory once read (--cached-reads). */
  reads?: 'blocking' | 'cached';
}

/** The platform floor (bench/floor-server.ts): plain node:http in node:cluster, one worker per core, on loopback. */
export async function startFloor(options: FloorTargetOptions): Promise<Target> {
  const port = await freePort();
  const filesDir = join(options.dataDir, 'files');
  const tmpDir = join(options.dataDir, 'tmp');
  mkdirSync(filesDir, { recursive: true });
  mkdirSync(tmpDir, { recursive: true });
  const logPath = join(options.workDir, `${options.id}.log`);
  const logFd = openSync(logPath, 'a');
  // Next to this file: dist/bench/floor-server.js.
  const script = fileURLToPath(new URL('./floor-server.js', import.meta.url));
  // With the node's V8 flags (src/node-flags.ts; its workers inherit them): the floor of a node tuned alike.
  const child = startProcess(options.label, process.execPath,
    [...NODE_FLAGS, script, '--port', String(port), '--files', filesDir, '--tmp', tmpDir, ...(options.hash ? [] : ['--no-hash']), ...(options.reads ? [`--${options.reads}-reads`] : [])],
    { stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  const url = `http://127.0.0.1:${port}`;
  // Any answer to / (a 404) means a worker listens, as for nginx.
  await waitForHttp(`${url}/`, child, () => tail(logPath), options.label);
  return {
    id: options.id, label: options.label, kind: 'floor', url, pid: child.pid!, cpuPids: [child.pid!],
    putPath: (name) => `/${name}`, filesDir, logPath,
  };
}

export async function stopTarget(target: Target): Promise<void> {
  await stopProcess(target.pid, 15_000);
}

/** Polls until `url` answers 2xx (nginx: any answer at all), or the process exits. */
async function waitForHttp(url: string, child: ChildProcess, diagnostics: () => string, label: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${label} exited (${child.exitCode ?? child.signalCode}) before answering ${url}:\n${diagnostics()}`);
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.ok || url.endsWith('/')) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${label} did not answer ${url} within ${timeoutMs} ms (${last}):\n${diagnostics()}`);
}

function collect(child: ChildProcess): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    child.stderr?.on('data', (chunk: Buffer) => { text += chunk.toString(); });
    child.once('close', () => resolve(text));
  });
}

function tail(path: string, lines = 20): string {
  if (!existsSync(path)) return '';
  return readFileSync(path, 'utf8').split('\n').slice(-lines).join('\n');
}

/** A free TCP port on 127.0.0.1 (the kernel's pick; freed at once). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
