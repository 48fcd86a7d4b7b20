import type { IncomingMessage } from 'node:http';
import type { NodeContext } from '../../context.js';
import { HttpError } from '../../errors.js';
import type { StoredName } from '../../names.js';
import { verifySignature } from '../../signing.js';

/**
 * Who may read a priv name (docs/design.md §11): a signed URL when the query
 * carries one (checked by src/signing.ts; a bad one is refused even with a
 * token), else a bearer token or a trusted source address (src/http/auth.ts).
 * pub names need nothing.
 */
export function authorizeRead(ctx: NodeContext, req: IncomingMessage, stored: StoredName, query: Record<string, unknown>): void {
  if (stored.visibility === 'pub') return;
  const { expires, sig } = query;
  if (sig !== undefined || expires !== undefined) {
    const secret = ctx.config.auth.signingSecret;
    if (!secret) throw new HttpError('signature_invalid', 'Signed URLs are disabled on this node (no auth.signingSecret).');
    verifySignature(secret, stored.name, expires, sig, ctx.now(), ctx.config.auth.maxSignedTtl);
    return;
  }
  // A scoped token reads only its tenants' priv names.
  ctx.auth.require(req, { op: 'read', tenant: stored.tenant });
}
