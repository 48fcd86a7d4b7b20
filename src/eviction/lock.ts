import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** Who holds the eviction lock, and since when (epoch ms); `host` when it is another node's (a shared index, docs/design.md §15). */
export interface LockHolder {
  pid: number;
  sinceMs: number;
  host?: string;
}

/** Another eviction run holds the lock (this process or another one). */
export class LockHeldError extends Error {
  constructor(readonly holder: LockHolder | null) {
    super(`another eviction run holds the eviction lock${holder ? ` (${holder.host ? `host ${holder.host}, ` : ''}pid ${holder.pid}, since ${new Date(holder.sinceMs).toISOString()})` : ''}; wait for it to finish`);
    this.name = 'LockHeldError';
  }

  get holderPid(): number | null {
    return this.holder?.pid ?? null;
  }
}

/** A held lock; release() is idempotent. */
export interface HeldLock {
  readonly sinceMs: number;
  release(): void;
}

/** How long a holder may take to say who it is before we call it unknown. */
const QUERY_TIMEOUT_MS = 1000;

/** Locks this process holds, by address (answers lockHolder without a round trip). */
const heldHere = new Map<string, LockHolder>();

/**
 * The lock's name: an abstract-namespace Unix socket (Linux) named after the
 * real path of the data dir, so every process on this host that opens the
 * same data dir (server, cleanup command) meets at the same name.
 */
export function lockAddress(dataDir: string): string {
  let real: string;
  try { real = realpathSync(dataDir); } catch { real = path.resolve(dataDir); }
  return `\0nanocdn-evict-${createHash('sha256').update(real).digest('hex').slice(0, 32)}`;
}

/**
 * Takes the eviction lock of `dataDir`, so runs never overlap across
 * processes. It is a listening abstract Unix socket: taking it writes
 * nothing to disk (it works on a 100 % full disk), and the kernel frees the
 * name when the holder dies, so a crash never leaves a stale lock. Others
 * connecting get `{pid, sinceMs}` of the holder. Throws LockHeldError.
 * Limit: processes in different network namespaces (containers) do not see
 * each other's lock.
 */
export async function acquireEvictionLock(dataDir: string): Promise<HeldLock> {
  const address = lockAddress(dataDir);
  const holder: LockHolder = { pid: process.pid, sinceMs: Date.now() };
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.end(`${JSON.stringify(holder)}\n`);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(address, () => { server.off('error', reject); resolve(); });
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new LockHeldError(heldHere.get(address) ?? await queryHolder(address));
    throw err;
  }
  server.on('error', () => undefined);
  server.unref();
  heldHere.set(address, holder);
  let released = false;
  return {
    sinceMs: holder.sinceMs,
    release() {
      if (released) return;
      released = true;
      heldHere.delete(address);
      server.close();
    },
  };
}

/** The holder of the eviction lock of `dataDir`, or null when nobody holds it. */
export async function lockHolder(dataDir: string): Promise<LockHolder | null> {
  const address = lockAddress(dataDir);
  const here = heldHere.get(address);
  if (here) return here;
  return queryHolder(address).catch(() => null);
}

/**
 * Asks the process listening on `address` who it is. Null when nobody
 * listens; a holder that does not answer in time is reported with pid 0.
 */
function queryHolder(address: string): Promise<LockHolder | null> {
  return new Promise((resolve) => {
    let text = '';
    let settled = false;
    const done = (value: LockHolder | null) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve(value);
    };
    const socket = net.connect(address);
    socket.setTimeout(QUERY_TIMEOUT_MS, () => done({ pid: 0, sinceMs: Date.now() }));
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => { text += chunk; });
    socket.on('end', () => done(parseHolder(text)));
    socket.on('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED' || err.code === 'ENOENT' ? null : { pid: 0, sinceMs: Date.now() }));
  });
}

function parseHolder(text: string): LockHolder {
  try {
    const value = JSON.parse(text) as Partial<LockHolder>;
    if (Number.isInteger(value.pid) && Number.isFinite(value.sinceMs)) return { pid: value.pid!, sinceMs: value.sinceMs! };
  } catch { /* an unexpected answer */ }
  return { pid: 0, sinceMs: Date.now() };
}
