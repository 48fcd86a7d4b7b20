import { createHash } from 'node:crypto';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { HttpError, isHttpError } from '../errors.js';

/** What the engine needs to reach a bucket (config.storage.s3, validated). */
export interface S3Settings {
  endpoint: string;
  region: string;
  bucket: string;
  /** Prepended to every key ("" or "nodes/a/"); the node owns everything under it. */
  prefix: string;
  accessKeyId: string;
  secretAccessKey: string;
  forcePathStyle: boolean;
}

/**
 * Two clients: reads, deletes and listings may retry once; writes never
 * retry inside the SDK. A full store answers 503 SlowDown, which the SDK
 * would take for throttling and retry with back-off (a retry storm on a
 * full disk); the write path maps it to 507 at once instead.
 */
export interface S3Clients {
  readonly client: S3Client;
  readonly writeClient: S3Client;
  destroy(): void;
}

export function createS3Clients(settings: S3Settings): S3Clients {
  const base: S3ClientConfig = {
    endpoint: settings.endpoint,
    region: settings.region,
    credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey },
    // Path style: virtual-host style needs DNS for <bucket>.<host>, which
    // self-hosted stores (Swift without storage_domain, MinIO) rarely have.
    forcePathStyle: settings.forcePathStyle,
    // The SDK's default (WHEN_SUPPORTED) sends stream bodies as aws-chunked
    // with a trailing CRC32; Swift's s3api answers 501 to that.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
  const client = withDeleteObjectsMd5(new S3Client({ ...base, maxAttempts: 2 }));
  const writeClient = withDeleteObjectsMd5(new S3Client({ ...base, maxAttempts: 1 }));
  return {
    client,
    writeClient,
    destroy() {
      client.destroy();
      writeClient.destroy();
    },
  };
}

/**
 * DeleteObjects needs Content-MD5 on Swift's s3api (and older MinIO), but the
 * SDK sends a CRC32 header instead, even with WHEN_REQUIRED. This is the
 * SDK's own documented fallback (supplemental-docs/MD5_FALLBACK.md).
 */
function withDeleteObjectsMd5(client: S3Client): S3Client {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== 'DeleteObjectsCommand') return next(args);
      const request = args.request as { headers?: Record<string, string>; body?: unknown };
      if (request.headers && (typeof request.body === 'string' || request.body instanceof Uint8Array)) {
        for (const header of Object.keys(request.headers)) {
          const lower = header.toLowerCase();
          if (lower.startsWith('x-amz-checksum-') || lower.startsWith('x-amz-sdk-checksum-')) delete request.headers[header];
        }
        request.headers['content-md5'] = createHash('md5').update(request.body).digest('base64');
      }
      return next(args);
    },
    { step: 'build', name: 'deleteObjectsContentMd5', override: true },
  );
  return client;
}

interface SdkError {
  name?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENOTFOUND', 'ETIMEDOUT', 'EPIPE', 'TimeoutError']);

/**
 * Store errors translated at the storage boundary (docs/design.md §4), as the fs
 * engine translates errno. `op` decides what a 503 means: on a write it is
 * Swift's "disk full" (its object server's 507 reaches S3 clients as 503
 * SlowDown), on a read the store is just unavailable. Aborts pass through.
 */
export function translateS3Error(err: unknown, op: 'read' | 'write', name?: string): unknown {
  if (isHttpError(err)) return err;
  const e = (err ?? {}) as SdkError;
  if (e.name === 'AbortError') return err;
  const status = e.$metadata?.httpStatusCode;
  const details = name ? { name } : {};
  if (e.name === 'NoSuchBucket') return storeUnavailable(e, 'The bucket of this node does not exist.');
  if (e.name === 'NoSuchKey' || e.name === 'NotFound' || status === 404) return new HttpError('not_found', undefined, details);
  if (e.name === 'InvalidRange' || status === 416) return new HttpError('range_not_satisfiable');
  if (status === 507 || e.name === 'InsufficientStorage' || (op === 'write' && (status === 503 || e.name === 'SlowDown' || e.name === 'ServiceUnavailable'))) {
    return new HttpError('insufficient_storage', 'The object store refused the write (full or overloaded); nothing was stored. Retry later or free space.',
      { ...details, reason: 'store_full' }, { 'Retry-After': '60' });
  }
  if (status === 503 || UNREACHABLE.has(e.code ?? '') || UNREACHABLE.has(e.name ?? '')) return storeUnavailable(e);
  return err;
}

function storeUnavailable(e: SdkError, message?: string): HttpError {
  return new HttpError('store_unavailable', message, { reason: e.name ?? e.code ?? 'unknown' }, { 'Retry-After': '10' });
}
