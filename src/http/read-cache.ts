import { openNoFollow } from '../storage/no-follow.js';
import type { FileRecord } from '../index/index.js';

/** What a plain GET/HEAD needs to answer without touching the disk again. */
export interface CachedFile {
  /** The index row this entry was loaded for; the entry is stale once the row differs. */
  readonly sha256: string;
  readonly createdMs: number;
  readonly size: number;
  /** `"<sha256>"`: the strong ETag. */
  readonly etag: string;
  /** The file's mtime as an HTTP date (what `send` and nginx send). */
  readonly lastModified: string;
  readonly contentType: string;
  /** The whole body, for files of at most `maxBodyBytes`. */
  readonly body?: Buffer;
}

export interface ReadCacheOptions {
  /** Entries kept (metadata of any size); least recently used go first. */
  maxEntries?: number;
  /** Bodies of files up to this size are kept in memory. */
  maxBodyBytes?: number;
  /** Total bytes of kept bodies. */
  maxTotalBodyBytes?: number;
}

/**
 * A bounded LRU of file metadata, and of whole bodies of small files, for
 * the read path. Names are immutable, so an entry stays right for as long as
 * the index row it was loaded for: every lookup passes the current row, and
 * an entry whose row is gone (delete, eviction, cleanup from another process)
 * or differs (a re-upload after a delete, a reconcile) is dropped. No
 * invalidation hooks are needed, and no stale byte is served.
 */
export class ReadCache {
  private readonly entries = new Map<string, CachedFile>();
  private bodyBytes = 0;
  readonly maxEntries: number;
  readonly maxBodyBytes: number;
  readonly maxTotalBodyBytes: number;

  constructor(options: ReadCacheOptions = {}) {
    this.maxEntries = options.maxEntries ?? 10_000;
    this.maxBodyBytes = options.maxBodyBytes ?? 64 * 1024;
    this.maxTotalBodyBytes = options.maxTotalBodyBytes ?? 64 * 1024 * 1024;
  }

  /** The entry of `name` if it was loaded for this very row. */
  get(name: string, record: FileRecord): CachedFile | undefined {
    const entry = this.entries.get(name);
    if (entry === undefined) return undefined;
    if (entry.sha256 !== record.sha256 || entry.createdMs !== record.createdMs || entry.size !== record.size) {
      this.delete(name);
      return undefined;
    }
    // Map order is insertion order: re-inserting marks it most recently used.
    this.entries.delete(name);
    this.entries.set(name, entry);
    return entry;
  }

  /**
   * Reads the file's metadata (one open + fstat) and, when small, its whole
   * body in the same open; caches and returns it. Throws the fs error
   * (ENOENT...) for the caller to translate. A file whose size differs from
   * its row is served but not cached (reconcile will fix the row).
   */
  async load(name: string, path: string, record: FileRecord, contentType: string): Promise<CachedFile> {
    // Never through a symbolic link (a link planted in files/ must not serve what it points to).
    const handle = await openNoFollow(path);
    let entry: CachedFile;
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw Object.assign(new Error(`not a regular file: ${name}`), { code: 'ENOENT' });
      const base = {
        sha256: record.sha256, createdMs: record.createdMs, size: st.size, etag: `"${record.sha256}"`,
        lastModified: st.mtime.toUTCString(), contentType,
      };
      if (st.size <= this.maxBodyBytes) {
        const body = await readWhole(handle, st.size);
        entry = { ...base, size: body.length, body };
      } else {
        entry = base;
      }
    } finally {
      await handle.close();
    }
    if (entry.size === record.size) this.set(name, entry);
    return entry;
  }

  delete(name: string): void {
    const entry = this.entries.get(name);
    if (entry === undefined) return;
    this.entries.delete(name);
    this.bodyBytes -= entry.body?.length ?? 0;
  }

  get size(): number {
    return this.entries.size;
  }

  get cachedBodyBytes(): number {
    return this.bodyBytes;
  }

  private set(name: string, entry: CachedFile): void {
    this.delete(name);
    this.entries.set(name, entry);
    this.bodyBytes += entry.body?.length ?? 0;
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries && this.bodyBytes <= this.maxTotalBodyBytes) break;
      this.delete(oldest);
    }
  }
}

/** One read for the whole file (a short read only if the file shrank, which names never do). */
async function readWhole(handle: import('node:fs/promises').FileHandle, size: number): Promise<Buffer> {
  const body = Buffer.allocUnsafe(size);
  let filled = 0;
  while (filled < size) {
    const { bytesRead } = await handle.read(body, filled, size - filled, filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled === size ? body : body.subarray(0, filled);
}
