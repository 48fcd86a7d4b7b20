import { createHash, timingSafeEqual } from 'node:crypto';
import { BlockList, isIPv6 } from 'node:net';
import type { Request } from 'express';
import { HttpError } from '../errors.js';

/**
 * Who may write, delete and administer (docs/design.md §11): a bearer token from the
 * config, or a source address in trustedNetworks. A token that is presented
 * but wrong is refused even from a trusted address, so a misconfigured client
 * learns it at once.
 */
export class Authenticator {
  private tokenDigests: Buffer[] = [];
  private trusted = new BlockList();

  constructor(tokens: readonly string[], trustedNetworks: readonly string[]) {
    this.replace(tokens, trustedNetworks);
  }

  /** New tokens and networks from the next request on (SIGHUP reload). */
  replace(tokens: readonly string[], trustedNetworks: readonly string[]): void {
    const trusted = new BlockList();
    for (const cidr of trustedNetworks) {
      const [address, prefix] = cidr.split('/');
      trusted.addSubnet(address, Number(prefix), isIPv6(address) ? 'ipv6' : 'ipv4');
    }
    this.tokenDigests = tokens.map(digest);
    this.trusted = trusted;
  }

  /** 'token' or 'network' when the request is trusted, null when it carries no credentials; throws on a wrong token. */
  identify(req: Request): 'token' | 'network' | null {
    const header = req.headers.authorization;
    if (header !== undefined) {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
      if (!match || !this.isToken(match[1])) throw new HttpError('unauthorized', 'The bearer token is not valid.');
      return 'token';
    }
    return this.isTrustedAddress(req.socket.remoteAddress) ? 'network' : null;
  }

  /** Throws 401 unless the request has a valid token or a trusted address. */
  require(req: Request): void {
    if (this.identify(req) === null) throw new HttpError('unauthorized');
  }

  /**
   * The rule of /usage, /metrics and /status (docs/monitoring.md): as
   * require(), and HTTP Basic with a token as the password (any user name)
   * is a token too, so a person opens /status in a plain browser. Every 401
   * carries a Basic challenge, so the browser asks for it.
   */
  requireMonitoring(req: Request): void {
    try {
      const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(req.headers.authorization ?? '');
      if (!basic) return this.require(req);
      const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0 || !this.isToken(decoded.slice(colon + 1))) throw new HttpError('unauthorized', 'The password is not a valid token.');
    } catch (err) {
      if (err instanceof HttpError && err.code === 'unauthorized') {
        throw new HttpError('unauthorized', err.message, err.details, { 'WWW-Authenticate': BASIC_CHALLENGE });
      }
      throw err;
    }
  }

  private isToken(token: string): boolean {
    const candidate = digest(token);
    // Compare against every token, always, so timing reveals nothing.
    let ok = false;
    for (const known of this.tokenDigests) ok = timingSafeEqual(known, candidate) || ok;
    return ok;
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

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
