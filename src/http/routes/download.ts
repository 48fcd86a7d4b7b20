import type { IncomingMessage } from 'node:http';
import type { NextFunction, Request, Response, Router } from 'express';
import express from 'express';
import send from 'send';
import { HttpError } from '../../errors.js';
import { parseEncodedName, type StoredName } from '../../names.js';
import { verifySignature } from '../../signing.js';
import type { NodeContext } from '../../context.js';
import { ReadCache } from '../read-cache.js';
import { READ_BUFFER_BYTES } from '../file-sender.js';
import { fastReads, type FastRead } from '../fast-read.js';
import { streamDownload } from './download-stream.js';

export const PUBLIC_CACHE = 'public, max-age=31536000, immutable';
export const PRIVATE_CACHE = 'private';

export interface Downloads {
  /** In front of Express: answers the plain reads it can answer completely, declines the rest (src/http/fast-read.ts). */
  readonly fast: FastRead;
  /** What the fast path declines: Range and conditional requests, errors, unindexed files, non-local engines. Mounted last. */
  readonly routes: Router;
}

/**
 * GET/HEAD /<name> (docs/read-path.md). A plain request (no Range, no If-*)
 * of an indexed file is answered in front of Express by the fast path (read
 * cache, small bodies from memory, large ones in 1 MiB reads); everything
 * it declines comes here: Range and conditional requests go to `send`
 * (it owns Range and the conditionals; no second copy of them here) with the sha256 ETag from the index, and every error becomes
 * JSON. With download.accelRedirect the bytes are left to an nginx front.
 */
export function downloadRoutes(ctx: NodeContext): Downloads {
  const accel = ctx.config.download.accelRedirect;

  const read = async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const stored = parseEncodedName(req.path.slice(1));
    res.locals.name = stored.name;
    res.locals.tenant = stored.tenant;
    if (stored.visibility === 'priv') authorizeRead(ctx, req, stored, req.query);

    const record = await ctx.index.files.get(stored.name);
    res.setHeader('Cache-Control', stored.visibility === 'pub' ? PUBLIC_CACHE : PRIVATE_CACHE);
    if (record) res.setHeader('ETag', `"${record.sha256}"`);

    if (accel) {
      if (!(await ctx.storage.stat(stored))) throw new HttpError('not_found', undefined, { name: stored.name });
      ctx.access.touch(stored.name, ctx.now());
      res.setHeader('X-Accel-Redirect', accelTarget(accel, stored));
      res.status(200).end();
      return;
    }
    if (!ctx.storage.localPath) {
      await streamDownload(ctx, req, res, stored, record);
      return;
    }
    // `send` opens by path: check first that the name is a regular file reached without a symbolic link.
    if (!(await ctx.storage.stat(stored))) throw new HttpError('not_found', undefined, { name: stored.name });
    ctx.access.touch(stored.name, ctx.now());
    serveFile(req, res, next, ctx.storage.localPath(stored), stored, record !== undefined);
  };

  const routes = express.Router();
  routes.get(/^\/.+$/, read);
  return { fast: fastReads(ctx, new ReadCache()), routes };
}

/** The internal nginx location that sends a name's file (config/nginx.conf.example: location /_files/). */
export function accelTarget(prefix: string, stored: StoredName): string {
  return `${prefix}${stored.segments.map(encodeURIComponent).join('/')}`;
}

/** priv reads: a token or trusted address, or a signed URL (`query`: the parsed query string). */
export function authorizeRead(ctx: NodeContext, req: IncomingMessage, stored: StoredName, query: Record<string, unknown>): void {
  const { expires, sig } = query;
  if (sig !== undefined || expires !== undefined) {
    const secret = ctx.config.auth.signingSecret;
    if (!secret) throw new HttpError('signature_invalid', 'Signed URLs are disabled on this node (no auth.signingSecret).');
    verifySignature(secret, stored.name, expires, sig, ctx.now(), ctx.config.auth.maxSignedTtl);
    return;
  }
  // The Authenticator reads only the Authorization header and the peer address, which a bare IncomingMessage has.
  ctx.auth.require(req as Request);
}

function serveFile(req: Request, res: Response, next: NextFunction, path: string, stored: StoredName, hasEtag: boolean): void {
  const options = { etag: !hasEtag, lastModified: true, cacheControl: false, dotfiles: 'deny', index: false, highWaterMark: READ_BUFFER_BYTES } as send.SendOptions;
  send(req, path, options)
    .on('error', (err: { status?: number; statusCode?: number }) => next(sendErrorToHttp(err, stored)))
    .on('directory', () => next(new HttpError('not_found', undefined, { name: stored.name })))
    .pipe(res);
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
