import type { NextFunction, Request, Response, Router } from 'express';
import express from 'express';
import send from 'send';
import { HttpError } from '../../errors.js';
import { parseEncodedName, type StoredName } from '../../names.js';
import { verifySignature } from '../../signing.js';
import type { NodeContext } from '../../context.js';
import { streamDownload } from './download-stream.js';

const PUBLIC_CACHE = 'public, max-age=31536000, immutable';
const PRIVATE_CACHE = 'private';

/**
 * GET/HEAD /<name>: Range, conditional GET and Content-Type come from `send`
 * (STYLE §8); the strong ETag is the sha256 from the index. With
 * download.accelRedirect the bytes are left to an nginx front.
 */
export function downloadRoutes(ctx: NodeContext): Router {
  const router = express.Router();
  const accel = ctx.config.download.accelRedirect;

  router.get(/^\/.+$/, async (req, res, next) => {
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
    serveFile(req, res, next, ctx.storage.localPath(stored), stored, record !== undefined);
  });

  return router;
}

function serveFile(req: Request, res: Response, next: NextFunction, path: string, stored: StoredName, hasEtag: boolean): void {
  send(req, path, { etag: !hasEtag, lastModified: true, cacheControl: false, dotfiles: 'deny', index: false })
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
