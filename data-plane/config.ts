import { FORWARDED_HEADERS, type ForwardedHeader } from './policy/client-address.js';

/** The data plane's settings, resolved once and frozen. */
export interface DataPlaneConfig {
  /** Interface to listen on. Default `127.0.0.1`. */
  readonly host: string;
  /** Port to listen on; 0 picks a free one. Default 4001 (`GATEHOUSE_DATA_PLANE_PORT`). */
  readonly port: number;
  /**
   * Secret the session-id key is derived from (at least 32 characters). Every replica
   * serving the same sessions must share it.
   */
  readonly sessionSecret: string;
  /** Sessions older than this must re-initialize. Default 24 h. */
  readonly sessionMaxAgeMs: number;
  /** Largest request body accepted; larger gets 413. Default 4 MiB. */
  readonly maxBodyBytes: number;
  /** Per-upstream deadline of list fan-outs. Default 5 s. */
  readonly listTimeoutMs: number;
  /** Per-upstream timeout of targeted calls (`tools/call` …). Default 60 s. */
  readonly callTimeoutMs: number;
  /** [proxy] Items per page of merged lists (`tools/list` …); more come with a cursor. Default 100. */
  readonly listPageSize: number;
  /**
   * [proxy] Per-upstream circuit breaker: opens after `failureThreshold` consecutive
   * unreachable/timed-out calls (0: never) and lets one probe through after `coolDownMs`.
   * Default 5 failures, 10 s.
   */
  readonly circuitBreaker: { readonly failureThreshold: number; readonly coolDownMs: number };
  /**
   * [proxy] Health probe of managed servers: an upstream session that answered nothing for
   * `intervalMs` gets an MCP `ping`; `failures` pings in a row unanswered within `timeoutMs`
   * mean the process is hung, and it is restarted. Default 30 s, 5 s, 2; `intervalMs` 0
   * turns probing off.
   */
  readonly managedProbe: { readonly intervalMs: number; readonly timeoutMs: number; readonly failures: number };
  /**
   * [proxy] A call whose SSE stream lost its client keeps running this long for the client
   * to resume it (GET with `Last-Event-ID`); then it is cancelled upstream. Default 30 s.
   */
  readonly streamResumeGraceMs: number;
  /** [proxy] A call unanswered after this long starts a resumable SSE stream (a priming event); 0: only when a message comes. Default 5 s. */
  readonly streamPrimeAfterMs: number;
  // ── [ops] DNS-rebinding protection, rate limits (issue 4, operations) ──
  /** The base URL clients reach this data plane at; its host is allowed by default. */
  readonly publicUrl: string | undefined;
  /**
   * Host names (without port) a request's `Host` header may carry; `*` allows any.
   * Default: `localhost`, `127.0.0.1`, `::1` and the host of {@link publicUrl}.
   */
  readonly allowedHosts: readonly string[];
  /**
   * Browser origins (`scheme://host[:port]`, or `scheme://host:*` for any port; `*` allows
   * any) allowed to call. A request without `Origin` (not a browser) is always allowed.
   * Default: loopback origins on any port and the origin of {@link publicUrl}.
   */
  readonly allowedOrigins: readonly string[];
  /** Token buckets; a capacity of 0 turns that bucket off. */
  readonly rateLimit: RateLimitConfig;
  /** `redis://…`: rate-limit buckets shared by every replica through Redis. Default: in memory. */
  readonly redisUrl: string | undefined;
}

export interface BucketConfig {
  /** Burst size: calls allowed at once from a full bucket. */
  readonly capacity: number;
  /** Calls added back per second. */
  readonly refillPerSecond: number;
}

export interface RateLimitConfig {
  /** Per client IP, checked before authentication. Default 1200 burst, 20/s (1200/min). */
  readonly perIp: BucketConfig;
  /** Per access token, checked after authentication. Default 600 burst, 10/s (600/min). */
  readonly perToken: BucketConfig;
  /** Prefix of the Redis keys. Default `gatehouse:rl:`. */
  readonly keyPrefix: string;
  /**
   * Reverse proxies in front of the data plane that append to `forwardedHeader`; the
   * client IP is the address that many hops from the right. Default 0: the socket's peer.
   */
  readonly trustedProxyHops: number;
  /** The header those proxies append to: `x-forwarded-for` (default) or `forwarded` (RFC 7239). Only that one is read. */
  readonly forwardedHeader: ForwardedHeader;
  /** IPv6 clients share a bucket per network of this many leading bits. Default 64 (one subscriber's LAN); 128 keys single addresses. */
  readonly ipv6PrefixLength: number;
}

export type DataPlaneConfigInput = Partial<Omit<DataPlaneConfig, 'rateLimit' | 'circuitBreaker' | 'managedProbe'>> &
  Pick<DataPlaneConfig, 'sessionSecret'> & {
    readonly rateLimit?: {
      readonly perIp?: Partial<BucketConfig>;
      readonly perToken?: Partial<BucketConfig>;
      readonly keyPrefix?: string;
      readonly trustedProxyHops?: number;
      readonly forwardedHeader?: ForwardedHeader;
      readonly ipv6PrefixLength?: number;
    };
    readonly circuitBreaker?: Partial<DataPlaneConfig['circuitBreaker']>; // [proxy]
    readonly managedProbe?: Partial<DataPlaneConfig['managedProbe']>; // [proxy]
  };

/** Loopback names always allowed as `Host` unless `allowedHosts` is set explicitly. */
export const LOOPBACK_HOSTS: readonly string[] = ['localhost', '127.0.0.1', '::1'];

/** Fills defaults and checks every option, naming the one that is wrong. */
export function resolveDataPlaneConfig(input: DataPlaneConfigInput): DataPlaneConfig {
  const config: DataPlaneConfig = {
    host: input.host ?? '127.0.0.1',
    port: input.port ?? 4001,
    sessionSecret: input.sessionSecret,
    sessionMaxAgeMs: input.sessionMaxAgeMs ?? 24 * 60 * 60 * 1000,
    maxBodyBytes: input.maxBodyBytes ?? 4 * 1024 * 1024,
    listTimeoutMs: input.listTimeoutMs ?? 5_000,
    callTimeoutMs: input.callTimeoutMs ?? 60_000,
    listPageSize: input.listPageSize ?? 100,
    circuitBreaker: { failureThreshold: input.circuitBreaker?.failureThreshold ?? 5, coolDownMs: input.circuitBreaker?.coolDownMs ?? 10_000 },
    managedProbe: {
      intervalMs: input.managedProbe?.intervalMs ?? 30_000,
      timeoutMs: input.managedProbe?.timeoutMs ?? 5_000,
      failures: input.managedProbe?.failures ?? 2,
    },
    streamResumeGraceMs: input.streamResumeGraceMs ?? 30_000,
    streamPrimeAfterMs: input.streamPrimeAfterMs ?? 5_000,
    publicUrl: input.publicUrl,
    allowedHosts: [],
    allowedOrigins: [],
    rateLimit: {
      perIp: { capacity: input.rateLimit?.perIp?.capacity ?? 1200, refillPerSecond: input.rateLimit?.perIp?.refillPerSecond ?? 20 },
      perToken: { capacity: input.rateLimit?.perToken?.capacity ?? 600, refillPerSecond: input.rateLimit?.perToken?.refillPerSecond ?? 10 },
      keyPrefix: input.rateLimit?.keyPrefix ?? 'gatehouse:rl:',
      trustedProxyHops: input.rateLimit?.trustedProxyHops ?? 0,
      forwardedHeader: input.rateLimit?.forwardedHeader ?? 'x-forwarded-for',
      ipv6PrefixLength: input.rateLimit?.ipv6PrefixLength ?? 64,
    },
    redisUrl: input.redisUrl,
  };
  if (typeof config.sessionSecret !== 'string' || config.sessionSecret.length < 32) {
    throw new TypeError('data plane option "sessionSecret" must be a string of at least 32 characters');
  }
  if (!Number.isInteger(config.port) || config.port < 0 || config.port > 65535) {
    throw new TypeError(`data plane option "port" must be an integer from 0 to 65535, got ${config.port}`);
  }
  for (const name of ['sessionMaxAgeMs', 'maxBodyBytes', 'listTimeoutMs', 'callTimeoutMs', 'listPageSize', 'streamResumeGraceMs'] as const) {
    if (!Number.isInteger(config[name]) || config[name] <= 0) {
      throw new TypeError(`data plane option "${name}" must be a positive integer, got ${config[name]}`);
    }
  }
  // [proxy] circuit breaker
  if (!Number.isInteger(config.circuitBreaker.failureThreshold) || config.circuitBreaker.failureThreshold < 0) {
    throw new TypeError(`data plane option "circuitBreaker.failureThreshold" must be an integer ≥ 0 (0 turns it off), got ${config.circuitBreaker.failureThreshold}`);
  }
  if (!Number.isInteger(config.circuitBreaker.coolDownMs) || config.circuitBreaker.coolDownMs <= 0) {
    throw new TypeError(`data plane option "circuitBreaker.coolDownMs" must be a positive integer, got ${config.circuitBreaker.coolDownMs}`);
  }
  if (!Number.isInteger(config.streamPrimeAfterMs) || config.streamPrimeAfterMs < 0) {
    throw new TypeError(`data plane option "streamPrimeAfterMs" must be an integer ≥ 0 (0 primes only when a message comes), got ${config.streamPrimeAfterMs}`);
  }
  // [proxy] health probe of managed servers
  if (!Number.isInteger(config.managedProbe.intervalMs) || config.managedProbe.intervalMs < 0) {
    throw new TypeError(`data plane option "managedProbe.intervalMs" must be an integer ≥ 0 (0 turns the probe off), got ${config.managedProbe.intervalMs}`);
  }
  if (!Number.isInteger(config.managedProbe.timeoutMs) || config.managedProbe.timeoutMs <= 0) {
    throw new TypeError(`data plane option "managedProbe.timeoutMs" must be a positive integer, got ${config.managedProbe.timeoutMs}`);
  }
  if (!Number.isInteger(config.managedProbe.failures) || config.managedProbe.failures < 1) {
    throw new TypeError(`data plane option "managedProbe.failures" must be an integer ≥ 1, got ${config.managedProbe.failures}`);
  }
  // ── [ops] origin/host and rate-limit options ──
  let publicHost: string | undefined;
  let publicOrigin: string | undefined;
  if (config.publicUrl !== undefined) {
    if (typeof config.publicUrl !== 'string' || !URL.canParse(config.publicUrl) || !/^https?:$/.test(new URL(config.publicUrl).protocol)) {
      throw new TypeError(`data plane option "publicUrl" must be an http(s) URL, got ${String(config.publicUrl)}`);
    }
    const url = new URL(config.publicUrl);
    publicHost = stripBrackets(url.hostname.toLowerCase());
    publicOrigin = url.origin;
  }
  const hosts = input.allowedHosts ?? [...LOOPBACK_HOSTS, ...(publicHost ? [publicHost] : [])];
  if (!Array.isArray(hosts) || hosts.length === 0 || !hosts.every((host) => typeof host === 'string' && /^(\*|\[?[A-Za-z0-9.:_-]+\]?)$/.test(host))) {
    throw new TypeError('data plane option "allowedHosts" must be a non-empty list of host names (no scheme or port), or ["*"]');
  }
  const origins =
    input.allowedOrigins ??
    [...['localhost', '127.0.0.1', '[::1]'].flatMap((host) => [`http://${host}:*`, `https://${host}:*`]), ...(publicOrigin ? [publicOrigin] : [])];
  const normalizedOrigins = Array.isArray(origins) ? origins.map((origin) => (origin === '*' ? '*' : normalizeOriginPattern(origin))) : [undefined];
  if (!normalizedOrigins.every((origin) => origin !== undefined)) {
    throw new TypeError('data plane option "allowedOrigins" must list origins such as https://app.example.com, http://localhost:* (any port) or "*"');
  }
  for (const scope of ['perIp', 'perToken'] as const) {
    const bucket = config.rateLimit[scope];
    if (!Number.isInteger(bucket.capacity) || bucket.capacity < 0) {
      throw new TypeError(`data plane option "rateLimit.${scope}.capacity" must be an integer ≥ 0 (0 turns it off), got ${bucket.capacity}`);
    }
    if (typeof bucket.refillPerSecond !== 'number' || !Number.isFinite(bucket.refillPerSecond) || bucket.refillPerSecond <= 0) {
      throw new TypeError(`data plane option "rateLimit.${scope}.refillPerSecond" must be a positive number, got ${bucket.refillPerSecond}`);
    }
    Object.freeze(bucket);
  }
  if (typeof config.rateLimit.keyPrefix !== 'string') throw new TypeError('data plane option "rateLimit.keyPrefix" must be a string');
  if (!Number.isInteger(config.rateLimit.trustedProxyHops) || config.rateLimit.trustedProxyHops < 0 || config.rateLimit.trustedProxyHops > 10) {
    throw new TypeError(`data plane option "rateLimit.trustedProxyHops" must be an integer from 0 to 10, got ${config.rateLimit.trustedProxyHops}`);
  }
  if (!FORWARDED_HEADERS.includes(config.rateLimit.forwardedHeader)) {
    throw new TypeError(`data plane option "rateLimit.forwardedHeader" must be one of ${FORWARDED_HEADERS.join(', ')}, got ${String(config.rateLimit.forwardedHeader)}`);
  }
  if (!Number.isInteger(config.rateLimit.ipv6PrefixLength) || config.rateLimit.ipv6PrefixLength < 16 || config.rateLimit.ipv6PrefixLength > 128) {
    throw new TypeError(`data plane option "rateLimit.ipv6PrefixLength" must be an integer from 16 to 128, got ${config.rateLimit.ipv6PrefixLength}`);
  }
  if (config.redisUrl !== undefined && (typeof config.redisUrl !== 'string' || !/^rediss?:\/\//.test(config.redisUrl) || !URL.canParse(config.redisUrl))) {
    throw new TypeError('data plane option "redisUrl" must be a redis:// or rediss:// URL');
  }
  return Object.freeze({
    ...config,
    allowedHosts: Object.freeze(hosts.map((host) => stripBrackets(host.toLowerCase()))),
    allowedOrigins: Object.freeze(normalizedOrigins as string[]),
    rateLimit: Object.freeze(config.rateLimit),
    circuitBreaker: Object.freeze(config.circuitBreaker),
    managedProbe: Object.freeze(config.managedProbe),
  });
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** `scheme://host[:port]` or `scheme://host:*` (any port), nothing after, as the URL origin; undefined if not one. */
function normalizeOriginPattern(origin: unknown): string | undefined {
  if (typeof origin !== 'string') return undefined;
  const anyPort = origin.endsWith(':*');
  const base = anyPort ? origin.slice(0, -2) : origin;
  if (!URL.canParse(base)) return undefined;
  const url = new URL(base);
  if (url.host === '' || url.origin === 'null' || !/^\/?$/.test(url.pathname) || url.search || url.hash || url.username || (anyPort && url.port !== '')) return undefined;
  return anyPort ? `${url.origin}:*` : url.origin;
}

/** A setting of the data-plane process, as `--help` lists it. */
export interface DataPlaneVariable {
  readonly env: string;
  /** The flag of `gatehouse data-plane` that sets it. */
  readonly flag?: string;
  readonly description: string;
  readonly default?: string;
}

/** The data-plane process's variables, in the order `--help` lists them. */
export const DATA_PLANE_VARIABLES: readonly DataPlaneVariable[] = [
  { env: 'GATEHOUSE_CONTROL_PLANE_URL', flag: '--control-plane', description: 'control-plane base URL to receive snapshots from (data-plane command)' },
  { env: 'GATEHOUSE_DATA_PLANE_TOKEN', flag: '--token', description: 'data-plane token gh_dp_… from registerDataPlane (data-plane command)' },
  { env: 'GATEHOUSE_DATA_PLANE_HOST', flag: '--host', description: 'interface the data plane (MCP endpoint) listens on', default: '127.0.0.1' },
  { env: 'GATEHOUSE_DATA_PLANE_PORT', flag: '--port', description: 'data-plane (MCP) port; 0 picks a free one', default: '4001' },
  {
    env: 'GATEHOUSE_SESSION_SECRET',
    description:
      'MCP session-id signing secret, at least 32 characters; required by the data-plane command and shared by all its replicas',
    default: 'start: generated into <data dir>/session-secret',
  },
  {
    env: 'GATEHOUSE_DATA_PLANE_ALLOWED_HOSTS',
    description: 'comma-separated Host names the MCP endpoint answers (DNS-rebinding protection); * allows any',
    default: 'localhost,127.0.0.1,::1 and the host of GATEHOUSE_DATA_PLANE_PUBLIC_URL',
  },
  {
    env: 'GATEHOUSE_DATA_PLANE_ALLOWED_ORIGINS',
    description: 'comma-separated browser Origins allowed (https://app.example.com, http://localhost:* for any port, or *); requests without Origin are allowed',
    default: 'loopback origins and the origin of GATEHOUSE_DATA_PLANE_PUBLIC_URL',
  },
  { env: 'GATEHOUSE_RATE_LIMIT_IP_CAPACITY', description: 'burst of MCP requests per client IP (0 turns the IP limit off)', default: '1200' },
  { env: 'GATEHOUSE_RATE_LIMIT_IP_REFILL_PER_SECOND', description: 'requests per second refilled per client IP', default: '20 (1200/min)' },
  { env: 'GATEHOUSE_RATE_LIMIT_TOKEN_CAPACITY', description: 'burst of MCP requests per access token (0 turns the token limit off)', default: '600' },
  { env: 'GATEHOUSE_RATE_LIMIT_TOKEN_REFILL_PER_SECOND', description: 'requests per second refilled per access token', default: '10 (600/min)' },
  {
    env: 'GATEHOUSE_DATA_PLANE_TRUSTED_PROXY_HOPS',
    description: 'reverse proxies in front that append to the forwarded header; the per-IP limit and audit entries take the address that many hops from the right',
    default: '0 (the connecting address)',
  },
  {
    env: 'GATEHOUSE_DATA_PLANE_FORWARDED_HEADER',
    description: 'the header those proxies append to: x-forwarded-for or forwarded (RFC 7239); only that one is read',
    default: 'x-forwarded-for',
  },
  { env: 'GATEHOUSE_RATE_LIMIT_IPV6_PREFIX', description: 'IPv6 clients share a per-IP bucket per network of this many bits (16-128; 128 keys single addresses)', default: '64' },
  { env: 'GATEHOUSE_LIST_PAGE_SIZE', description: 'items per page of merged tools/prompts/resources lists (more come with a cursor)', default: '100' },
  {
    env: 'GATEHOUSE_MANAGED_PROBE_INTERVAL_MS',
    description: 'a managed server whose session answered nothing for this long gets an MCP ping; unanswered pings in a row restart its process (0 turns the probe off)',
    default: '30000',
  },
  { env: 'GATEHOUSE_MANAGED_PROBE_TIMEOUT_MS', description: 'how long a managed server has to answer a probe ping', default: '5000' },
  {
    env: 'GATEHOUSE_STREAM_RESUME_GRACE_MS',
    description: 'a call whose SSE stream lost its client keeps running this long for the client to resume it with Last-Event-ID; then it is cancelled',
    default: '30000',
  },
  { env: 'GATEHOUSE_STREAM_PRIME_AFTER_MS', description: 'a call unanswered after this long gets a resumable SSE stream (0: only when a message comes first)', default: '5000' },
  { env: 'REDIS_URL', description: 'redis://… to share rate-limit buckets and ended sessions across data-plane replicas', default: 'in memory, per process' },
  {
    env: 'GATEHOUSE_AUDIT_BUFFER_ENTRIES',
    description: 'bound of the audit buffer (entries waiting for the control plane); past it, calls are served but not recorded, and the drop is counted in /metrics',
    default: '50000',
  },
  {
    env: 'GATEHOUSE_AUDIT_BUILD_ON',
    description: 'where audit entries are built: event-loop (least memory, best throughput on few cores) or worker (a thread of their own: shorter tail latency when a core is spare, ~35 MiB more RSS)',
    default: 'event-loop',
  },
];

/** A data-plane setting is missing or wrong; `variable` names it. */
export class DataPlaneConfigError extends Error {
  override readonly name = 'DataPlaneConfigError';
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
  }
}

/** What the data-plane process reads from its environment, validated. */
export interface DataPlaneEnvironment {
  readonly host: string;
  readonly port: number;
  readonly sessionSecret: string | undefined;
  readonly controlPlaneUrl: string | undefined;
  readonly token: string | undefined;
  /** [ops] Origin/Host validation and rate limits, ready to spread into `buildDataPlane`'s config. */
  readonly options: DataPlaneEnvironmentOptions;
  /** [audit] `GATEHOUSE_AUDIT_BUFFER_ENTRIES`: bound of the audit shipper's buffer; undefined for its default. */
  readonly auditBufferEntries?: number | undefined;
  /** [audit] `GATEHOUSE_AUDIT_BUILD_ON`: where the shipper builds entries. */
  readonly auditBuildOn?: 'event-loop' | 'worker' | undefined;
}

/** The options of {@link DataPlaneConfigInput} that come from the environment. */
export type DataPlaneEnvironmentOptions = Pick<
  DataPlaneConfigInput,
  'publicUrl' | 'allowedHosts' | 'allowedOrigins' | 'rateLimit' | 'redisUrl' | 'listPageSize' | 'managedProbe' | 'streamResumeGraceMs' | 'streamPrimeAfterMs'
>;

/** Reads the [ops] variables; each is checked with the same rules as the config option, naming the variable. */
function loadOpsOptions(value: (name: string) => string | undefined): DataPlaneEnvironmentOptions {
  const check = (variable: string, input: Omit<DataPlaneConfigInput, 'sessionSecret'>) => {
    try {
      resolveDataPlaneConfig({ sessionSecret: 'x'.repeat(32), ...input });
    } catch (error) {
      throw new DataPlaneConfigError(variable, error instanceof Error ? error.message.replace(/^data plane option "[^"]+" /, '') : String(error));
    }
  };
  const list = (name: string) => value(name)?.split(',').map((item) => item.trim()).filter((item) => item !== '');
  const number = (name: string) => {
    const text = value(name);
    if (text === undefined) return undefined;
    const parsed = Number(text);
    if (text.trim() === '' || !Number.isFinite(parsed)) throw new DataPlaneConfigError(name, `expected a number, got "${text}"`);
    return parsed;
  };
  const publicUrl = value('GATEHOUSE_DATA_PLANE_PUBLIC_URL')?.replace(/\/+$/, '');
  if (publicUrl !== undefined) check('GATEHOUSE_DATA_PLANE_PUBLIC_URL', { publicUrl });
  const allowedHosts = list('GATEHOUSE_DATA_PLANE_ALLOWED_HOSTS');
  if (allowedHosts !== undefined) check('GATEHOUSE_DATA_PLANE_ALLOWED_HOSTS', { allowedHosts });
  const allowedOrigins = list('GATEHOUSE_DATA_PLANE_ALLOWED_ORIGINS');
  if (allowedOrigins !== undefined) check('GATEHOUSE_DATA_PLANE_ALLOWED_ORIGINS', { allowedOrigins });
  const bucket = (scope: 'perIp' | 'perToken', prefix: string) => {
    const capacity = number(`${prefix}_CAPACITY`);
    const refillPerSecond = number(`${prefix}_REFILL_PER_SECOND`);
    const out = { ...(capacity === undefined ? {} : { capacity }), ...(refillPerSecond === undefined ? {} : { refillPerSecond }) };
    if (capacity !== undefined) check(`${prefix}_CAPACITY`, { rateLimit: { [scope]: { capacity } } });
    if (refillPerSecond !== undefined) check(`${prefix}_REFILL_PER_SECOND`, { rateLimit: { [scope]: { refillPerSecond } } });
    return out;
  };
  const hops = number('GATEHOUSE_DATA_PLANE_TRUSTED_PROXY_HOPS');
  if (hops !== undefined) check('GATEHOUSE_DATA_PLANE_TRUSTED_PROXY_HOPS', { rateLimit: { trustedProxyHops: hops } });
  const forwardedHeader = value('GATEHOUSE_DATA_PLANE_FORWARDED_HEADER')?.trim().toLowerCase() as ForwardedHeader | undefined;
  if (forwardedHeader !== undefined) check('GATEHOUSE_DATA_PLANE_FORWARDED_HEADER', { rateLimit: { forwardedHeader } });
  const ipv6PrefixLength = number('GATEHOUSE_RATE_LIMIT_IPV6_PREFIX');
  if (ipv6PrefixLength !== undefined) check('GATEHOUSE_RATE_LIMIT_IPV6_PREFIX', { rateLimit: { ipv6PrefixLength } });
  const rateLimit = {
    perIp: bucket('perIp', 'GATEHOUSE_RATE_LIMIT_IP'),
    perToken: bucket('perToken', 'GATEHOUSE_RATE_LIMIT_TOKEN'),
    ...(hops === undefined ? {} : { trustedProxyHops: hops }),
    ...(forwardedHeader === undefined ? {} : { forwardedHeader }),
    ...(ipv6PrefixLength === undefined ? {} : { ipv6PrefixLength }),
  };
  const redisUrl = value('REDIS_URL');
  if (redisUrl !== undefined) check('REDIS_URL', { redisUrl });
  const listPageSize = number('GATEHOUSE_LIST_PAGE_SIZE');
  if (listPageSize !== undefined) check('GATEHOUSE_LIST_PAGE_SIZE', { listPageSize });
  const probeIntervalMs = number('GATEHOUSE_MANAGED_PROBE_INTERVAL_MS');
  if (probeIntervalMs !== undefined) check('GATEHOUSE_MANAGED_PROBE_INTERVAL_MS', { managedProbe: { intervalMs: probeIntervalMs } });
  const probeTimeoutMs = number('GATEHOUSE_MANAGED_PROBE_TIMEOUT_MS');
  if (probeTimeoutMs !== undefined) check('GATEHOUSE_MANAGED_PROBE_TIMEOUT_MS', { managedProbe: { timeoutMs: probeTimeoutMs } });
  const streamResumeGraceMs = number('GATEHOUSE_STREAM_RESUME_GRACE_MS');
  if (streamResumeGraceMs !== undefined) check('GATEHOUSE_STREAM_RESUME_GRACE_MS', { streamResumeGraceMs });
  const streamPrimeAfterMs = number('GATEHOUSE_STREAM_PRIME_AFTER_MS');
  if (streamPrimeAfterMs !== undefined) check('GATEHOUSE_STREAM_PRIME_AFTER_MS', { streamPrimeAfterMs });
  const managedProbe = {
    ...(probeIntervalMs === undefined ? {} : { intervalMs: probeIntervalMs }),
    ...(probeTimeoutMs === undefined ? {} : { timeoutMs: probeTimeoutMs }),
  };
  return Object.freeze({
    ...(publicUrl === undefined ? {} : { publicUrl }),
    ...(allowedHosts === undefined ? {} : { allowedHosts }),
    ...(allowedOrigins === undefined ? {} : { allowedOrigins }),
    rateLimit,
    ...(redisUrl === undefined ? {} : { redisUrl }),
    ...(listPageSize === undefined ? {} : { listPageSize }),
    ...(Object.keys(managedProbe).length === 0 ? {} : { managedProbe }),
    ...(streamResumeGraceMs === undefined ? {} : { streamResumeGraceMs }),
    ...(streamPrimeAfterMs === undefined ? {} : { streamPrimeAfterMs }),
  });
}

/**
 * Reads the data-plane variables once. With `standalone` (the `data-plane` command) the
 * control-plane URL, the token and the session secret are required; in one-process mode
 * the composition root supplies them. Throws {@link DataPlaneConfigError} naming the variable.
 */
export function loadDataPlaneEnvironment(
  env: Readonly<Record<string, string | undefined>>,
  { standalone }: { standalone: boolean },
): DataPlaneEnvironment {
  const value = (name: string) => (env[name] === '' ? undefined : env[name]);
  const portText = value('GATEHOUSE_DATA_PLANE_PORT');
  const port = portText === undefined ? 4001 : Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new DataPlaneConfigError('GATEHOUSE_DATA_PLANE_PORT', `expected an integer from 0 to 65535, got "${portText}"`);
  }
  const sessionSecret = value('GATEHOUSE_SESSION_SECRET');
  if (sessionSecret !== undefined && sessionSecret.length < 32) {
    throw new DataPlaneConfigError('GATEHOUSE_SESSION_SECRET', 'must be at least 32 characters (e.g. $(openssl rand -hex 32))');
  }
  const controlPlaneUrl = value('GATEHOUSE_CONTROL_PLANE_URL');
  if (controlPlaneUrl !== undefined && !/^(https?|wss?):\/\//.test(controlPlaneUrl)) {
    throw new DataPlaneConfigError('GATEHOUSE_CONTROL_PLANE_URL', `expected an http(s) URL such as http://control-plane:4000, got "${controlPlaneUrl}"`);
  }
  if (controlPlaneUrl !== undefined && !URL.canParse(controlPlaneUrl)) {
    throw new DataPlaneConfigError('GATEHOUSE_CONTROL_PLANE_URL', `not a URL: "${controlPlaneUrl}"`);
  }
  const token = value('GATEHOUSE_DATA_PLANE_TOKEN');
  if (token !== undefined && !/^gh_dp_[A-Za-z0-9_-]{20,200}$/.test(token)) {
    throw new DataPlaneConfigError('GATEHOUSE_DATA_PLANE_TOKEN', 'expected a data-plane token gh_dp_…, as registerDataPlane shows it once');
  }
  if (standalone) {
    if (controlPlaneUrl === undefined) throw new DataPlaneConfigError('GATEHOUSE_CONTROL_PLANE_URL', 'required: the control plane to receive snapshots from (or --control-plane)');
    if (token === undefined) throw new DataPlaneConfigError('GATEHOUSE_DATA_PLANE_TOKEN', 'required: the data-plane token (or --token); register one with the registerDataPlane mutation');
    if (sessionSecret === undefined) {
      throw new DataPlaneConfigError('GATEHOUSE_SESSION_SECRET', 'required for a separate data plane; give every replica the same one (e.g. $(openssl rand -hex 32))');
    }
  }
  const options = loadOpsOptions(value);
  const auditBufferText = value('GATEHOUSE_AUDIT_BUFFER_ENTRIES'); // [audit]
  const auditBufferEntries = auditBufferText === undefined ? undefined : Number(auditBufferText);
  if (auditBufferEntries !== undefined && (!Number.isInteger(auditBufferEntries) || auditBufferEntries < 100)) {
    throw new DataPlaneConfigError('GATEHOUSE_AUDIT_BUFFER_ENTRIES', `expected an integer of at least 100, got "${auditBufferText}"`);
  }
  const auditBuildOn = value('GATEHOUSE_AUDIT_BUILD_ON') ?? 'event-loop'; // [audit]
  if (auditBuildOn !== 'event-loop' && auditBuildOn !== 'worker') {
    throw new DataPlaneConfigError('GATEHOUSE_AUDIT_BUILD_ON', `expected "event-loop" or "worker", got "${auditBuildOn}"`);
  }
  return Object.freeze({ host: value('GATEHOUSE_DATA_PLANE_HOST') ?? '127.0.0.1', port, sessionSecret, controlPlaneUrl, token, options, auditBufferEntries, auditBuildOn });
}
