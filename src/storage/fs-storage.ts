import { randomBytes } from 'node:crypto';
import fs, { constants as fsConstants, createReadStream, realpathSync } from 'node:fs';
import { once } from 'node:events';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HttpError, translateFsError } from '../errors.js';
import { parseName, pathOf, type StoredName } from '../names.js';
import type { ByteRange, LocalFile, LocalFiles, ObjectInfo, Storage, TmpStats } from './storage.js';
import { isLinkFree, openFdNoFollow } from './no-follow.js';
import { TmpFileWriter } from './tmp-file.js';

export interface FsStorageOptions {
  /** The data dir: bytes under files/, spool under tmp/. */
  dataDir: string;
  /** fsync file and directory before an upload is acknowledged. */
  fsync: boolean;
}

const READ_BUFFER = 1 << 20;
/** mkdir + link attempts when a concurrent prune removes the fresh parents in between. */
const LINK_ATTEMPTS = 5;

/**
 * Local-disk engine: stream into tmp/ (O_EXCL), fsync, link() into files/
 * (never replaces: EEXIST is a clean 409), unlink tmp, fsync the directory.
 * Symbolic links under files/ are never followed (src/storage/no-follow.ts):
 * reads open with O_NOFOLLOW and check the opened path, writes and deletes
 * check the parent directories; list() skips links and reports them.
 */
export class FsStorage implements Storage, LocalFiles {
  readonly kind = 'fs' as const;
  readonly tmpHasOwners = true;
  /** Canonical (realpath) after init(). */
  filesDir: string;
  readonly tmpDir: string;
  /** tmp entries owned by live writes; the sweeper leaves them alone. */
  private readonly liveTmp = new Set<string>();

  constructor(private readonly options: FsStorageOptions) {
    this.filesDir = canonical(path.resolve(options.dataDir, 'files'));
    this.tmpDir = path.resolve(options.dataDir, 'tmp');
  }

  /** Creates the layout and checks tmp/ and files/ share one filesystem (link() needs it). */
  async init(): Promise<void> {
    await fsp.mkdir(this.filesDir, { recursive: true });
    await fsp.mkdir(this.tmpDir, { recursive: true });
    // Canonical, so a path reached through a link anywhere below differs from it.
    this.filesDir = await fsp.realpath(this.filesDir);
    const [files, tmp] = await Promise.all([fsp.stat(this.filesDir), fsp.stat(this.tmpDir)]);
    if (files.dev !== tmp.dev) {
      throw new Error(`${this.tmpDir} and ${this.filesDir} are on different filesystems; uploads are linked from tmp/ into files/, so both must be on one filesystem`);
    }
  }

  localPath(name: StoredName): string {
    return pathOf(this.filesDir, name);
  }

  async write(name: StoredName, body: Readable, signal: AbortSignal): Promise<{ size: number }> {
    const finalPath = pathOf(this.filesDir, name);
    // Named after the writing process, so the primary of a clustered node sweeps a dead worker's entries at once.
    const tmpPath = path.join(this.tmpDir, `${process.pid}-${Date.now().toString(36)}-${randomBytes(8).toString('hex')}`);
    this.liveTmp.add(tmpPath);
    let out: TmpFileWriter | undefined;
    try {
      // O_CREAT|O_EXCL, batched writes, fsync before close; the pipeline
      // only resolves once close succeeded, so close errors are never dropped.
      out = new TmpFileWriter(tmpPath, this.options.fsync);
      await pipeline(body, out, { signal });
      const size = out.bytesWritten;
      const dirsToSync = await this.linkIntoPlace(tmpPath, finalPath, name);
      // The tmp entry goes while the directory is synced; both before the answer.
      const unlinked = fsp.unlink(tmpPath);
      try {
        if (this.options.fsync) for (const dir of dirsToSync) await fsyncDir(dir);
      } finally {
        await unlinked;
      }
      return { size };
    } catch (err) {
      // The stream opens (creates) its file in the thread pool: a write that
      // failed before that open finished would create the tmp file after this
      // rm, and leave it behind. Wait until the stream is closed.
      if (out && !out.closed) await once(out.destroy(), 'close').catch(() => undefined);
      await fsp.rm(tmpPath, { force: true });
      throw translateFsError(err, { name: name.name });
    } finally {
      this.liveTmp.delete(tmpPath);
    }
  }

  /** link() fails with EEXIST instead of replacing: a concurrent same-name upload loses cleanly. */
  /** @returns the directories whose entries changed, deepest first, to fsync (new parents too, or a crash may lose them). */
  private async linkIntoPlace(tmpPath: string, finalPath: string, name: StoredName): Promise<string[]> {
    const dir = path.dirname(finalPath);
    try {
      await this.refuseLinkedParent(dir, name);
      try {
        await fsp.link(tmpPath, finalPath);
        return [dir];
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      // Parents are missing; a delete pruning empty directories may remove them
      // again between our mkdir and link, so retry a few times.
      let firstCreated: string | undefined;
      for (let attempt = 1; ; attempt++) {
        try {
          const created = await fsp.mkdir(dir, { recursive: true });
          if (created && (!firstCreated || created.length < firstCreated.length)) firstCreated = created;
          await this.refuseLinkedParent(dir, name);
          await fsp.link(tmpPath, finalPath);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT' && attempt < LINK_ATTEMPTS) continue;
          throw err;
        }
        const dirs = [dir];
        if (firstCreated) for (let d = dir; d !== path.dirname(firstCreated); d = path.dirname(d)) dirs.push(path.dirname(d));
        return dirs;
      }
    } catch (err) {
      throw await explainLinkError(err, finalPath, name);
    }
  }

  /** A parent reached through a symbolic link: refused, never written through. */
  private async refuseLinkedParent(dir: string, name: StoredName): Promise<void> {
    if (await isLinkFree(this.filesDir, dir)) return;
    const why = 'a parent directory of the name is a symbolic link, which this node never follows';
    throw new HttpError('invalid_name', `Invalid name: ${why}.`, { reason: why, name: name.name });
  }

  /**
   * Opens the regular file stored under `name` for reading, never through a
   * symbolic link; `not_found` otherwise. The caller closes the handle.
   */
  async stat(name: StoredName): Promise<ObjectInfo | null> {
    try {
      const file = pathOf(this.filesDir, name);
      // lstat: a link is not a stored file; a linked parent is not either.
      const st = await fsp.lstat(file);
      if (!st.isFile() || !(await isLinkFree(this.filesDir, path.dirname(file)))) return null;
      return { name: name.name, size: st.size, mtimeMs: st.mtimeMs };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
      throw translateFsError(err, { name: name.name });
    }
  }

  /** The regular file of a name, reached without a symbolic link (src/storage/no-follow.ts). */
  async openFile(name: StoredName): Promise<LocalFile> {
    try {
      // Only a regular file (open() also succeeds on a directory, a prefix of other names: not an object).
      const { fd, stats } = await openFdNoFollow(pathOf(this.filesDir, name));
      return { fd, size: stats.size, mtimeMs: stats.mtimeMs };
    } catch (err) {
      throw notFoundOr(err as NodeJS.ErrnoException, name);
    }
  }

  async open(name: StoredName, range?: ByteRange): Promise<Readable> {
    const { fd } = await this.openFile(name);
    return createReadStream('', { fd, start: range?.start, end: range?.end, highWaterMark: READ_BUFFER });
  }

  async remove(name: StoredName): Promise<boolean> {
    try {
      const file = pathOf(this.filesDir, name);
      // Only a regular file reached without a link: never unlink through a linked parent, nor a link itself.
      if (!(await fsp.lstat(file)).isFile() || !(await isLinkFree(this.filesDir, path.dirname(file)))) return false;
      await fsp.unlink(file);
      await this.pruneEmptyParents(path.dirname(file));
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // EISDIR: the name is a directory of other names, not a file.
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return false;
      throw translateFsError(err, { name: name.name });
    }
  }

  /**
   * Removes the directories left empty by a delete, deepest first, up to
   * (not including) files/, so the name of a directory that no longer holds
   * names can be stored again. rmdir only removes an empty directory: a
   * concurrent upload's file keeps it (and link retries if it lost the race).
   */
  private async pruneEmptyParents(dir: string): Promise<void> {
    for (let d = dir; d.startsWith(this.filesDir + path.sep); d = path.dirname(d)) {
      try {
        await fsp.rmdir(d);
      } catch {
        return; // not empty (ENOTEMPTY/EEXIST), gone, or not ours to remove
      }
    }
  }

  /** Every regular file with a valid name; symbolic links are skipped and reported to `onSkipped`. */
  async *list(onSkipped?: (name: string, why: string) => void): AsyncIterable<ObjectInfo> {
    yield* walk(this.filesDir, '', onSkipped);
  }

  async tmpStats(now: number): Promise<TmpStats> {
    let files = 0;
    let bytes = 0;
    let oldest: number | null = null;
    for (const entry of await this.tmpEntries()) {
      files++;
      bytes += entry.size;
      oldest = oldest === null ? entry.mtimeMs : Math.min(oldest, entry.mtimeMs);
    }
    return { files, bytes, oldestAgeMs: oldest === null ? null : Math.max(0, now - oldest) };
  }

  async sweepTmp(olderThanMs: number, now: number, mayRemove?: (ownerPid: number | null) => boolean): Promise<{ files: number; bytes: number }> {
    let files = 0;
    let bytes = 0;
    for (const entry of await this.tmpEntries()) {
      if (this.liveTmp.has(entry.path) || now - entry.mtimeMs < olderThanMs) continue;
      if (mayRemove && !mayRemove(ownerPidOf(entry.path))) continue;
      await fsp.rm(entry.path, { force: true, recursive: true });
      files++;
      bytes += entry.size;
    }
    return { files, bytes };
  }

  private async tmpEntries(): Promise<{ path: string; size: number; mtimeMs: number }[]> {
    const names = await fsp.readdir(this.tmpDir).catch(() => [] as string[]);
    const entries = await Promise.all(names.map(async (entry) => {
      const full = path.join(this.tmpDir, entry);
      const st = await fsp.lstat(full).catch(() => null);
      return st ? { path: full, size: st.size, mtimeMs: st.mtimeMs } : null;
    }));
    return entries.filter((e): e is NonNullable<typeof e> => e !== null);
  }

  async check(): Promise<void> {
    await fsp.access(this.filesDir, fsConstants.W_OK);
    await fsp.access(this.tmpDir, fsConstants.W_OK);
  }

  async close(): Promise<void> {
    // Nothing to release: every write owns and closes its own handles.
  }
}

/**
 * A name and a prefix of it cannot both be files on a filesystem. Such a
 * clash must not be a 409 (clients take 409 for "already stored") nor a 500.
 */
async function explainLinkError(err: unknown, finalPath: string, name: StoredName): Promise<unknown> {
  const code = (err as NodeJS.ErrnoException).code;
  const clash = (why: string) => new HttpError('invalid_name', `Invalid name: ${why}; this engine cannot store both.`, { reason: why, name: name.name });
  if (code === 'ENOTDIR') return clash('a prefix of the name is a stored file');
  if (code === 'EEXIST' && (await fsp.lstat(finalPath).catch(() => null))?.isDirectory()) return clash('the name is a directory of other stored names');
  return err;
}

/** ENOTDIR: a prefix of the name is a stored file, so the name is not stored. */
function notFoundOr(err: NodeJS.ErrnoException, name: StoredName): unknown {
  return err.code === 'ENOTDIR' ? new HttpError('not_found', undefined, { name: name.name }) : translateFsError(err, { name: name.name });
}

/** The real path of `dir`, or `dir` itself while it does not exist (init() resolves it again). */
function canonical(dir: string): string {
  try { return realpathSync(dir); } catch { return dir; }
}

/** open, fsync, close of a directory (callbacks: no FileHandle per upload). */
function fsyncDir(dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    fs.open(dir, 'r', (openErr, fd) => {
      if (openErr) { reject(openErr); return; }
      fs.fsync(fd, (syncErr) => fs.close(fd, (closeErr) => {
        const err = syncErr ?? closeErr;
        if (err) reject(err);
        else resolve();
      }));
    });
  });
}

/** Recursively lists regular files whose paths are valid names; anything else is skipped. */
async function* walk(root: string, prefix: string, onSkipped?: (name: string, why: string) => void): AsyncIterable<ObjectInfo> {
  let dir;
  try {
    dir = await fsp.opendir(path.join(root, prefix));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  for await (const entry of dir) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isSymbolicLink()) {
      onSkipped?.(rel, 'a symbolic link (never followed)');
    } else if (entry.isDirectory()) {
      yield* walk(root, rel, onSkipped);
    } else if (entry.isFile()) {
      try {
        parseName(rel);
      } catch (err) {
        if (err instanceof HttpError) continue;
        throw err;
      }
      const st = await fsp.lstat(path.join(root, rel)).catch(() => null);
      if (st?.isFile()) yield { name: rel, size: st.size, mtimeMs: st.mtimeMs };
    }
  }
}

/** The pid a tmp entry's name starts with (`<pid>-<time>-<random>`), null for other names. */
function ownerPidOf(tmpPath: string): number | null {
  const match = /^(\d+)-/.exec(path.basename(tmpPath));
  return match ? Number(match[1]) : null;
}
