import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { extname } from 'node:path';
import mime from 'mime-types';
import { translateFsError } from '../errors.js';
import type { FileRecord } from '../index/index.js';
import type { StoredName } from '../names.js';
import type { CachedFile, ReadCache } from './read-cache.js';
import { sendFileBody } from './file-sender.js';
import { openFdNoFollow } from '../storage/no-follow.js';


/** No Range and no condition: the answer is the whole file with a 200 (anything else goes to `send`). */
export function isPlainRequest(headers: IncomingHttpHeaders): boolean {
  return headers.range === undefined && headers['if-none-match'] === undefined && headers['if-modified-since'] === undefined
    && headers['if-match'] === undefined && headers['if-unmodified-since'] === undefined;
}

/** Content-Type by extension, exactly as `send` maps it (mime-types, octet-stream otherwise). */
export function contentTypeOf(path: string): string {
  return mime.contentType(extname(path)) || 'application/octet-stream';
}

/** A plain read ready to be sent: nothing is written yet, so it can still fail cleanly. */
export interface PlainRead {
  readonly entry: CachedFile;
  readonly method: string;
  /** The open file of a large body (GET only); sendPlainRead streams and closes it. */
  readonly fd?: number;
}

/**
 * Prepares the answer to a plain GET/HEAD of an indexed file: metadata (and
 * the body of a small file) from the cache, else one open + fstat (+ read);
 * a large body is opened now, before any header goes out. A file that
 * cannot be opened is thrown as an HttpError (not_found...).
 */
export async function preparePlainRead(cache: ReadCache, method: string, path: string, stored: StoredName, record: FileRecord): Promise<PlainRead> {
  try {
    const entry = cache.get(stored.name, record) ?? await cache.load(stored.name, path, record, contentTypeOf(path));
    if (method === 'HEAD' || entry.body !== undefined || entry.size === 0) return { entry, method };
    const fd = await openFdNoFollow(path);
    return { entry, method, fd };
  } catch (err) {
    throw translateFsError(err, { name: stored.name });
  }
}

/**
 * Sends a prepared read: a 200 with the headers `send` would write (the
 * strong sha256 ETag included), the cached body in one write, or the file
 * streamed in 1 MiB reads (src/http/file-sender.ts).
 */
export function sendPlainRead(res: ServerResponse, read: PlainRead): void {
  const { entry } = read;
  res.writeHead(200, {
    'Content-Type': entry.contentType,
    'Content-Length': entry.size,
    'Accept-Ranges': 'bytes',
    'Last-Modified': entry.lastModified,
    ETag: entry.etag,
  });
  if (read.fd === undefined) {
    res.end(read.method === 'HEAD' ? undefined : entry.body);
    return;
  }
  sendFileBody(res, read.fd, entry.size);
}
