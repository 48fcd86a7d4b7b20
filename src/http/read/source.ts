import { close } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { FileRecord } from '../../index/index.js';
import type { StoredName } from '../../names.js';
import { hasLocalFiles, type ByteRange, type LocalFile, type LocalFiles, type Storage } from '../../storage/storage.js';
import { entityOf, type Entity } from './entity.js';
import { sendFileRange } from './file-sender.js';
import { contentTypeOf } from './headers.js';
import type { ReadCache } from './read-cache.js';

/** Writes a prepared body to a response whose headers are out. */
export type Body = (res: ServerResponse) => void;

/** One stored object, ready to answer from: what it is, and (a range of) its bytes. */
export interface Source {
  readonly entity: Entity;
  /**
   * Opens the bytes [range.start, range.end] before any header is written,
   * so that a file or object gone since its row was written is still a clean
   * JSON error (`not_found`).
   */
  body(range: ByteRange): Promise<Body>;
  /** Releases what was opened and will not be sent (HEAD, 304, 412, 416, X-Accel-Redirect). */
  release(): void;
}

/**
 * Where a read's bytes come from, by capability (never by engine kind): an
 * engine with local files gives a descriptor, sent in pooled reads, with the
 * metadata (Content-Type included) and small bodies kept in the read cache; any other engine gives a
 * ranged stream, and the entity comes from the index row alone (HEAD and 304
 * never reach the store).
 */
export function sourceOf(storage: Storage, cache: ReadCache): (stored: StoredName, record: FileRecord) => Promise<Source> {
  if (hasLocalFiles(storage)) return (stored, record) => localSource(storage, cache, stored, record);
  return async (stored, record) => streamSource(storage, stored, record);
}

async function localSource(files: LocalFiles, cache: ReadCache, stored: StoredName, record: FileRecord): Promise<Source> {
  let file: LocalFile | undefined;
  const release = () => {
    if (file !== undefined) close(file.fd, () => undefined);
    file = undefined;
  };
  let entity: Entity | undefined = cache.get(stored.name, record);
  if (entity === undefined) {
    file = await files.openFile(stored);
    try {
      entity = await cache.load(stored.name, record, file, contentTypeOf(stored.name));
    } catch (err) {
      release();
      throw err;
    }
    if (entity.body !== undefined) release();
  }
  const { body } = entity;
  return {
    entity,
    release,
    async body(range) {
      if (body !== undefined) return (res) => res.end(body.subarray(range.start, range.end + 1));
      const { fd } = file ?? await files.openFile(stored);
      file = undefined;
      return (res) => sendFileRange(res, fd, range.start, range.end);
    },
  };
}

function streamSource(storage: Storage, stored: StoredName, record: FileRecord): Source {
  const entity = entityOf(record, record.size, record.createdMs, contentTypeOf(stored.name));
  return {
    entity,
    release: () => undefined,
    async body(range) {
      const whole = range.start === 0 && range.end === entity.size - 1;
      const stream = await storage.open(stored, whole ? undefined : range);
      // pipeline destroys the store's stream (and its connection) when the client goes away.
      return (res) => void pipeline(stream, res).catch((err: unknown) => {
        if (!res.writableFinished) res.destroy(err as Error);
      });
    },
  };
}
