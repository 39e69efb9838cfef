import { isIP } from 'node:net';

/**
 * Which request header the trusted reverse proxies in front of the data plane append the
 * client's address to. Only that one is read: a proxy that writes `Forwarded` passes a
 * client's own `X-Forwarded-For` through untouched, so reading both would let a client
 * choose its address.
 */
export type ForwardedHeader = 'x-forwarded-for' | 'forwarded';
export const FORWARDED_HEADERS: readonly ForwardedHeader[] = ['x-forwarded-for', 'forwarded'];

/** How the client's address is found (rate limits and audit entries read it the same way). */
export interface ClientAddressConfig {
  /** Trusted proxies that each append one hop to `forwardedHeader`. 0: the socket's peer. */
  readonly trustedProxyHops: number;
  readonly forwardedHeader: ForwardedHeader;
}

export const DIRECT_CLIENTS: ClientAddressConfig = { trustedProxyHops: 0, forwardedHeader: 'x-forwarded-for' };

type Headers = { readonly [name: string]: string | string[] | undefined };

/**
 * The client's address. With `trustedProxyHops` = N > 0, the N-th hop from the right of
 * the configured header (what the outermost trusted proxy saw; hops further left are
 * client-supplied and could be forged); the socket's peer when the header has fewer hops
 * or is absent. Ports and brackets are dropped (`[2001:db8::1]:4711` → `2001:db8::1`), as
 * are IPv6 zone ids; IPv4-mapped IPv6 is shown as IPv4. A hop that is not an address (an
 * RFC 7239 obfuscated identifier such as `_proxy7`, or `unknown`) is kept as written: it
 * is what the trusted proxy knows of the client.
 */
export function clientIp(remoteAddress: string | undefined, headers: Headers = {}, config: ClientAddressConfig = DIRECT_CLIENTS): string {
  let address = remoteAddress;
  if (config.trustedProxyHops > 0) {
    const value = headers[config.forwardedHeader];
    if (value !== undefined) {
      const text = Array.isArray(value) ? value.join(',') : value;
      const hops = config.forwardedHeader === 'forwarded' ? forwardedFor(text) : text.split(',').map((part) => part.trim()).filter((part) => part !== '');
      const candidate = hops[hops.length - config.trustedProxyHops];
      if (candidate !== undefined && candidate !== '') address = candidate;
    }
  }
  if (address === undefined) return 'unknown';
  return normalizeAddress(address);
}

/** An address without port, brackets or zone; IPv4-mapped IPv6 as IPv4; anything else as written. */
export function normalizeAddress(raw: string): string {
  let address = raw.trim();
  if (address.startsWith('[')) {
    const close = address.indexOf(']');
    if (close > 0) address = address.slice(1, close);
  } else if (address.includes('.') && address.indexOf(':') === address.lastIndexOf(':') && address.includes(':')) {
    address = address.slice(0, address.indexOf(':')); // IPv4 with a port
  }
  const zone = address.indexOf('%');
  if (zone > 0 && address.includes(':')) address = address.slice(0, zone);
  if (address.startsWith('::ffff:') && address.includes('.')) return address.slice(7);
  return address;
}

/**
 * The `for=` value of each element of a `Forwarded` header (RFC 7239), in order, one per
 * hop ('' for an element without `for`). Quoted strings may hold `,` `;` and escapes.
 */
export function forwardedFor(header: string): string[] {
  const hops: string[] = [];
  let name = '';
  let value = '';
  let inValue = false;
  let quoted = false;
  let found: string | undefined;
  const endPair = () => {
    if (inValue && found === undefined && name.trim().toLowerCase() === 'for') found = value.trim();
    name = '';
    value = '';
    inValue = false;
  };
  for (let i = 0; i < header.length; i++) {
    const c = header[i]!;
    if (quoted) {
      if (c === '\\' && i + 1 < header.length) value += header[++i];
      else if (c === '"') quoted = false;
      else value += c;
    } else if (c === '"' && inValue) quoted = true;
    else if (c === '=' && !inValue) inValue = true;
    else if (c === ';') endPair();
    else if (c === ',') {
      endPair();
      hops.push(found ?? '');
      found = undefined;
    } else if (inValue) value += c;
    else name += c;
  }
  endPair();
  if (found !== undefined || hops.length > 0 || header.trim() !== '') hops.push(found ?? '');
  return hops;
}

/**
 * What an IP bucket is keyed on: an IPv4 address as is, an IPv6 address by its network
 * of `ipv6PrefixLength` bits (`2001:db8:0:1::/64`). One IPv6 subscriber holds a whole
 * /64 (often a /56 or /48), so keying on single addresses would let one client take
 * a fresh bucket for every request.
 */
export function rateLimitKey(ip: string, ipv6PrefixLength: number): string {
  if (ipv6PrefixLength >= 128 || isIP(ip) !== 6) return ip;
  const hextets = expandIpv6(ip);
  if (hextets === undefined) return ip;
  let bits = ipv6PrefixLength;
  for (let i = 0; i < 8; i++) {
    const keep = Math.max(0, Math.min(16, bits));
    hextets[i] = keep === 0 ? 0 : hextets[i]! & (0xffff << (16 - keep)) & 0xffff;
    bits -= 16;
  }
  return `${hextets.map((h) => h.toString(16)).join(':')}/${ipv6PrefixLength}`;
}

/** The eight 16-bit groups of an IPv6 address (`::` and an IPv4 tail expanded). */
function expandIpv6(ip: string): number[] | undefined {
  let text = ip;
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    const octets = text.slice(lastColon + 1).split('.').map(Number);
    tail.push((octets[0]! << 8) | octets[1]!, (octets[2]! << 8) | octets[3]!);
    const head = text.slice(0, lastColon + 1);
    text = head.endsWith('::') ? head : head.slice(0, -1);
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((h) => Number.parseInt(h, 16)));
  const left = parse(head);
  const right = rest === undefined ? [] : parse(rest);
  const missing = 8 - tail.length - left.length - right.length;
  if (rest === undefined ? missing !== 0 : missing < 0) return undefined;
  return [...left, ...new Array<number>(missing).fill(0), ...right, ...tail];
}
