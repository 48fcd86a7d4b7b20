import type { Writable } from 'node:stream';
import type { Request, Response, Router } from 'express';
import express from 'express';
import { HttpError } from '../../errors.js';
import { watchIdle } from '../../upload/idle-watch.js';
import { parseEncodedName } from '../../names.js';
import type { NodeContext } from '../../context.js';
import type { Admission, UploadRequest, UploadResult } from '../../upload/uploader.js';
import { MultipartStorageEngine, multerErrorToHttp, multipartParser } from '../../upload/multipart-engine.js';
import { abortSignalOf } from '../abort.js';
import { removeFile } from '../../remove-file.js';

const PREFIX = '/upload/';

/**
 * PUT /upload/<name> (raw body) and POST /upload/<name> (multipart, one part
 * "file"): both admit before reading a byte, then hand the body to the one
 * write path (src/upload/uploader.ts).
 */
export function uploadRoutes(ctx: NodeContext): Router {
  const router = express.Router();
  // A later part failed the request: the stored part goes the way every removal goes.
  const engine = new MultipartStorageEngine(ctx.uploader, async (stored) => {
    await removeFile({ ...ctx, files: ctx.index.files }, stored);
  });
  const parseMultipart = multipartParser(engine, { files: 1, fields: 0, parts: 1, fileSize: ctx.config.upload.maxBytes, headerPairs: 100 });

  router.put(/^\/upload\/.+$/, async (req, res) => {
    const admission = await admit(ctx, req, res);
    // store() commits or releases the hold itself, on every path.
    created(res, await ctx.uploader.store(admission, req, abortSignalOf(res)));
  });

  router.post(/^\/upload\/.+$/, async (req, res) => {
    if (!req.is('multipart/form-data')) {
      throw new HttpError('invalid_request', 'POST /upload/<name> needs a multipart/form-data body with one part "file"; use PUT for a raw body.');
    }
    const admission = await admit(ctx, req, res);
    try {
      res.locals.admission = admission;
      res.locals.signal = abortSignalOf(res);
      const parsing = new Promise<void>((resolve, reject) => {
        parseMultipart(req, res, (err: unknown) => (err ? reject(multerErrorToHttp(err)) : resolve()));
      }).finally(() => res.locals.writing as Promise<void> | undefined);
      const idle = idleBeforeFilePart(req, res, ctx.config.upload.idleTimeout);
      try {
        await Promise.race([parsing, idle.timedOut]);
      } finally {
        idle.stop();
      }
      const result = (req.file as unknown as { result?: UploadResult } | undefined)?.result;
      if (!result) throw new HttpError('invalid_request', 'The multipart body has no part named "file".');
      created(res, result);
    } finally {
      // A body without a "file" part never reached store(): its hold ends here (a no-op otherwise).
      admission.hold.release();
    }
  });

  return router;
}

async function admit(ctx: NodeContext, req: Request, res: Response): Promise<Admission> {
  const principal = ctx.auth.require(req);
  const stored = parseEncodedName(req.path.slice(PREFIX.length));
  res.locals.name = stored.name;
  res.locals.tenant = stored.tenant;
  const request: UploadRequest = {
    stored,
    declaredBytes: contentLength(req),
    expectedSha256: checksumHeader(req),
    storageClass: req.get('x-storage-class')?.trim(),
    expireAfterMs: expireAfterHeader(req),
  };
  // A scoped token writes only for its tenants, and only into its classes (X-Storage-Class included).
  ctx.auth.authorize(principal, { op: 'write', tenant: stored.tenant, cls: ctx.classifier.classify(stored.name, request.storageClass).name });
  const admission = await ctx.uploader.admit(request);
  res.locals.bytesIn = request.declaredBytes ?? undefined;
  // Only now that the upload is admitted may a 100-continue client send its body.
  if (req.get('expect')?.toLowerCase() === '100-continue') res.writeContinue();
  return admission;
}

/**
 * upload.idleTimeout on a multipart body, from the socket's bytes: a client
 * that stalls (before its file part, or in it) gets 408 request_timeout and
 * its hold ends with the route, instead of when the client goes (multer
 * answers an error only once the request body has ended). The parser is
 * stopped, so no file part is handed on afterwards; a part being written is
 * ended by the uploader's own idle watch (src/upload/uploader.ts).
 */
function idleBeforeFilePart(req: Request, res: Response, ms: number): { timedOut: Promise<never>; stop(): void } {
  let watch = { stop: () => undefined as void };
  const timedOut = new Promise<never>((_resolve, reject) => {
    watch = watchIdle(ms, () => req.socket.bytesRead, (err) => {
      const parser = res.locals.parser as Writable | undefined;
      if (parser) {
        req.unpipe(parser);
        parser.destroy(err);
      }
      // A file part being written is ended by the uploader's own idle watch: answer once its tmp file is gone.
      void Promise.resolve(res.locals.writing as Promise<void> | undefined).then(() => reject(err));
    });
  });
  // Only the race awaits it.
  timedOut.catch(() => undefined);
  return { timedOut, stop: () => watch.stop() };
}

function created(res: Response, result: UploadResult): void {
  res.locals.bytesIn = result.size;
  res.status(201).location(result.url).json(result);
}

function contentLength(req: Request): number | null {
  const raw = req.headers['content-length'];
  if (raw === undefined) return null;
  if (!/^\d+$/.test(raw)) throw new HttpError('invalid_request', 'Content-Length must be a number of bytes.', { header: 'Content-Length' });
  return Number(raw);
}

function checksumHeader(req: Request): string | undefined {
  const raw = req.get('x-checksum-sha256');
  if (raw === undefined) return undefined;
  const value = raw.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(value)) {
    throw new HttpError('invalid_request', 'X-Checksum-SHA256 must be 64 hex digits (the SHA-256 of the body).', { header: 'X-Checksum-SHA256' });
  }
  return value;
}

function expireAfterHeader(req: Request): number | undefined {
  const raw = req.get('x-expire-after');
  if (raw === undefined) return undefined;
  if (!/^\d{1,10}$/.test(raw.trim())) {
    throw new HttpError('invalid_request', 'X-Expire-After must be a whole number of seconds.', { header: 'X-Expire-After' });
  }
  return Number(raw.trim()) * 1000;
}
