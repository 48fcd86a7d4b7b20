import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './spawn-server.js';
import { requirement } from './system-tools.js';

const run = promisify(execFile);
const SCRIPT = path.join(REPO_ROOT, 'scripts', 'postgres-test-cluster.sh');
const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';

/**
 * A cluster to reuse instead of starting one per test file: the URL of a role
 * that may create databases (e.g. the PG_URL that
 * `scripts/postgres-test-cluster.sh start` printed).
 */
const REUSE_URL = process.env.NANOCDN_TEST_PG_URL;

/** Can this process start a throw-away cluster (PostgreSQL 15's binaries; as root, the `postgres` user to run it as)? */
function canStartCluster(): boolean {
  if (!existsSync(path.join(PG_BIN, 'initdb')) || !existsSync(path.join(PG_BIN, 'pg_ctl'))) return false;
  if (process.getuid?.() !== 0) return true;
  // Debian's package creates the local user `postgres`; the script runs the server as it (runuser).
  return /^postgres:/m.test(readFileSync('/etc/passwd', 'utf8'));
}

/** requirement() for test files that need PostgreSQL: runs in CI, skips loudly elsewhere. */
export function postgresRequirement(): boolean {
  return requirement('PostgreSQL 15 (scripts/postgres-test-cluster.sh install)', REUSE_URL !== undefined || canStartCluster(),
    'run `scripts/postgres-test-cluster.sh install` as root, or set NANOCDN_TEST_PG_URL');
}

export interface PostgresCluster {
  /** The cluster's own database (`nanocdn`), as a URL with the password. */
  readonly url: string;
  /** A new, empty database on the cluster (its owner is the test role), as a URL. */
  newDatabase(label?: string): Promise<string>;
  /** Stops the server, keeping its data (an outage); not for a reused cluster. */
  pause(): Promise<void>;
  /** Starts a paused server again, on the same port. */
  resume(): Promise<void>;
  /** Stops the server (by pid, via the script) and removes its root; a reused cluster only loses the databases made here. */
  stop(): Promise<void>;
}

function parseVars(stdout: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) vars[m[1]] = m[2];
  }
  return vars;
}

/** Runs a PostgreSQL client program (createdb, dropdb) as the role of `url`, over TCP with its password. */
async function clientProgram(program: string, url: string, args: string[]): Promise<void> {
  const u = new URL(url);
  await run(path.join(PG_BIN, program), ['-h', u.hostname, '-p', u.port || '5432', '-U', decodeURIComponent(u.username), '-w', ...args], {
    env: { ...process.env, PGPASSWORD: decodeURIComponent(u.password) }, timeout: 60_000,
  });
}

/**
 * Starts a private PostgreSQL 15 for one test file (its own root, its own
 * free loopback port; scripts/postgres-test-cluster.sh), or uses the one
 * NANOCDN_TEST_PG_URL names. Each test takes its own database (newDatabase).
 */
export async function startPostgres(): Promise<PostgresCluster> {
  const made: string[] = [];
  const newDatabase = async (baseUrl: string, label: string) => {
    const name = `nanocdn_${label.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`;
    await clientProgram('createdb', baseUrl, [name]);
    made.push(name);
    const url = new URL(baseUrl);
    url.pathname = `/${name}`;
    return url.toString();
  };

  if (REUSE_URL !== undefined) {
    return {
      url: REUSE_URL,
      newDatabase: (label = 't') => newDatabase(REUSE_URL, label),
      pause: () => Promise.reject(new Error('a reused cluster (NANOCDN_TEST_PG_URL) cannot be paused')),
      resume: () => Promise.reject(new Error('a reused cluster (NANOCDN_TEST_PG_URL) cannot be resumed')),
      async stop() {
        for (const name of made.splice(0)) await clientProgram('dropdb', REUSE_URL, ['--force', '--if-exists', name]).catch(() => undefined);
      },
    };
  }

  const root = mkdtempSync(path.join(os.tmpdir(), 'nanocdn-pg-'));
  const env = { ...process.env, PG_START_TIMEOUT: '120' };
  const script = async (command: string) => run(SCRIPT, [command, root], { env, timeout: 150_000, maxBuffer: 1 << 20 });
  let stdout: string;
  try {
    ({ stdout } = await script('start'));
  } catch (err) {
    await script('wipe').catch(() => rmSync(root, { recursive: true, force: true }));
    throw new Error(`postgres-test-cluster.sh start failed: ${(err as Error).message}\n${(err as { stderr?: string }).stderr ?? ''}`, { cause: err });
  }
  // A test process that ends without stop() (a failed hook, a worker torn down) must not leave a server running.
  const wipeAtExit = () => { spawnSync(SCRIPT, ['wipe', root], { env, stdio: 'ignore', timeout: 30_000 }); };
  process.once('exit', wipeAtExit);
  const url = parseVars(stdout).PG_URL;
  if (!url) throw new Error(`postgres-test-cluster.sh start printed no PG_URL:\n${stdout}`);
  return {
    url,
    newDatabase: (label = 't') => newDatabase(url, label),
    async pause() { await script('stop'); },
    async resume() { await script('start'); },
    async stop() {
      process.removeListener('exit', wipeAtExit);
      await script('wipe');
    },
  };
}
