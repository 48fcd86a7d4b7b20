import { close, createReadStream, open } from 'node:fs';
import { extname } from 'node:path';
import { pipeline } from 'node:stream';
import type { NextFunction, Request, RequestHandler, Response, Router } from 'express';
import express from 'express';
import send from 'send';
import { HttpError, translateFsError } from '../../errors.js';
import { parseEncodedName, type StoredName } from '../../names.js';
import { verifySignature } from '../../signing.js';
import type { NodeContext } from '../../context.js';
import type { FileRecord } from '../../index/file-index.js';
import { ReadCache, type CachedFile } from '../read-cache.js';
import { streamDownload } from './download-stream.js';

const PUBLIC_CACHE = 'public, max-age=31536000, immutable';
const PRIVATE_CACHE = 'private';
/** Read buffer for streamed files: 1 MiB reads cost far fewer syscalls and callbacks than the default 64 KiB. */
const READ_BUFFER_BYTES = 1024 * 1024;
/** Request targets that can only be reads of names (no other route lives under /pub/ or /priv/). */
const HOT_PATH = /^\/(?:pub|priv)\//;

/**
 * GET/HEAD /<name>, as two handlers: `hot` for /pub/ and /priv/ targets,
 * mounted before every route that never applies to reads, and `rest` for
 * any other GET path, mounted last. A plain request (no Range, no If-*) of an indexed file
 * is the hot path: metadata (and the body of a small file) from a bounded
 * cache keyed by the index row, headers written at once, a large body
 * streamed with a 1 MiB read buffer (docs/read-path.md). Range and
 * conditional requests go to `send` (STYLE §8); the strong ETag is the
 * sha256 from the index either way. With download.accelRedirect the bytes
 * are left to an nginx front.
 */
export function downloadRoutes(ctx: NodeContext): { hot: RequestHandler; rest: Router } {
  const accel = ctx.config.download.accelRedirect;
  const cache = new ReadCache();

  const read = async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const stored = parseEncodedName(req.path.slice(1));
    res.locals.name = stored.name;
    res.locals.tenant = stored.tenant;
    if (stored.visibility === 'priv') authorizeRead(ctx, req, stored);

    const record = ctx.index.get(stored.name);
    res.setHeader('Cache-Control', stored.visibility === 'pub' ? PUBLIC_CACHE : PRIVATE_CACHE);
    if (record) res.setHeader('ETag', `"${record.sha256}"`);

    if (accel) {
      if (!record && !(await ctx.storage.stat(stored))) throw new HttpError('not_found', undefined, { name: stored.name });
      ctx.access.touch(stored.name, ctx.now());
      res.setHeader('X-Accel-Redirect', `${accel}${stored.segments.map(encodeURIComponent).join('/')}`);
      res.status(200).end();
      return;
    }
    if (!ctx.storage.localPath) {
      await streamDownload(ctx, req, res, stored, record);
      return;
    }
    ctx.access.touch(stored.name, ctx.now());
    const path = ctx.storage.localPath(stored);
    if (record && isPlainRequest(req)) {
      await serveFast(cache, req, res, path, stored, record);
      return;
    }
    serveFile(req, res, next, path, stored, record !== undefined);
  };

  // A plain middleware rather than a Router: no layer matching or route dispatch per read.
  const hot: RequestHandler = (req, res, next) => {
    if ((req.method === 'GET' || req.method === 'HEAD') && HOT_PATH.test(req.url)) {
      read(req, res, next).catch(next);
      return;
    }
    next();
  };
  // Any other GET path: a percent-encoded visibility is still a name; everything else is 400 invalid_name.
  const rest = express.Router();
  rest.get(/^\/.+$/, read);
  return { hot, rest };
}

/** No Range and no condition: the answer is the whole file with a 200. */
function isPlainRequest(req: Request): boolean {
  const h = req.headers;
  return h.range === undefined && h['if-none-match'] === undefined && h['if-modified-since'] === undefined
    && h['if-match'] === undefined && h['if-unmodified-since'] === undefined;
}

/** The same headers `send` would write for a 200 (Content-Type by extension, as send does via mime-types). */
async function serveFast(cache: ReadCache, req: Request, res: Response, path: string, stored: StoredName, record: FileRecord): Promise<void> {
  let entry = cache.get(stored.name, record);
  if (entry === undefined) {
    try {
      entry = await cache.load(stored.name, path, record, contentTypeOf(res, path));
    } catch (err) {
      throw translateFsError(err, { name: stored.name });
    }
  }
  if (req.method === 'HEAD') {
    writeHead(res, entry);
    res.end();
  } else if (entry.body !== undefined) {
    writeHead(res, entry);
    res.end(entry.body);
  } else {
    await streamFile(res, path, stored, entry);
  }
}

function writeHead(res: Response, entry: CachedFile): void {
  res.writeHead(200, {
    'Content-Type': entry.contentType,
    'Content-Length': entry.size,
    'Accept-Ranges': 'bytes',
    'Last-Modified': entry.lastModified,
    ETag: entry.etag,
  });
}

/** Opens before the headers go out, so a file gone since it was cached is still a clean JSON 404. */
async function streamFile(res: Response, path: string, stored: StoredName, entry: CachedFile): Promise<void> {
  const fd = await new Promise<number>((resolve, reject) => {
    open(path, 'r', (err, fd) => (err ? reject(translateFsError(err, { name: stored.name })) : resolve(fd)));
  });
  writeHead(res, entry);
  if (entry.size === 0) {
    close(fd, () => undefined);
    res.end();
    return;
  }
  const body = createReadStream('', { fd, start: 0, end: entry.size - 1, highWaterMark: READ_BUFFER_BYTES });
  // pipeline closes the file when the client goes away; the headers are out, so an error can only cut the response.
  pipeline(body, res, () => undefined);
}

/** Express's res.type() maps an extension exactly as send does (mime-types contentType, octet-stream otherwise). */
function contentTypeOf(res: Response, path: string): string {
  const type = String(res.type(extname(path)).getHeader('Content-Type'));
  res.removeHeader('Content-Type');
  return type;
}

function serveFile(req: Request, res: Response, next: NextFunction, path: string, stored: StoredName, hasEtag: boolean): void {
  const options = { etag: !hasEtag, lastModified: true, cacheControl: false, dotfiles: 'deny', index: false, highWaterMark: READ_BUFFER_BYTES } as send.SendOptions;
  send(req, path, options)
    .on('error', (err: { status?: number; statusCode?: number }) => next(sendErrorToHttp(err, stored)))
    .on('directory', () => next(new HttpError('not_found', undefined, { name: stored.name })))
    .pipe(res);
}

/** priv reads: a token or trusted address, or a signed URL. */
function authorizeRead(ctx: NodeContext, req: Request, stored: StoredName): void {
  const { expires, sig } = req.query;
  if (sig !== undefined || expires !== undefined) {
    const secret = ctx.config.auth.signingSecret;
    if (!secret) throw new HttpError('signature_invalid', 'Signed URLs are disabled on this node (no auth.signingSecret).');
    verifySignature(secret, stored.name, expires, sig, ctx.now());
    return;
  }
  ctx.auth.require(req);
}

function sendErrorToHttp(err: { status?: number; statusCode?: number }, stored: StoredName): HttpError {
  const status = err.status ?? err.statusCode ?? 500;
  switch (status) {
    case 404: return new HttpError('not_found', undefined, { name: stored.name });
    case 416: return new HttpError('range_not_satisfiable');
    case 412: return new HttpError('precondition_failed');
    default: return new HttpError('internal');
  }
}
