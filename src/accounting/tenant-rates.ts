import { HttpError } from '../errors.js';
import { formatBytes } from '../config/units.js';
import type { LedgerObserver, TenantLimit } from './ledger.js';
import { TokenBucket } from './token-bucket.js';

/** limits.tenant of the config: null disables a limit; inflightBytes is bytes or a share of the room above the reserve. */
export interface TenantLimits {
  uploadsPerMinute: number | null;
  bytesPerMinute: number | null;
  inflightUploads: number | null;
  inflightBytes: { bytes: number } | { percent: number } | null;
}

/** Buckets are swept for full ones every this many admissions, so the maps stay as small as the tenants active in the last minute. */
const SWEEP_EVERY = 1024;

/**
 * limits.tenant's per-minute limits as one process counts them
 * (docs/design.md §7): a token bucket per tenant for uploads and one for
 * bytes. Both ledgers use it: the in-process one, and the one shared by the
 * nodes of a cluster (where each node counts for itself).
 */
export class TenantRates {
  private readonly uploads = new Map<string, TokenBucket>();
  private readonly bytes = new Map<string, TokenBucket>();
  private admissions = 0;

  constructor(private readonly deps: { limits: () => TenantLimits; now: () => number; observer?: LedgerObserver }) {}

  /**
   * Throws 429 when `bytes` more, and one more upload when `countUpload`,
   * would pass uploadsPerMinute or bytesPerMinute; `quiet`: the refusal is
   * not told to the observer (an attempt that may be retried).
   */
  check(tenant: string, bytes: number, countUpload: boolean, quiet = false): void {
    const limits = this.deps.limits();
    const nowMs = this.deps.now();
    const observer = quiet ? undefined : this.deps.observer;
    if (countUpload && limits.uploadsPerMinute !== null) {
      const wait = this.bucketOf(this.uploads, tenant, limits.uploadsPerMinute).waitSeconds(1, nowMs);
      if (wait > 0) throw rateLimited(observer, tenant, 'uploadsPerMinute', `${limits.uploadsPerMinute} uploads per minute`, wait);
    }
    if (limits.bytesPerMinute !== null) {
      const wait = this.bucketOf(this.bytes, tenant, limits.bytesPerMinute).waitSeconds(bytes, nowMs);
      if (wait > 0) throw rateLimited(observer, tenant, 'bytesPerMinute', `${formatBytes(limits.bytesPerMinute)} per minute`, wait);
    }
  }

  /** Whether `uploads` more uploads and `bytes` more bytes fit now (nothing taken, nothing told). */
  fits(tenant: string, uploads: number, bytes: number): boolean {
    const limits = this.deps.limits();
    const nowMs = this.deps.now();
    if (limits.uploadsPerMinute !== null && this.bucketOf(this.uploads, tenant, limits.uploadsPerMinute).waitSeconds(uploads, nowMs) > 0) return false;
    return limits.bytesPerMinute === null || this.bucketOf(this.bytes, tenant, limits.bytesPerMinute).waitSeconds(bytes, nowMs) === 0;
  }

  /** Gives back what was taken for an upload that never happened (a spare hold returned unused), or bytes it did not send. */
  give(tenant: string, uploads: number, bytes: number): void {
    const nowMs = this.deps.now();
    if (uploads > 0) this.uploads.get(tenant)?.give(uploads, nowMs);
    if (bytes > 0) this.bytes.get(tenant)?.give(bytes, nowMs);
  }

  /** Counts one admitted upload (once per admission). */
  takeUpload(tenant: string): void {
    const perMinute = this.deps.limits().uploadsPerMinute;
    if (perMinute !== null) this.bucketOf(this.uploads, tenant, perMinute).take(1, this.deps.now());
    if (++this.admissions % SWEEP_EVERY === 0) this.sweep();
  }

  /** Counts bytes: an upload's declared length at admission, or a chunked body's as they arrive. */
  takeBytes(tenant: string, bytes: number): void {
    const perMinute = this.deps.limits().bytesPerMinute;
    if (perMinute !== null) this.bucketOf(this.bytes, tenant, perMinute).take(bytes, this.deps.now());
  }

  private bucketOf(buckets: Map<string, TokenBucket>, tenant: string, perMinute: number): TokenBucket {
    let bucket = buckets.get(tenant);
    if (!bucket) {
      bucket = new TokenBucket(perMinute, this.deps.now());
      buckets.set(tenant, bucket);
    }
    return bucket;
  }

  private sweep(): void {
    const nowMs = this.deps.now();
    for (const buckets of [this.uploads, this.bytes]) {
      for (const [tenant, bucket] of buckets) if (bucket.isFull(nowMs)) buckets.delete(tenant);
    }
  }
}

/** The 429 of a tenant limit, told to the observer (metrics, /usage). */
export function rateLimited(
  observer: LedgerObserver | undefined, tenant: string, limit: TenantLimit, value: string, retryAfterSeconds: number, details: Record<string, unknown> = {},
): HttpError {
  observer?.throttled(tenant, limit, value);
  return new HttpError('rate_limited',
    `Tenant "${tenant}" is over its limit of ${value} (limits.tenant.${limit}); retry in ${retryAfterSeconds} s.`,
    { tenant, limit, value, retryAfterSeconds, ...details }, { 'Retry-After': String(retryAfterSeconds) });
}

/** What limits.tenant.inflightBytes allows, in bytes, given the room above the reserve; and how the 429 says it. */
export function inflightBytesLimit(limit: NonNullable<TenantLimits['inflightBytes']>, roomBytes: number): { bytes: number; value: string } {
  if ('bytes' in limit) return { bytes: limit.bytes, value: formatBytes(limit.bytes) };
  const bytes = Math.floor((limit.percent / 100) * roomBytes);
  return { bytes, value: `${limit.percent} % of the room above the reserve (${formatBytes(bytes)} now)` };
}
