import { createHmac, timingSafeEqual } from 'node:crypto';
import { HttpError } from './errors.js';

/**
 * Signed URLs (docs/design.md §11): sig = hex HMAC-SHA256(secret, name + "\n" + expires),
 * name without a leading slash, expires in integer seconds since the epoch.
 */
export function signature(secret: string, name: string, expires: number): string {
  return createHmac('sha256', secret).update(`${name}\n${expires}`).digest('hex');
}

/** The query string that grants a GET of `name` until `expires`. */
export function signedQuery(secret: string, name: string, expires: number): string {
  return `expires=${expires}&sig=${signature(secret, name, expires)}`;
}

/**
 * Checks a signature first (signature_invalid), then its expiry
 * (signature_expired). Constant-time comparison.
 */
export function verifySignature(secret: string, name: string, expiresRaw: unknown, sigRaw: unknown, nowMs: number, maxTtlMs = Infinity): void {
  // Canonical decimal only (no leading zero, no sign): one expires, one spelling, one signature.
  if (typeof expiresRaw !== 'string' || typeof sigRaw !== 'string' || !/^(0|[1-9]\d{0,11})$/.test(expiresRaw) || !/^[0-9a-f]{64}$/.test(sigRaw)) {
    throw new HttpError('signature_invalid', 'The URL signature is malformed: expires must be integer seconds (canonical decimal) and sig 64 lowercase hex digits.');
  }
  const expected = Buffer.from(signature(secret, name, Number(expiresRaw)), 'hex');
  if (!timingSafeEqual(expected, Buffer.from(sigRaw, 'hex'))) throw new HttpError('signature_invalid');
  if (Number(expiresRaw) * 1000 > nowMs + maxTtlMs) {
    throw new HttpError('signature_invalid', `The signed URL expires further in the future than this node allows (auth.maxSignedTtl, ${Math.round(maxTtlMs / 1000)} s).`);
  }
  if (Number(expiresRaw) * 1000 < nowMs) {
    throw new HttpError('signature_expired', undefined, { expiredAt: new Date(Number(expiresRaw) * 1000).toISOString() });
  }
}
