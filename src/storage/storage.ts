import type { Readable } from 'node:stream';
import type { StoredName } from '../names.js';

/** What the store knows about one object. */
export interface ObjectInfo {
  readonly name: string;
  readonly size: number;
  readonly mtimeMs: number;
  /** Present when the store keeps it (e.g. from object metadata). */
  readonly sha256?: string;
}

/** An inclusive byte range, as HTTP Range gives it. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/** Upload spool or in-flight area, for /usage and the stale sweep. */
export interface TmpStats {
  readonly files: number;
  readonly bytes: number;
  /** Age of the oldest entry in ms, null when empty. */
  readonly oldestAgeMs: number | null;
}

/**
 * A storage engine: where the bytes live (docs/design.md §9). Every engine passes
 * test/storage/contract.ts. Engines translate their own errors into
 * HttpError codes (not_found, exists, insufficient_storage); callers never
 * see errno.
 */
export interface Storage {
  readonly kind: 'fs' | 's3' | 'memory';

  /**
   * Stores a new object from a stream. Create-only: an existing name fails
   * with `exists`. On any failure or abort nothing is visible under the name
   * and no partial data is left behind.
   * @returns the number of bytes stored
   */
  write(name: StoredName, body: Readable, signal: AbortSignal): Promise<{ size: number }>;

  /** The object's size and mtime, or null when absent. */
  stat(name: StoredName): Promise<ObjectInfo | null>;

  /** Streams the object (or a range of it); `not_found` when absent. */
  open(name: StoredName, range?: ByteRange): Promise<Readable>;

  /** Removes the object; false when it was absent. */
  remove(name: StoredName): Promise<boolean>;

  /** Every stored object, for rebuilding the index; what is skipped as no object (a symbolic link) goes to `onSkipped`. */
  list(onSkipped?: (name: string, why: string) => void): AsyncIterable<ObjectInfo>;

  /**
   * The local file of an object, when the engine keeps one (nginx can serve
   * it; logs name it).
   */
  localPath?(name: StoredName): string;

  /** The in-flight/spool area: stats, and removal of entries no live write owns. */
  tmpStats(now: number): Promise<TmpStats>;
  /**
   * `mayRemove` narrows the sweep to entries of some writer processes
   * (a clustered node, src/cluster/): it is asked the pid that created an
   * entry, null when the entry does not say. Engines whose spool has no
   * owner pids ignore it.
   */
  sweepTmp(olderThanMs: number, now: number, mayRemove?: (ownerPid: number | null) => boolean): Promise<{ files: number; bytes: number }>;
  /** Whether spool entries name the process that wrote them (sweepTmp's `mayRemove` applies). */
  readonly tmpHasOwners: boolean;

  /** Checks the backend is usable (writable dir, reachable bucket). */
  check(): Promise<void>;

  close(): Promise<void>;
}

/** An open regular file of a stored object; the caller closes `fd` (fs.close). */
export interface LocalFile {
  readonly fd: number;
  readonly size: number;
  readonly mtimeMs: number;
}

/**
 * The capability of an engine that keeps each object as a local file: the
 * read path sends bytes from the descriptor (pooled reads, ranges) instead of
 * a stream. Found with hasLocalFiles(); nobody asks an engine for its kind.
 */
export interface LocalFiles {
  /**
   * Opens the object's regular file for reading: `not_found` when it is
   * absent or not a regular file (a directory of other names). The one place
   * a read opens a stored file, so what may be opened is decided here.
   */
  openFile(name: StoredName): Promise<LocalFile>;
}

export function hasLocalFiles(storage: Storage): storage is Storage & LocalFiles {
  return typeof (storage as Partial<LocalFiles>).openFile === 'function';
}
