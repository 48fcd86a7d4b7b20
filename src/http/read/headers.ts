import type { OutgoingHttpHeaders } from 'node:http';
import { extname } from 'node:path';
import mime from 'mime-types';
import type { StoredName } from '../../names.js';
import type { Entity } from './entity.js';

/** Names are immutable: a pub file may be cached anywhere for a year. */
export const PUBLIC_CACHE = 'public, max-age=31536000, immutable';
export const PRIVATE_CACHE = 'private';

/** Content-Type by extension, as `send` and nginx map it (mime-types; octet-stream otherwise). */
export function contentTypeOf(name: string): string {
  return mime.contentType(extname(name)) || 'application/octet-stream';
}

/**
 * Whether a name's type is active content (HTML, SVG, XML, scripts: config
 * `download.sandboxExtensions`): anyone with a write token could otherwise
 * plant a page that runs script on the download origin. Such files get
 * `Content-Security-Policy: sandbox` (no script, an opaque origin), every
 * file gets `X-Content-Type-Options: nosniff`.
 */
export function sandboxRule(extensions: readonly string[]): (name: string) => boolean {
  const active = new Set(extensions.map((e) => e.toLowerCase()));
  return (name) => {
    const dot = name.lastIndexOf('.');
    return dot !== -1 && active.has(name.slice(dot + 1).toLowerCase());
  };
}

/**
 * The headers of every file answer (200, 206, 304, X-Accel-Redirect): the
 * one owner of ETag, Last-Modified, Cache-Control, Accept-Ranges and the
 * active-content headers. Content-Type and Content-Length belong to answers
 * with a body (bodyHeaders).
 */
export function fileHeaders(entity: Entity, stored: StoredName, sandboxed: boolean): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {
    ETag: entity.etag,
    'Last-Modified': entity.lastModified,
    'Cache-Control': stored.visibility === 'pub' ? PUBLIC_CACHE : PRIVATE_CACHE,
    'Accept-Ranges': 'bytes',
    'X-Content-Type-Options': 'nosniff',
  };
  if (sandboxed) headers['Content-Security-Policy'] = 'sandbox';
  return headers;
}

/**
 * Adds Content-Type, Content-Length and, for a 206, Content-Range of the
 * bytes [start, end] to the file headers of an answer with a body (in place:
 * one headers object per answer, on the hot path of every read).
 */
export function addBodyHeaders(headers: OutgoingHttpHeaders, entity: Entity, status: 200 | 206, start: number, end: number): OutgoingHttpHeaders {
  headers['Content-Type'] = entity.contentType;
  headers['Content-Length'] = end - start + 1;
  if (status === 206) headers['Content-Range'] = `bytes ${start}-${end}/${entity.size}`;
  return headers;
}

/** The internal nginx location that sends a name's file (config/nginx.conf.example: location /_files/). */
export function accelTarget(prefix: string, stored: StoredName): string {
  return `${prefix}${stored.segments.map(encodeURIComponent).join('/')}`;
}
