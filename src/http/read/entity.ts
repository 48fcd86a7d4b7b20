import type { FileRecord } from '../../index/index.js';

/** What the read path answers about one stored object (docs/read-path.md). */
export interface Entity {
  readonly size: number;
  /** `"<sha256>"` from the index row: the strong ETag, the same on every engine and node. */
  readonly etag: string;
  /** An HTTP date: the local file's mtime (what nginx sends for it), else the upload time of the row. */
  readonly lastModified: string;
  readonly contentType: string;
  /** The whole body, when it is kept in memory (small files, src/http/read/read-cache.ts). */
  readonly body?: Buffer;
}

/** The one place the ETag and Last-Modified of an object are made. */
export function entityOf(record: FileRecord, size: number, modifiedMs: number, contentType: string): Entity {
  return { size, etag: `"${record.sha256}"`, lastModified: new Date(modifiedMs).toUTCString(), contentType };
}
