import path from 'node:path';
import { HttpError } from './errors.js';

/**
 * Names and the one path guard (docs/design.md §2). Every name that comes
 * from a client goes through parseName; every name → path goes through
 * pathOf. Nothing else joins user input into a path.
 */

export type Visibility = 'pub' | 'priv';

export interface StoredName {
  /** The canonical name, e.g. "pub/acme/cachedtickets/order-1.pdf". */
  readonly name: string;
  readonly visibility: Visibility;
  /** The customer: second segment, or "-" for files directly under pub/ or priv/. */
  readonly tenant: string;
  readonly segments: readonly string[];
}

export const MAX_SEGMENTS = 16;
const MAX_NAME_BYTES = 1024;
const MAX_SEGMENT_BYTES = 255;
const SEGMENT = /^[A-Za-z0-9._-]+$/;

function refuse(why: string): never {
  throw new HttpError('invalid_name', `Invalid name: ${why}.`, { reason: why });
}

/**
 * Parses the still-encoded path of a request (without the route prefix and
 * query), decoding each segment on its own so that %2F cannot make a slash.
 */
export function parseEncodedName(encoded: string): StoredName {
  if (encoded.length === 0) refuse('the name is empty');
  if (encoded.length > MAX_NAME_BYTES * 3) refuse(`the name is longer than ${MAX_NAME_BYTES} bytes`);
  const segments = encoded.split('/').map((part) => {
    try {
      return decodeURIComponent(part);
    } catch {
      return refuse('the name contains an invalid percent-encoding');
    }
  });
  return validateSegments(segments);
}

/** Validates an already decoded name (CLI, index rebuild). */
export function parseName(name: string): StoredName {
  return validateSegments(name.split('/'));
}

function validateSegments(segments: string[]): StoredName {
  if (segments.length > MAX_SEGMENTS) refuse(`a name has at most ${MAX_SEGMENTS} segments`);
  for (const segment of segments) {
    if (segment.length === 0) refuse('empty segment (leading, trailing or double slash)');
    if (segment === '.' || segment === '..') refuse('"." and ".." segments are not allowed');
    if (segment.startsWith('.')) refuse('a segment must not start with "."');
    if (!SEGMENT.test(segment)) refuse('segments may only contain A-Z a-z 0-9 . _ -');
    if (segment.length > MAX_SEGMENT_BYTES) refuse(`a segment is at most ${MAX_SEGMENT_BYTES} bytes`);
  }
  const name = segments.join('/');
  if (name.length > MAX_NAME_BYTES) refuse(`the name is longer than ${MAX_NAME_BYTES} bytes`);
  const visibility = segments[0];
  if (visibility !== 'pub' && visibility !== 'priv') refuse('the first segment must be "pub" or "priv"');
  if (segments.length < 2) refuse('a name needs a file after "pub/" or "priv/"');
  const tenant = segments.length > 2 ? segments[1] : '-';
  return { name, visibility, tenant, segments };
}

/**
 * The path of a validated name under root. Re-checks containment so that a
 * bug elsewhere can never turn into a traversal.
 */
export function pathOf(root: string, stored: StoredName): string {
  const resolvedRoot = path.resolve(root);
  const full = path.resolve(resolvedRoot, ...stored.segments);
  if (!full.startsWith(resolvedRoot + path.sep)) refuse('the name escapes the data directory');
  return full;
}
