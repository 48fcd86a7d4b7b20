import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { BlockList, isIPv6 } from 'node:net';
import picomatch from 'picomatch';
import type { Request } from 'express';
import { HttpError } from '../errors.js';
import { tokenId } from '../token-id.js';
import type { ScopedTokenConfig } from '../config/schema.js';

/** What a request does: read a priv name, write (upload), delete, or admin (monitoring, POST /admin/evict). */
export type Operation = 'read' | 'write' | 'delete' | 'admin';

/** What a scoped token may do; null parts allow everything. */
interface Scope {
  tenants: ((tenant: string) => boolean) | null;
  can: ReadonlySet<Operation> | null;
  classes: ((cls: string) => boolean) | null;
}

interface KnownToken {
  digest: Buffer;
  /** The configured id, or tok:<8 hex of sha256> for a plain string. */
  id: string;
  scope: Scope | null;
}

/** Who a request is: a token (with its id and scope; null scope: everything) or a trusted address. */
export interface Principal {
  via: 'token' | 'network';
  tokenId?: string;
  scope: Scope | null;
}

/** What a request wants to touch; the parts it does not know are left out. */
export interface Access {
  op: Operation;
  tenant?: string;
  cls?: string;
}

/**
 * Who may write, delete and administer (docs/design.md §11): a bearer token from the
 * config, or a source address in trustedNetworks. A token that is presented
 * but wrong is refused even from a trusted address, so a misconfigured client
 * learns it at once. A token given as an object is scoped: tenants and
 * classes (globs) and operations; outside them a request is 403 forbidden.
 */
export class Authenticator {
  private tokens: KnownToken[] = [];
  private trusted = new BlockList();
  /** tokenOf() per request, for the header it saw and the tokens it looked in (a reload replaces them). */
  private readonly seen = new WeakMap<IncomingMessage, { header: string | undefined; tokens: KnownToken[]; token: KnownToken | undefined }>();

  constructor(tokens: readonly (string | ScopedTokenConfig)[], trustedNetworks: readonly string[]) {
    this.replace(tokens, trustedNetworks);
  }

  /** New tokens and networks from the next request on (SIGHUP reload). */
  replace(tokens: readonly (string | ScopedTokenConfig)[], trustedNetworks: readonly string[]): void {
    const trusted = new BlockList();
    for (const cidr of trustedNetworks) {
      const [address, prefix] = cidr.split('/');
      trusted.addSubnet(address, Number(prefix), isIPv6(address) ? 'ipv6' : 'ipv4');
    }
    this.tokens = tokens.map(known);
    this.trusted = trusted;
  }

  /** The principal of a trusted request, null when it carries no credentials; throws 401 on a wrong token. */
  identify(req: IncomingMessage): Principal | null {
    if (req.headers.authorization !== undefined) {
      const token = this.tokenOf(req);
      if (!token) throw new HttpError('unauthorized', 'The bearer token is not valid.');
      return { via: 'token', tokenId: token.id, scope: token.scope };
    }
    return this.isTrustedAddress(req.socket.remoteAddress) ? { via: 'network', scope: null } : null;
  }

  /** Throws 401 unless the request has a valid token or a trusted address; with `access`, 403 outside the token's scope. */
  require(req: IncomingMessage, access?: Access): Principal {
    const principal = this.identify(req);
    if (principal === null) throw new HttpError('unauthorized');
    if (access) this.authorize(principal, access);
    return principal;
  }

  /** Throws 403 forbidden when the principal's scope does not cover `access`, naming what is not allowed. */
  authorize(principal: Principal, access: Access): void {
    const { scope } = principal;
    if (!scope) return;
    const deny = (denied: 'operation' | 'tenant' | 'class', what: string) => new HttpError('forbidden',
      `The token "${principal.tokenId}" may not ${what}.`, { denied, tokenId: principal.tokenId, operation: access.op,
        ...(access.tenant !== undefined ? { tenant: access.tenant } : {}), ...(access.cls !== undefined ? { class: access.cls } : {}) });
    if (scope.can && !scope.can.has(access.op)) throw deny('operation', `${access.op} (it may ${[...scope.can].join(', ') || 'nothing'})`);
    if (access.tenant !== undefined && scope.tenants && !scope.tenants(access.tenant)) throw deny('tenant', `${access.op} for tenant "${access.tenant}"`);
    if (access.cls !== undefined && scope.classes && !scope.classes(access.cls)) throw deny('class', `${access.op} in storage class "${access.cls}"`);
  }

  /** Whether the principal's scope restricts storage classes (a delete then looks up the file's class). */
  restrictsClasses(principal: Principal): boolean {
    return principal.scope?.classes != null;
  }

  /** The id of the bearer token a request presents, for access lines: the configured id, or tok:<hash> (valid or not); never the token. */
  tokenIdOf(req: IncomingMessage): string | undefined {
    const presented = bearerOf(req);
    if (presented === undefined) return undefined;
    return this.tokenOf(req)?.id ?? tokenId(presented);
  }

  /**
   * The configured token a request's bearer token is, looked up (hashed and
   * compared with every token) once per request: authorization and the
   * access line both ask.
   */
  private tokenOf(req: IncomingMessage): KnownToken | undefined {
    const header = req.headers.authorization;
    const seen = this.seen.get(req);
    if (seen !== undefined && seen.header === header && seen.tokens === this.tokens) return seen.token;
    const presented = bearerOf(req);
    const token = presented === undefined ? undefined : this.find(presented);
    this.seen.set(req, { header, tokens: this.tokens, token });
    return token;
  }

  /**
   * The rule of /usage, /metrics and /status (docs/monitoring.md): as
   * require(), and HTTP Basic with a token as the password (any user name)
   * is a token too, so a person opens /status in a plain browser. Every 401
   * carries a Basic challenge, so the browser asks for it.
   */
  requireMonitoring(req: Request): void {
    // A scoped token needs "admin": these pages name every tenant.
    try {
      const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(req.headers.authorization ?? '');
      if (!basic) {
        this.require(req, { op: 'admin' });
        return;
      }
      const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      const token = colon < 0 ? undefined : this.find(decoded.slice(colon + 1));
      if (!token) throw new HttpError('unauthorized', 'The password is not a valid token.');
      this.authorize({ via: 'token', tokenId: token.id, scope: token.scope }, { op: 'admin' });
    } catch (err) {
      if (err instanceof HttpError && err.code === 'unauthorized') {
        throw new HttpError('unauthorized', err.message, err.details, { 'WWW-Authenticate': BASIC_CHALLENGE });
      }
      throw err;
    }
  }

  private find(token: string): KnownToken | undefined {
    const candidate = digest(token);
    // Compare against every token, always, so timing reveals nothing.
    let found: KnownToken | undefined;
    for (const known of this.tokens) if (timingSafeEqual(known.digest, candidate)) found ??= known;
    return found;
  }

  isTrustedAddress(address: string | undefined): boolean {
    if (!address) return false;
    const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
    if (v4) return this.trusted.check(v4, 'ipv4');
    return this.trusted.check(address, isIPv6(address) ? 'ipv6' : 'ipv4');
  }
}

/** The browser prompts for a user name and password; the password is a token. */
const BASIC_CHALLENGE = 'Basic realm="nanocdn monitoring (password: a token)", charset="UTF-8"';

function known(entry: string | ScopedTokenConfig): KnownToken {
  if (typeof entry === 'string') return { digest: digest(entry), id: tokenId(entry), scope: null };
  const glob = (globs: string[] | undefined) => (globs === undefined ? null : picomatch(globs, { dot: true }));
  return {
    digest: digest(entry.token), id: entry.id,
    scope: { tenants: glob(entry.tenants), can: entry.can ? new Set(entry.can) : null, classes: glob(entry.classes) },
  };
}

/** The token of an `Authorization: Bearer <token>` header, if the request has one. */
function bearerOf(req: IncomingMessage): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
