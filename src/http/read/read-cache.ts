import { read } from 'node:fs';
import type { FileRecord } from '../../index/index.js';
import type { LocalFile } from '../../storage/storage.js';
import { entityOf, type Entity } from './entity.js';

/** What a GET/HEAD needs to answer without touching the disk again. */
export interface CachedFile extends Entity {
  /** The index row this entry was loaded for; the entry is stale once the row differs. */
  readonly sha256: string;
  readonly createdMs: number;
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
 * the read path of engines with local files. Names are immutable, so an entry stays right for as long as
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
   * The entry of an open file (fstat done by the engine): when small, its
   * whole body is read from `file`, which the caller still closes. Cached
   * when the file's size is its row's; a file whose size differs is served
   * but not cached (reconcile will fix the row).
   */
  async load(name: string, record: FileRecord, file: LocalFile, contentType: string): Promise<CachedFile> {
    const body = file.size <= this.maxBodyBytes ? await readWhole(file.fd, file.size) : undefined;
    const entry: CachedFile = {
      ...entityOf(record, body?.length ?? file.size, file.mtimeMs, contentType),
      sha256: record.sha256, createdMs: record.createdMs, body,
    };
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

/** Reads the whole file (a short read only if the file shrank, which names never do). */
async function readWhole(fd: number, size: number): Promise<Buffer> {
  const body = Buffer.allocUnsafe(size);
  let filled = 0;
  while (filled < size) {
    const bytesRead = await new Promise<number>((resolve, reject) => {
      read(fd, body, filled, size - filled, filled, (err, n) => (err ? reject(err) : resolve(n)));
    });
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled === size ? body : body.subarray(0, filled);
}
