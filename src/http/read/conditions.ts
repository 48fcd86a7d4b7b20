import type { IncomingHttpHeaders } from 'node:http';
import fresh from 'fresh';
import parseRange from 'range-parser';
import type { ByteRange } from '../../storage/storage.js';
import type { Entity } from './entity.js';

/** What a GET/HEAD is answered with, given its conditions and Range. */
export type Decision =
  /** The bytes [range.start, range.end]: the whole entity (200) or one range of it (206). */
  | { readonly status: 200 | 206; readonly range: ByteRange }
  | { readonly status: 304 | 412 }
  | { readonly status: 416 };

type Validators = Pick<Entity, 'size' | 'etag' | 'lastModified'>;

/**
 * The one owner of the conditional and Range rules of a read (RFC 9110
 * §13.2.2 order): If-Match, else If-Unmodified-Since → 412; If-None-Match,
 * else If-Modified-Since → 304 (`fresh`, as Express and `send` decide it);
 * a single Range → 206, unless If-Range no longer holds (→ 200); an
 * unsatisfiable one → 416; several ranges, a malformed one or another unit
 * → the whole entity (200), as `send` does. Pure: headers in, decision out.
 */
export function decide(headers: IncomingHttpHeaders, entity: Validators): Decision {
  if (preconditionFails(headers, entity)) return { status: 412 };
  if (fresh(headers, { etag: entity.etag, 'last-modified': entity.lastModified })) return { status: 304 };
  const whole = { status: 200, range: { start: 0, end: entity.size - 1 } } as const;
  const header = headers.range;
  const ifRange = headers['if-range'];
  if (header === undefined || !ifRangeHolds(typeof ifRange === 'string' ? ifRange : undefined, entity)) return whole;
  const ranges = parseRange(entity.size, header, { combine: true });
  if (ranges === -1) return { status: 416 };
  if (ranges === -2 || ranges.type !== 'bytes' || ranges.length !== 1) return whole;
  return { status: 206, range: { start: ranges[0].start, end: ranges[0].end } };
}

/** If-Match (strong comparison, `*` = any), else If-Unmodified-Since: true when the request must be refused with 412. */
function preconditionFails(headers: IncomingHttpHeaders, entity: Validators): boolean {
  const ifMatch = headers['if-match'];
  if (ifMatch !== undefined) {
    const tags = ifMatch.split(',').map((tag) => tag.trim());
    return !tags.includes('*') && !tags.includes(entity.etag);
  }
  const since = httpDate(headers['if-unmodified-since']);
  return since !== undefined && httpDate(entity.lastModified)! > since;
}

/** If-Range: an entity-tag must match strongly, a date must be Last-Modified exactly (RFC 9110 §13.1.5). */
function ifRangeHolds(ifRange: string | undefined, entity: Validators): boolean {
  if (ifRange === undefined) return true;
  const value = ifRange.trim();
  if (value.startsWith('"') || value.startsWith('W/')) return value === entity.etag;
  const date = httpDate(value);
  return date !== undefined && date === httpDate(entity.lastModified);
}

function httpDate(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}
