/**
 * Every error a client can see: one table of stable codes, their HTTP status
 * and a default sentence a person can act on. Thrown as HttpError, rendered
 * by one middleware (src/http/error-handler.ts).
 */
export const ERRORS = {
  invalid_name: [400, 'The file name is not valid.'],
  invalid_request: [400, 'The request is malformed.'],
  checksum_mismatch: [400, 'The body does not match X-Checksum-SHA256; nothing was stored.'],
  unauthorized: [401, 'This request needs a valid bearer token or a trusted source address.'],
  forbidden: [403, 'The token does not allow this request (tenant, operation or storage class).'],
  signature_invalid: [403, 'The URL signature is not valid for this name.'],
  signature_expired: [403, 'The signed URL has expired; ask for a new one.'],
  not_found: [404, 'No file is stored under this name.'],
  method_not_allowed: [405, 'This method is not allowed on this path.'],
  request_timeout: [408, 'The upload sent no byte for upload.idleTimeout; it was ended and nothing was stored.'],
  precondition_failed: [412, 'The If-Match or If-Unmodified-Since condition does not hold.'],
  exists: [409, 'A file is already stored under this name; names are immutable, so a retry needs nothing more.'],
  name_retired: [409, 'This pub name was removed and is retired: caches may still serve its old bytes; upload the same bytes or use a new name.'],
  eviction_running: [409, 'Another eviction run is in progress (this node or the cleanup command); retry when it ends.'],
  upload_too_large: [413, 'The upload is larger than the configured maximum.'],
  range_not_satisfiable: [416, 'The requested range is outside the file.'],
  rate_limited: [429, 'This tenant is over one of its limits (limits.tenant); retry after Retry-After seconds.'],
  client_closed: [499, 'The client closed the connection before the upload finished; nothing was stored.'],
  internal: [500, 'An unexpected error occurred; it has been logged.'],
  not_implemented: [501, 'This request uses a feature the node does not implement (e.g. a transfer coding other than chunked).'],
  shutting_down: [503, 'The node is shutting down; retry on another node or in a moment.'],
  not_ready: [503, 'The node is not ready.'],
  store_unavailable: [503, 'The storage backend is unavailable; retry later.'],
  insufficient_storage: [507, 'The disk is too full to accept this upload; retry later or free space.'],
  quota_exceeded: [507, 'The tenant quota of this storage class is used up; delete files or raise the quota.'],
} as const satisfies Record<string, readonly [number, string]>;

export type ErrorCode = keyof typeof ERRORS;

export class HttpError extends Error {
  readonly status: number;

  /**
   * @param code stable machine-readable code from ERRORS
   * @param message overrides the table's sentence
   * @param details extra JSON fields of the body (e.g. freeBytes)
   * @param headers extra response headers (e.g. Retry-After, Location)
   */
  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly details: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message ?? ERRORS[code][1]);
    this.name = 'HttpError';
    this.status = ERRORS[code][0];
  }

  toJSON(): Record<string, unknown> {
    return { error: this.code, message: this.message, ...this.details };
  }
}

export function isHttpError(err: unknown): err is HttpError {
  return err instanceof HttpError;
}

/**
 * OS errors translated at the storage boundary (docs/design.md §4): routes never look
 * at errno. Returns the error unchanged when it is not one we can name.
 */
export function translateFsError(err: unknown, context: { name?: string; path?: string } = {}): unknown {
  if (isHttpError(err)) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return new HttpError('not_found', undefined, context.name ? { name: context.name } : {});
    case 'EEXIST':
      return new HttpError('exists', undefined, context.name ? { name: context.name } : {});
    case 'ENOSPC':
    case 'EDQUOT':
      return new HttpError('insufficient_storage', 'The disk filled up while writing; nothing was stored. Retry later or free space.',
        { reason: code }, { 'Retry-After': '60' });
    default:
      return err;
  }
}
