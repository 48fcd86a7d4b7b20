import type { IncomingMessage } from 'node:http';
import { BlockList, isIP, isIPv6 } from 'node:net';

/** `::ffff:10.0.0.1` → `10.0.0.1`; other addresses as they are. */
function plain(address: string): string {
  return /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1] ?? address;
}

/**
 * The client's address for logs: the socket's peer, unless that peer is a
 * trusted proxy (`http.trustedProxies`); then X-Forwarded-For is read from
 * the right, skipping trusted proxies, and the first other address is the
 * client. A header from anyone else is ignored: it is the client's to forge.
 */
export function clientAddressOf(trustedProxies: readonly string[]): (req: IncomingMessage) => string | undefined {
  if (trustedProxies.length === 0) return (req) => (req.socket.remoteAddress ? plain(req.socket.remoteAddress) : undefined);
  const trusted = new BlockList();
  for (const cidr of trustedProxies) {
    const [address, prefix] = cidr.split('/');
    trusted.addSubnet(address, Number(prefix), isIPv6(address) ? 'ipv6' : 'ipv4');
  }
  const isTrusted = (address: string) => {
    const version = isIP(address);
    return version !== 0 && trusted.check(address, version === 6 ? 'ipv6' : 'ipv4');
  };
  return (req) => {
    const peer = req.socket.remoteAddress ? plain(req.socket.remoteAddress) : undefined;
    if (peer === undefined || !isTrusted(peer)) return peer;
    const header = req.headers['x-forwarded-for'];
    const hops = (Array.isArray(header) ? header.join(',') : header ?? '').split(',').map((hop) => plain(hop.trim())).filter(Boolean);
    let client = peer;
    for (let i = hops.length - 1; i >= 0; i--) {
      if (isIP(hops[i]) === 0) break;
      client = hops[i];
      if (!isTrusted(hops[i])) break;
    }
    return client;
  };
}
