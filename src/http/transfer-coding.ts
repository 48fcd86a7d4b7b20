import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import { HttpError } from '../errors.js';

/**
 * RFC 9112 §6.1: a server that receives a transfer coding it does not
 * understand answers 501. Node decodes `chunked` only; any other coding
 * (`gzip, chunked`) would be stored still encoded, so it is refused before
 * any route reads the body, and the connection closes after the answer.
 */
export function onlyChunkedTransferCoding(req: Request, res: Response, next: NextFunction): void {
  next(unknownTransferCoding(req, res));
}

/**
 * The 501 of a request whose transfer coding is not `chunked` (and marks
 * the response `Connection: close`), or undefined when the body can be read.
 * Also used by the upload path in front of Express (src/http/routes/upload.ts).
 */
export function unknownTransferCoding(req: IncomingMessage, res: ServerResponse): HttpError | undefined {
  const coding = req.headers['transfer-encoding'];
  if (coding === undefined || coding.trim().toLowerCase() === 'chunked') return undefined;
  res.setHeader('Connection', 'close');
  return new HttpError('not_implemented', `Transfer-Encoding "${coding}" is not implemented; send the body with Content-Length or "Transfer-Encoding: chunked" only.`, { transferEncoding: coding });
}
