import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import { Agent, buildConnector } from 'undici';

/**
 * Why a rule engine's destination was refused. Local: the client turns it into an
 * `error` verdict (code `DESTINATION_REFUSED`), the control plane into a validation error.
 *
 * - `INVALID_URL`: not an absolute URL, or it carries user:password;
 * - `INSECURE_SCHEME`: not https (http only with `allowPrivateNetwork`);
 * - `PRIVATE_ADDRESS`: the host is, or resolves to, a loopback, private, link-local,
 *   CGNAT, unique-local, multicast, reserved or unspecified address;
 * - `UNRESOLVED`: the name does not resolve (only from {@link assertPublicDestination}).
 */
export type EngineDestinationErrorCode = 'INVALID_URL' | 'INSECURE_SCHEME' | 'PRIVATE_ADDRESS' | 'UNRESOLVED';

export class EngineDestinationError extends Error {
  override readonly name = 'EngineDestinationError';
  constructor(
    readonly code: EngineDestinationErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A prefix of the address space and what it is, for the refusal message. */
interface Range {
  readonly bytes: readonly number[];
  readonly bits: number;
  readonly what: string;
}

function v4Range(cidr: string, what: string): Range {
  const [address, bits] = cidr.split('/') as [string, string];
  return { bytes: parseIPv4(address)!, bits: Number(bits), what };
}

function v6Range(cidr: string, what: string): Range {
  const [address, bits] = cidr.split('/') as [string, string];
  return { bytes: parseIPv6(address)!, bits: Number(bits), what };
}

/** IPv4 space a rule engine may not live in (RFC 6890 special-purpose registry, minus the global ones). */
const REFUSED_V4: readonly Range[] = [
  v4Range('0.0.0.0/8', 'unspecified ("this network")'),
  v4Range('10.0.0.0/8', 'private (RFC 1918)'),
  v4Range('100.64.0.0/10', 'carrier-grade NAT (RFC 6598)'),
  v4Range('127.0.0.0/8', 'loopback'),
  v4Range('169.254.0.0/16', 'link-local (cloud metadata lives here)'),
  v4Range('172.16.0.0/12', 'private (RFC 1918)'),
  v4Range('192.0.0.0/24', 'IETF protocol assignment'),
  v4Range('192.0.2.0/24', 'documentation'),
  v4Range('192.88.99.0/24', '6to4 relay anycast'),
  v4Range('192.168.0.0/16', 'private (RFC 1918)'),
  v4Range('198.18.0.0/15', 'benchmarking'),
  v4Range('198.51.100.0/24', 'documentation'),
  v4Range('203.0.113.0/24', 'documentation'),
  v4Range('224.0.0.0/4', 'multicast'),
  v4Range('240.0.0.0/4', 'reserved (and broadcast)'),
];

const REFUSED_V6: readonly Range[] = [
  v6Range('::/128', 'unspecified'),
  v6Range('::1/128', 'loopback'),
  v6Range('::/96', 'IPv4-compatible (deprecated)'),
  v6Range('64:ff9b:1::/48', 'local-use NAT64'),
  v6Range('100::/64', 'discard-only'),
  v6Range('2001::/23', 'IETF protocol assignment (Teredo, ORCHID, …)'),
  v6Range('2001:db8::/32', 'documentation'),
  v6Range('fc00::/7', 'unique-local (ULA)'),
  v6Range('fe80::/10', 'link-local'),
  v6Range('fec0::/10', 'site-local (deprecated)'),
  v6Range('ff00::/8', 'multicast'),
];

/** IPv6 prefixes that carry an IPv4 address the packet really goes to; that address is checked too. */
const EMBEDS_V4: readonly { range: Range; offset: number; what: string }[] = [
  { range: v6Range('::ffff:0:0/96', 'IPv4-mapped'), offset: 12, what: 'IPv4-mapped' },
  { range: v6Range('64:ff9b::/96', 'NAT64'), offset: 12, what: 'NAT64' },
  { range: v6Range('2002::/16', '6to4'), offset: 2, what: '6to4' },
];

function inRange(bytes: readonly number[], range: Range): boolean {
  let bits = range.bits;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((bytes[i]! & mask) !== (range.bytes[i]! & mask)) return false;
  }
  return true;
}

function parseIPv4(text: string): number[] | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const bytes: number[] = [];
  for (const part of parts) {
    if (!/^[0-9]{1,3}$/.test(part)) return undefined;
    const value = Number(part);
    if (value > 255) return undefined;
    bytes.push(value);
  }
  return bytes;
}

function parseIPv6(text: string): number[] | undefined {
  let rest = text;
  const zone = rest.indexOf('%');
  if (zone >= 0) rest = rest.slice(0, zone);
  let tail: number[] = [];
  // A trailing dotted quad (::ffff:1.2.3.4) stands for the last two groups.
  const lastColon = rest.lastIndexOf(':');
  if (rest.includes('.', lastColon)) {
    const v4 = parseIPv4(rest.slice(lastColon + 1));
    if (!v4) return undefined;
    tail = v4;
    rest = rest.slice(0, lastColon + 1) + '0:0';
  }
  const halves = rest.split('::');
  if (halves.length > 2) return undefined;
  const groups = (half: string) => (half === '' ? [] : half.split(':'));
  const head = groups(halves[0]!);
  const back = halves.length === 2 ? groups(halves[1]!) : [];
  const missing = 8 - head.length - back.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const all = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...back];
  const bytes: number[] = [];
  for (const group of all) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return undefined;
    const value = parseInt(group, 16);
    bytes.push(value >> 8, value & 0xff);
  }
  if (tail.length) bytes.splice(12, 4, ...tail);
  return bytes;
}

/**
 * Why this IP address may not be a rule engine's destination, or `undefined` when it is a
 * public unicast address. IPv4-mapped, NAT64 and 6to4 IPv6 addresses are judged by the
 * IPv4 address they carry. Throws nothing: text that is not an IP address is refused.
 */
export function refusedAddressReason(address: string): string | undefined {
  const family = isIP(address.split('%')[0]!);
  if (family === 4) {
    const bytes = parseIPv4(address)!;
    return REFUSED_V4.find((range) => inRange(bytes, range))?.what;
  }
  if (family === 6) {
    const bytes = parseIPv6(address);
    if (!bytes) return 'not a valid IPv6 address';
    for (const embed of EMBEDS_V4) {
      if (!inRange(bytes, embed.range)) continue;
      const inner = refusedAddressReason(bytes.slice(embed.offset, embed.offset + 4).join('.'));
      return inner ? `${embed.what} ${inner}` : undefined;
    }
    return REFUSED_V6.find((range) => inRange(bytes, range))?.what;
  }
  return 'not an IP address';
}

function refusal(host: string, address: string, why: string): EngineDestinationError {
  const target = host === address ? address : `${host} (${address})`;
  return new EngineDestinationError(
    'PRIVATE_ADDRESS',
    `rule engine destination ${target} is a ${why} address; private and loopback destinations are refused unless the engine allows the private network (development only)`,
  );
}

function unbracket(hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
}

/**
 * The checks that need no DNS: an absolute http(s) URL without credentials, https unless
 * `allowPrivateNetwork`, and (unless allowed) no private IP literal. Returns the parsed URL.
 */
export function checkDestinationUrl(url: string, allowPrivateNetwork: boolean): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new EngineDestinationError('INVALID_URL', `rule engine URL "${url}" is not an absolute URL`);
  }
  if (parsed.username || parsed.password) {
    throw new EngineDestinationError('INVALID_URL', 'rule engine URL may not carry a user name or password; configure an encrypted header instead');
  }
  const secureOnly = !allowPrivateNetwork;
  if (parsed.protocol !== 'https:' && !(parsed.protocol === 'http:' && !secureOnly)) {
    throw new EngineDestinationError(
      'INSECURE_SCHEME',
      secureOnly
        ? `rule engine URL must use https (got ${parsed.protocol.slice(0, -1)}); http is allowed only with allowPrivateNetwork`
        : `rule engine URL must use https or http (got ${parsed.protocol.slice(0, -1)})`,
    );
  }
  if (!allowPrivateNetwork) {
    const host = unbracket(parsed.hostname);
    if (isIP(host)) {
      const why = refusedAddressReason(host);
      if (why) throw refusal(host, host, why);
    }
  }
  return parsed;
}

/** `dns.lookup`'s shape (what `net.connect` calls with `lookup`). */
export type LookupFunction = (
  hostname: string,
  options: { family?: number | string; all?: boolean; hints?: number; verbatim?: boolean; order?: string },
  callback: (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
) => void;

const systemLookup: LookupFunction = (hostname, options, callback) =>
  dnsLookup(hostname, { ...options, all: true } as never, callback as never);

/**
 * Save-time check for the control plane and the test-connection mutation: the URL
 * checks of {@link checkDestinationUrl}, then (unless `allowPrivateNetwork`) the name is
 * resolved and **every** address it resolves to must be public. The data plane checks
 * again at each connection ({@link createEngineDispatcher}), so a name that later
 * resolves elsewhere (DNS rebinding) is still refused.
 */
export async function assertPublicDestination(
  url: string,
  allowPrivateNetwork: boolean,
  options: { lookup?: LookupFunction } = {},
): Promise<URL> {
  const parsed = checkDestinationUrl(url, allowPrivateNetwork);
  if (allowPrivateNetwork) return parsed;
  const host = unbracket(parsed.hostname);
  if (isIP(host)) return parsed;
  const lookup = options.lookup ?? systemLookup;
  const addresses = await new Promise<LookupAddress[]>((resolve, reject) =>
    lookup(host, { all: true }, (error, found) => {
      if (error) reject(new EngineDestinationError('UNRESOLVED', `rule engine host ${host} does not resolve (${error.code ?? error.message})`, { cause: error }));
      else resolve(found);
    }),
  );
  if (addresses.length === 0) throw new EngineDestinationError('UNRESOLVED', `rule engine host ${host} resolves to no address`);
  for (const { address } of addresses) {
    const why = refusedAddressReason(address);
    if (why) throw refusal(host, address, why);
  }
  return parsed;
}

/**
 * A lookup for `net.connect` that resolves every address of the name and refuses the
 * connection when any of them is not public. The socket connects to an address this
 * function returned, so there is no window between the check and the connect.
 */
export function guardedLookup(base: LookupFunction = systemLookup) {
  return (hostname: string, options: unknown, callback: (...args: unknown[]) => void): void => {
    const opts = typeof options === 'object' && options !== null ? (options as { all?: boolean; family?: number }) : {};
    const wantsAll = opts.all === true;
    base(hostname, { ...opts, all: true }, (error, addresses) => {
      if (error) return callback(error);
      if (!addresses || addresses.length === 0) {
        const empty = Object.assign(new Error(`rule engine host ${hostname} resolves to no address`), { code: 'ENOTFOUND' });
        return callback(empty);
      }
      for (const { address } of addresses) {
        const why = refusedAddressReason(address);
        if (why) return callback(refusal(hostname, address, why));
      }
      if (wantsAll) callback(null, addresses);
      else callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
}

export interface EngineDispatcherOptions {
  /** Development only: connect to loopback and private addresses too. */
  readonly allowPrivateNetwork: boolean;
  /** Milliseconds to establish TCP (and TLS). Default 10 000. */
  readonly connectTimeoutMs?: number;
  /** Idle keep-alive sockets are closed after this long. Default 30 000 ms. */
  readonly keepAliveTimeoutMs?: number;
  /** Sockets per origin. Default 32. */
  readonly connections?: number;
  /** Replaces the system resolver (tests fake DNS with it). */
  readonly lookup?: LookupFunction;
}

/**
 * An undici Agent (keep-alive pool) for one rule engine whose every new connection is
 * checked after DNS resolution: IP literals before connecting, names through
 * {@link guardedLookup}. With `allowPrivateNetwork` it is a plain keep-alive Agent.
 */
export function createEngineDispatcher(options: EngineDispatcherOptions): Agent {
  const timeout = options.connectTimeoutMs ?? 10_000;
  const base = buildConnector({
    timeout,
    ...(options.allowPrivateNetwork ? {} : { lookup: guardedLookup(options.lookup) as never }),
  });
  const connect: buildConnector.connector = (connectOptions, callback) => {
    if (!options.allowPrivateNetwork) {
      if (connectOptions.socketPath) {
        return callback(new EngineDestinationError('PRIVATE_ADDRESS', 'rule engines cannot be reached through a Unix socket'), null);
      }
      const host = unbracket(connectOptions.hostname);
      if (isIP(host)) {
        const why = refusedAddressReason(host);
        if (why) return callback(refusal(host, host, why), null);
      }
    }
    base(connectOptions, callback);
  };
  return new Agent({
    connect,
    keepAliveTimeout: options.keepAliveTimeoutMs ?? 30_000,
    keepAliveMaxTimeout: Math.max(options.keepAliveTimeoutMs ?? 30_000, 60_000),
    connections: options.connections ?? 32,
  });
}

/** The {@link EngineDestinationError} in an error or its causes, if any. */
export function findDestinationError(error: unknown): EngineDestinationError | undefined {
  for (let current = error, depth = 0; current && depth < 8; depth++) {
    if (current instanceof EngineDestinationError) return current;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}
