import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Writable } from 'node:stream';
import type { Request, Response, Router } from 'express';
import express from 'express';
import { HttpError, isHttpError } from '../../errors.js';
import { watchIdle } from '../../upload/idle-watch.js';
import { parseEncodedName } from '../../names.js';
import type { NodeContext } from '../../context.js';
import type { Admission, UploadRequest, UploadResult } from '../../upload/uploader.js';
import { MultipartStorageEngine, multerErrorToHttp, multipartParser } from '../../upload/multipart-engine.js';
import { abortSignalOf } from '../abort.js';
import { removeFile } from '../../remove-file.js';
import { sendError } from '../error-handler.js';
import { logRequest, type AccessLog } from '../request-log.js';
import { unknownTransferCoding } from '../transfer-coding.js';

const PREFIX = '/upload/';

/**
 * Takes a request and returns true when it is a raw upload (`PUT
 * /upload/<name>`) and now answered (asynchronously), false otherwise
 * (nothing written): the upload path in front of Express.
 */
export type UploadPath = (req: IncomingMessage, res: ServerResponse) => boolean;

/**
 * PUT /upload/<name> with a raw body, in front of Express as the read path
 * is (Express's per-request work was a large share of an upload's CPU):
 * the transfer coding (501 unless chunked), who may write, admission before
 * a byte of the body is read (then 100 Continue), the one write path
 * (src/upload/uploader.ts), 201 with the JSON of the stored file. Every error
 * is the JSON of src/http/error-handler.ts; it logs its one request line and
 * times the "upload" route like the Express routes do.
 */
export function uploadPath(ctx: NodeContext, access: AccessLog): UploadPath {
  const logger = ctx.logger.child({ module: 'http' });

  const answer = async (req: IncomingMessage, res: ServerResponse, path: string, locals: Record<string, unknown>): Promise<void> => {
    const refused = unknownTransferCoding(req, res);
    if (refused) throw refused;
    const admission = await admit(ctx, req, res, path, locals);
    // store() commits or releases the hold itself, on every path.
    created(res, locals, await ctx.uploader.store(admission, req, abortSignalOf(res)));
  };

  return (req, res) => {
    if (req.method !== 'PUT') return false;
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (!path.startsWith(PREFIX) || path.length === PREFIX.length) return false;

    const locals: Record<string, unknown> = {};
    const requestId = logRequest(access, req, res, path, locals, 'upload');
    answer(req, res, path, locals).catch((err: unknown) => {
      if (!isHttpError(err)) logger.error('unhandled error', { requestId, error: (err as Error)?.stack ?? String(err) });
      const error = isHttpError(err) ? err : new HttpError('internal');
      locals.errorCode = error.code;
      if (res.headersSent) res.destroy();
      else sendError(req, res, error);
    });
    return true;
  };
}

/**
 * POST /upload/<name> (multipart, one part "file"): admits before reading a
 * byte, then hands the part to the one write path (src/upload/uploader.ts).
 * PUT is the upload path's, in front of Express (uploadPath above).
 */
export function uploadRoutes(ctx: NodeContext): Router {
  const router = express.Router();
  // A later part failed the request: the stored part goes the way every removal goes.
  const engine = new MultipartStorageEngine(ctx.uploader, async (stored) => {
    await removeFile({ ...ctx, files: ctx.index.files }, stored);
  });
  const parseMultipart = multipartParser(engine, { files: 1, fields: 0, parts: 1, fileSize: ctx.config.upload.maxBytes, headerPairs: 100 });

  router.post(/^\/upload\/.+$/, async (req, res) => {
    if (!req.is('multipart/form-data')) {
      throw new HttpError('invalid_request', 'POST /upload/<name> needs a multipart/form-data body with one part "file"; use PUT for a raw body.');
    }
    const admission = await admit(ctx, req, res, req.path, res.locals);
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
      created(res, res.locals, result);
    } finally {
      // A body without a "file" part never reached store(): its hold ends here (a no-op otherwise).
      admission.hold.release();
    }
  });

  return router;
}

/** `locals`: the request's fields for its access line (name, tenant, bytesIn). */
async function admit(ctx: NodeContext, req: IncomingMessage, res: ServerResponse, path: string, locals: Record<string, unknown>): Promise<Admission> {
  const principal = ctx.auth.require(req);
  const stored = parseEncodedName(path.slice(PREFIX.length));
  locals.name = stored.name;
  locals.tenant = stored.tenant;
  const request: UploadRequest = {
    stored,
    declaredBytes: contentLength(req),
    expectedSha256: checksumHeader(req),
    storageClass: header(req, 'x-storage-class')?.trim(),
    expireAfterMs: expireAfterHeader(req),
    decideBeforeBody: header(req, 'expect')?.toLowerCase() === '100-continue',
  };
  // A scoped token writes only for its tenants, and only into its classes (X-Storage-Class included).
  ctx.auth.authorize(principal, { op: 'write', tenant: stored.tenant, cls: ctx.classifier.classify(stored.name, request.storageClass).name });
  const admission = await ctx.uploader.admit(request);
  locals.bytesIn = request.declaredBytes ?? undefined;
  // Only now that the upload is admitted may a 100-continue client send its body.
  if (request.decideBeforeBody) res.writeContinue();
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

/** 201 with the stored file's JSON; its URL (a valid name: nothing to escape) in Location. */
function created(res: ServerResponse, locals: Record<string, unknown>, result: UploadResult): void {
  locals.bytesIn = result.size;
  const body = JSON.stringify(result);
  res.writeHead(201, { Location: result.url, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

/** A request header as one string (Node joins repeated custom headers). */
function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

function contentLength(req: IncomingMessage): number | null {
  const raw = req.headers['content-length'];
  if (raw === undefined) return null;
  if (!/^\d+$/.test(raw)) throw new HttpError('invalid_request', 'Content-Length must be a number of bytes.', { header: 'Content-Length' });
  return Number(raw);
}

function checksumHeader(req: IncomingMessage): string | undefined {
  const raw = header(req, 'x-checksum-sha256');
  if (raw === undefined) return undefined;
  const value = raw.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(value)) {
    throw new HttpError('invalid_request', 'X-Checksum-SHA256 must be 64 hex digits (the SHA-256 of the body).', { header: 'X-Checksum-SHA256' });
  }
  return value;
}

function expireAfterHeader(req: IncomingMessage): number | undefined {
  const raw = header(req, 'x-expire-after');
  if (raw === undefined) return undefined;
  if (!/^\d{1,10}$/.test(raw.trim())) {
    throw new HttpError('invalid_request', 'X-Expire-After must be a whole number of seconds.', { header: 'X-Expire-After' });
  }
  return Number(raw.trim()) * 1000;
}
