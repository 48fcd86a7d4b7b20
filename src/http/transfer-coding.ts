import type { NextFunction, Request, Response } from 'express';
import { HttpError } from '../errors.js';

/**
 * RFC 9112 §6.1: a server that receives a transfer coding it does not
 * understand answers 501. Node decodes `chunked` only; any other coding
 * (`gzip, chunked`) would be stored still encoded, so it is refused before
 * any route reads the body, and the connection closes after the answer.
 */
export function onlyChunkedTransferCoding(req: Request, res: Response, next: NextFunction): void {
  const coding = req.headers['transfer-encoding'];
  if (coding === undefined || coding.trim().toLowerCase() === 'chunked') {
    next();
    return;
  }
  res.setHeader('Connection', 'close');
  next(new HttpError('not_implemented', `Transfer-Encoding "${coding}" is not implemented; send the body with Content-Length or "Transfer-Encoding: chunked" only.`, { transferEncoding: coding }));
}
