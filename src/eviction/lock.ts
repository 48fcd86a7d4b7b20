import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';

/** Another eviction run holds the lock (this process or another one). */
export class LockHeldError extends Error {
  constructor(readonly holderPid: number | null, readonly file: string) {
    super(`another eviction run holds ${file}${holderPid ? ` (pid ${holderPid})` : ''}; wait for it to finish`);
    this.name = 'LockHeldError';
  }
}

/** A held lock; release() is idempotent. */
export interface HeldLock {
  readonly file: string;
  release(): void;
}

/** Whether a process with this pid exists (EPERM: it exists, owned by someone else). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readHolder(file: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** The pid written in `<dataDir>/eviction.lock`, null when there is no lock (or no pid in it yet). */
export function evictionLockHolder(dataDir: string): number | null {
  return readHolder(path.join(dataDir, 'eviction.lock'));
}

/**
 * Takes `<dataDir>/eviction.lock` with O_EXCL and writes our pid into it, so
 * runs never overlap across processes (server, cleanup command). A lock whose
 * pid is dead is stale (a crashed run) and is broken. Throws LockHeldError.
 */
export function acquireEvictionLock(dataDir: string): HeldLock {
  const file = path.join(dataDir, 'eviction.lock');
  for (let attempt = 0; ; attempt++) {
    let fd: number;
    try {
      fd = openSync(file, 'wx', 0o644);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = readHolder(file);
      // An empty file may be a lock being written right now; only a dead pid is stale.
      if (holder === null || isAlive(holder) || attempt > 0) throw new LockHeldError(holder, file);
      try { unlinkSync(file); } catch { /* someone else broke it first */ }
      continue;
    }
    try {
      writeSync(fd, `${process.pid}\n`);
    } finally {
      closeSync(fd);
    }
    let released = false;
    return {
      file,
      release() {
        if (released) return;
        released = true;
        // Never remove a lock that someone else took after breaking ours.
        if (readHolder(file) === process.pid) {
          try { unlinkSync(file); } catch { /* already gone */ }
        }
      },
    };
  }
}
