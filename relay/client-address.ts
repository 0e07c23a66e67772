// Who a client is, for the limits that apply before anybody has authenticated (sockets waiting for auth,
// WebSocket auths, new motebits): its network address. The TCP peer by default; behind a reverse proxy
// (trustProxy) the first X-Forwarded-For hop, which only means something when that proxy sets the header
// itself rather than appending to what the client sent.
import type { IncomingMessage } from 'node:http';
import { isIPv4, isIPv6 } from 'node:net';

export function clientAddress(req: IncomingMessage, trustProxy: boolean): string {
  if (trustProxy) {
    const header = req.headers['x-forwarded-for'];
    const first = (Array.isArray(header) ? header[0] : header)?.split(',')[0]?.trim() ?? '';
    // Anything that is not an address (a port appended, "unknown") is no identity: the peer stands in.
    if (isIPv4(first) || isIPv6(first)) return addressKey(first);
  }
  return addressKey(req.socket.remoteAddress ?? '');
}

/**
 * What limits are keyed by: an IPv4 address, or the /64 of an IPv6 one (what one subscriber is usually
 * given, so hopping between its addresses buys nothing).
 */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped?.[1]) return mapped[1];
  if (isIPv4(address)) return address;
  const bare = address.split('%')[0] ?? '';
  if (!isIPv6(bare)) return address;
  return `${ipv6Groups(bare).slice(0, 4).join(':')}::/64`;
}

/** The eight groups of an IPv6 address, '::' expanded, without leading zeros. */
function ipv6Groups(address: string): string[] {
  const groups = (part: string | undefined): string[] => (part ? part.split(':').flatMap((group) => (group.includes('.') ? ['0', '0'] : [group])) : []);
  const [left, right] = address.split('::');
  const head = groups(left);
  const tail = groups(right);
  const full = right === undefined ? head : [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail];
  return full.map((group) => Number.parseInt(group, 16).toString(16));
}
