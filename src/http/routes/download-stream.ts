import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Request, Response } from 'express';
import parseRange from 'range-parser';
import { HttpError } from '../../errors.js';
import type { StoredName } from '../../names.js';
import type { NodeContext } from '../../context.js';
import type { FileRecord } from '../../index/index.js';
import type { ByteRange } from '../../storage/storage.js';

/** What GET/HEAD need to know about an object before touching its bytes. */
interface Entity {
  size: number;
  lastModified: Date;
  /** Strong ETag from the index's sha256; absent for an object without a row. */
  etag?: string;
}

/**
 * GET/HEAD for engines without a local file (s3). Conditional GET (304/412)
 * and HEAD are answered from the index row, without a round trip to the
 * store; only a GET that sends bytes opens the object, with the Range passed
 * through. The rules follow `send` (which serves the fs engine): Range via
 * range-parser, If-Range, 416 with `Content-Range: bytes *\/size`, multiple
 * ranges served as the whole file.
 */
export async function streamDownload(ctx: NodeContext, req: Request, res: Response, stored: StoredName, record: FileRecord | undefined): Promise<void> {
  const entity = await entityOf(ctx, stored, record);
  ctx.access.touch(stored.name, ctx.now());
  res.setHeader('Accept-Ranges', 'bytes');
  res.setHeader('Last-Modified', entity.lastModified.toUTCString());
  if (entity.etag) res.setHeader('ETag', entity.etag);
  res.type(path.extname(stored.name) || 'application/octet-stream');

  if (preconditionFailed(req, entity)) throw new HttpError('precondition_failed');
  if (req.fresh) {
    res.status(304).end();
    return;
  }

  const range = requestedRange(req, entity);
  if (range === 'unsatisfiable') {
    throw new HttpError('range_not_satisfiable', undefined, { size: entity.size }, { 'Content-Range': `bytes */${entity.size}` });
  }
  const length = range ? range.end - range.start + 1 : entity.size;
  // Opened before the status is set: a store error is still a clean JSON error.
  const body = req.method === 'HEAD' || length === 0 ? null : await ctx.storage.open(stored, range ?? undefined);
  res.status(range ? 206 : 200);
  if (range) res.setHeader('Content-Range', `bytes ${range.start}-${range.end}/${entity.size}`);
  res.setHeader('Content-Length', String(length));
  if (!body) {
    res.end();
    return;
  }
  // pipeline destroys the store's stream (and its socket) when the client goes away.
  await pipeline(body, res).catch((err: unknown) => {
    if (!res.writableFinished) res.destroy(err as Error);
  });
}

async function entityOf(ctx: NodeContext, stored: StoredName, record: FileRecord | undefined): Promise<Entity> {
  if (record) return { size: record.size, lastModified: new Date(record.createdMs), etag: `"${record.sha256}"` };
  // No row (index drift): the store is asked once.
  const info = await ctx.storage.stat(stored);
  if (!info) throw new HttpError('not_found', undefined, { name: stored.name });
  return { size: info.size, lastModified: new Date(info.mtimeMs) };
}

/** If-Match / If-Unmodified-Since (RFC 9110 §13.2.2): a failed precondition is 412. */
function preconditionFailed(req: Request, entity: Entity): boolean {
  const ifMatch = req.get('if-match');
  if (ifMatch !== undefined) {
    if (ifMatch.trim() === '*') return false;
    const tags = ifMatch.split(',').map((t) => t.trim());
    return !entity.etag || !tags.includes(entity.etag);
  }
  const since = Date.parse(req.get('if-unmodified-since') ?? '');
  return !Number.isNaN(since) && Math.floor(entity.lastModified.getTime() / 1000) * 1000 > since;
}

/** The single range to serve, null for the whole file, or 'unsatisfiable'. */
function requestedRange(req: Request, entity: Entity): ByteRange | null | 'unsatisfiable' {
  const header = req.get('range');
  if (!header || !ifRangeHolds(req, entity)) return null;
  const ranges = parseRange(entity.size, header, { combine: true });
  if (ranges === -1) return 'unsatisfiable';
  if (ranges === -2 || ranges.type !== 'bytes' || ranges.length !== 1) return null;
  return { start: ranges[0].start, end: ranges[0].end };
}

/** If-Range: the Range applies only while the validator still matches. */
function ifRangeHolds(req: Request, entity: Entity): boolean {
  const ifRange = req.get('if-range');
  if (!ifRange) return true;
  if (ifRange.includes('"')) return entity.etag !== undefined && ifRange.trim() === entity.etag;
  const date = Date.parse(ifRange);
  return !Number.isNaN(date) && Math.floor(entity.lastModified.getTime() / 1000) * 1000 <= date;
}
