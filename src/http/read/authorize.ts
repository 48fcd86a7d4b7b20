import type { IncomingMessage } from 'node:http';
import type { NodeContext } from '../../context.js';
import type { Principal } from '../auth.js';
import { HttpError } from '../../errors.js';
import type { StoredName } from '../../names.js';
import { verifySignature } from '../../signing.js';

/**
 * Who may read a priv name (docs/design.md §11): a signed URL when the query
 * carries one (checked by src/signing.ts; a bad one is refused even with a
 * token), else a bearer token or a trusted source address (src/http/auth.ts).
 * pub names need nothing. Returns the principal of a token read whose scope
 * restricts storage classes: the read path then checks the class of the
 * file's row (authorizeReadClass) before it answers anything about the file.
 */
export function authorizeRead(ctx: NodeContext, req: IncomingMessage, stored: StoredName, query: Record<string, unknown>): Principal | undefined {
  if (stored.visibility === 'pub') return undefined;
  const { expires, sig } = query;
  if (sig !== undefined || expires !== undefined) {
    const secret = ctx.config.auth.signingSecret;
    if (!secret) throw new HttpError('signature_invalid', 'Signed URLs are disabled on this node (no auth.signingSecret).');
    verifySignature(secret, stored.name, expires, sig, ctx.now(), ctx.config.auth.maxSignedTtl);
    return undefined;
  }
  // A scoped token reads only its tenants' priv names.
  const principal = ctx.auth.require(req, { op: 'read', tenant: stored.tenant });
  return ctx.auth.restrictsClasses(principal) ? principal : undefined;
}

/** 403 forbidden when a class-scoped token reads a file of another storage class (the class its row got at upload). */
export function authorizeReadClass(ctx: NodeContext, principal: Principal, stored: StoredName, cls: string): void {
  ctx.auth.authorize(principal, { op: 'read', tenant: stored.tenant, cls });
}
