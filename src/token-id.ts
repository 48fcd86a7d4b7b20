import { createHash } from 'node:crypto';

/**
 * What logs and `nanocdn config check` show instead of a bearer token: the
 * first 8 hex digits of its sha256 (`tok:3f9c0e1d`). Stable across restarts,
 * tells tokens apart, and reveals nothing usable.
 */
export function tokenId(token: string): string {
  return `tok:${createHash('sha256').update(token).digest('hex').slice(0, 8)}`;
}
