import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { HttpError } from '../../src/errors.js';
import { signature, signedQuery, verifySignature } from '../../src/signing.js';

const SECRET = 'a-signing-secret-of-some-length';
const NAME = 'priv/acme/invoices/2026-11.pdf';
const NOW_MS = 1_800_000_000_000;
const EXPIRES = NOW_MS / 1000 + 3600;

function codeOf(fn: () => void): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(HttpError);
    expect((err as HttpError).status).toBe(403);
    return (err as HttpError).code;
  }
}

describe('signing', () => {
  it('is hex HMAC-SHA256(secret, name + "\\n" + expires), as docs/design.md §11 documents it', () => {
    const expected = createHmac('sha256', SECRET).update(`${NAME}\n${EXPIRES}`).digest('hex');
    expect(signature(SECRET, NAME, EXPIRES)).toBe(expected);
    expect(expected).toMatch(/^[0-9a-f]{64}$/);
    expect(signedQuery(SECRET, NAME, EXPIRES)).toBe(`expires=${EXPIRES}&sig=${expected}`);
  });

  it('accepts its own signature before the expiry, and at the expiry second', () => {
    const sig = signature(SECRET, NAME, EXPIRES);
    expect(codeOf(() => verifySignature(SECRET, NAME, String(EXPIRES), sig, NOW_MS))).toBeUndefined();
    expect(codeOf(() => verifySignature(SECRET, NAME, String(EXPIRES), sig, EXPIRES * 1000))).toBeUndefined();
  });

  it('refuses an expired URL with signature_expired', () => {
    const sig = signature(SECRET, NAME, EXPIRES);
    expect(codeOf(() => verifySignature(SECRET, NAME, String(EXPIRES), sig, EXPIRES * 1000 + 1))).toBe('signature_expired');
  });

  it('checks the signature before the expiry: a forged expired URL is signature_invalid', () => {
    const sig = signature(SECRET, NAME, EXPIRES);
    expect(codeOf(() => verifySignature(SECRET, NAME, String(EXPIRES - 7200), sig, NOW_MS))).toBe('signature_invalid');
  });

  it.each([
    ['another name', () => verifySignature(SECRET, 'priv/acme/other.pdf', String(EXPIRES), signature(SECRET, NAME, EXPIRES), NOW_MS)],
    ['another secret', () => verifySignature(SECRET, NAME, String(EXPIRES), signature(`${SECRET}x`, NAME, EXPIRES), NOW_MS)],
    ['a later expiry', () => verifySignature(SECRET, NAME, String(EXPIRES + 1), signature(SECRET, NAME, EXPIRES), NOW_MS)],
    ['upper-case hex', () => verifySignature(SECRET, NAME, String(EXPIRES), signature(SECRET, NAME, EXPIRES).toUpperCase(), NOW_MS)],
    ['a short sig', () => verifySignature(SECRET, NAME, String(EXPIRES), 'abcd', NOW_MS)],
    ['a missing sig', () => verifySignature(SECRET, NAME, String(EXPIRES), undefined, NOW_MS)],
    ['a repeated sig (array)', () => verifySignature(SECRET, NAME, String(EXPIRES), [signature(SECRET, NAME, EXPIRES)], NOW_MS)],
    ['a fractional expires', () => verifySignature(SECRET, NAME, `${EXPIRES}.5`, signature(SECRET, NAME, EXPIRES), NOW_MS)],
    ['a negative expires', () => verifySignature(SECRET, NAME, '-1', signature(SECRET, NAME, -1), NOW_MS)],
    ['a missing expires', () => verifySignature(SECRET, NAME, undefined, signature(SECRET, NAME, EXPIRES), NOW_MS)],
  ])('refuses %s with signature_invalid', (_what, fn) => {
    expect(codeOf(fn)).toBe('signature_invalid');
  });
});
