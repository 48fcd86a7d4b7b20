import { randomBytes } from 'node:crypto';
import { close, constants as fsConstants, createReadStream, createWriteStream, fstat, open } from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HttpError, translateFsError } from '../errors.js';
import { parseName, pathOf, type StoredName } from '../names.js';
import type { ByteRange, LocalFile, LocalFiles, ObjectInfo, Storage, TmpStats } from './storage.js';

export interface FsStorageOptions {
  /** The data dir: bytes under files/, spool under tmp/. */
  dataDir: string;
  /** fsync file and directory before an upload is acknowledged. */
  fsync: boolean;
}

const READ_BUFFER = 1 << 20;
const WRITE_BUFFER = 1 << 20;

/**
 * Local-disk engine: stream into tmp/ (O_EXCL), fsync, link() into files/
 * (never replaces: EEXIST is a clean 409), unlink tmp, fsync the directory.
 */
export class FsStorage implements Storage, LocalFiles {
  readonly kind = 'fs' as const;
  readonly filesDir: string;
  readonly tmpDir: string;
  /** tmp entries owned by live writes; the sweeper leaves them alone. */
  private readonly liveTmp = new Set<string>();

  constructor(private readonly options: FsStorageOptions) {
    this.filesDir = path.resolve(options.dataDir, 'files');
    this.tmpDir = path.resolve(options.dataDir, 'tmp');
  }

  /** Creates the layout and checks tmp/ and files/ share one filesystem (link() needs it). */
  async init(): Promise<void> {
    await fsp.mkdir(this.filesDir, { recursive: true });
    await fsp.mkdir(this.tmpDir, { recursive: true });
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
    const tmpPath = path.join(this.tmpDir, `${Date.now().toString(36)}-${randomBytes(8).toString('hex')}`);
    this.liveTmp.add(tmpPath);
    try {
      // 'wx' = O_CREAT|O_EXCL; `flush` fsyncs before close, and the pipeline
      // only resolves once close succeeded, so close errors are never dropped.
      const out = createWriteStream(tmpPath, { flags: 'wx', mode: 0o644, flush: this.options.fsync, highWaterMark: WRITE_BUFFER });
      await pipeline(body, out, { signal });
      const size = out.bytesWritten;
      const dirsToSync = await this.linkIntoPlace(tmpPath, finalPath, name);
      await fsp.unlink(tmpPath);
      if (this.options.fsync) for (const dir of dirsToSync) await fsyncDir(dir);
      return { size };
    } catch (err) {
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
      try {
        await fsp.link(tmpPath, finalPath);
        return [dir];
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        const firstCreated = await fsp.mkdir(dir, { recursive: true });
        await fsp.link(tmpPath, finalPath);
        const dirs = [dir];
        if (firstCreated) for (let d = dir; d !== path.dirname(firstCreated); d = path.dirname(d)) dirs.push(path.dirname(d));
        return dirs;
      }
    } catch (err) {
      throw await explainLinkError(err, finalPath, name);
    }
  }

  async stat(name: StoredName): Promise<ObjectInfo | null> {
    try {
      const st = await fsp.stat(pathOf(this.filesDir, name));
      return st.isFile() ? { name: name.name, size: st.size, mtimeMs: st.mtimeMs } : null;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
      throw translateFsError(err, { name: name.name });
    }
  }

  async openFile(name: StoredName): Promise<LocalFile> {
    let fd: number;
    try {
      fd = await new Promise<number>((resolve, reject) => open(pathOf(this.filesDir, name), 'r', (err, fd) => (err ? reject(err) : resolve(fd))));
    } catch (err) {
      throw notFoundOr(err as NodeJS.ErrnoException, name);
    }
    try {
      const st = await new Promise<import('node:fs').Stats>((resolve, reject) => fstat(fd, (err, st) => (err ? reject(err) : resolve(st))));
      // open() succeeds on a directory (a prefix of other names); it is not an object.
      if (!st.isFile()) throw new HttpError('not_found', undefined, { name: name.name });
      return { fd, size: st.size, mtimeMs: st.mtimeMs };
    } catch (err) {
      close(fd, () => undefined);
      throw translateFsError(err, { name: name.name });
    }
  }

  async open(name: StoredName, range?: ByteRange): Promise<Readable> {
    const { fd } = await this.openFile(name);
    return createReadStream('', { fd, start: range?.start, end: range?.end, highWaterMark: READ_BUFFER });
  }

  async remove(name: StoredName): Promise<boolean> {
    try {
      await fsp.unlink(pathOf(this.filesDir, name));
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // EISDIR: the name is a directory of other names, not a file.
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return false;
      throw translateFsError(err, { name: name.name });
    }
  }

  async *list(): AsyncIterable<ObjectInfo> {
    yield* walk(this.filesDir, '');
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

  async sweepTmp(olderThanMs: number, now: number): Promise<{ files: number; bytes: number }> {
    let files = 0;
    let bytes = 0;
    for (const entry of await this.tmpEntries()) {
      if (this.liveTmp.has(entry.path) || now - entry.mtimeMs < olderThanMs) continue;
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

async function fsyncDir(dir: string): Promise<void> {
  const handle = await fsp.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Recursively lists regular files whose paths are valid names; anything else is skipped. */
async function* walk(root: string, prefix: string): AsyncIterable<ObjectInfo> {
  let dir;
  try {
    dir = await fsp.opendir(path.join(root, prefix));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  for await (const entry of dir) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) {
      yield* walk(root, rel);
    } else if (entry.isFile()) {
      try {
        parseName(rel);
      } catch (err) {
        if (err instanceof HttpError) continue;
        throw err;
      }
      const st = await fsp.stat(path.join(root, rel)).catch(() => null);
      if (st) yield { name: rel, size: st.size, mtimeMs: st.mtimeMs };
    }
  }
}

