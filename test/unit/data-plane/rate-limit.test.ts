import { describe, expect, it } from 'vitest';
import { resolveDataPlaneConfig } from '../../../data-plane/config.js';
import { MemoryBucketStore, RateLimiter, takeFromBucket, type BucketState } from '../../../data-plane/policy/rate-limit.js';
import { clientIp, forwardedFor, rateLimitKey, type ClientAddressConfig } from '../../../data-plane/policy/client-address.js';
import { silentLogger } from '../../../data-plane/logger.js';

const limits = { capacity: 3, refillPerSecond: 2 };

describe('takeFromBucket', () => {
  it('allows a full burst, then refuses with the time until one call is back', () => {
    const state: BucketState = { tokens: 3, updatedAt: 0 };
    expect([1, 2, 3].map(() => takeFromBucket(state, limits, 0).allowed)).toEqual([true, true, true]);
    const refused = takeFromBucket(state, limits, 0);
    expect(refused).toEqual({ allowed: false, remaining: 0, retryAfterMs: 500 });
    expect(takeFromBucket(state, limits, 250)).toMatchObject({ allowed: false, retryAfterMs: 250 });
    expect(takeFromBucket(state, limits, 500)).toMatchObject({ allowed: true });
  });

  it('refills by elapsed time up to capacity, never beyond, and ignores a clock going back', () => {
    const state: BucketState = { tokens: 0, updatedAt: 1_000 };
    expect(takeFromBucket(state, limits, 1_000_000).remaining).toBe(2);
    const before = { ...state };
    takeFromBucket(state, limits, 0);
    expect(state.updatedAt).toBe(before.updatedAt);
    expect(state.tokens).toBe(before.tokens - 1);
  });
});

describe('MemoryBucketStore', () => {
  it('keeps one bucket per key', async () => {
    const store = new MemoryBucketStore();
    for (let i = 0; i < 3; i++) expect((await store.take('a', limits, 0)).allowed).toBe(true);
    expect((await store.take('a', limits, 0)).allowed).toBe(false);
    expect((await store.take('b', limits, 0)).allowed).toBe(true);
  });

  it('sweeps refilled buckets so distinct keys cannot grow memory without bound', () => {
    const store = new MemoryBucketStore(100);
    for (let i = 0; i < 100; i++) store.takeSync(`ip-${i}`, limits, 0);
    expect(store.size).toBe(100);
    store.takeSync('late', limits, 10_000); // all earlier buckets are full again by now
    expect(store.size).toBe(1);
    for (let i = 0; i < 250; i++) store.takeSync(`burst-${i}`, limits, 10_000); // none refilled: the oldest half goes
    expect(store.size).toBeLessThanOrEqual(100);
  });
});

describe('RateLimiter', () => {
  const config = (perIp: number, perToken: number) =>
    resolveDataPlaneConfig({ sessionSecret: 'x'.repeat(32), rateLimit: { perIp: { capacity: perIp, refillPerSecond: 1 }, perToken: { capacity: perToken, refillPerSecond: 1 } } }).rateLimit;

  it('limits IPs and tokens separately, reports refusals, and capacity 0 turns a bucket off', async () => {
    const refused: string[] = [];
    const limiter = new RateLimiter({ config: config(2, 0), store: new MemoryBucketStore(), logger: silentLogger(), onRefused: (scope) => refused.push(scope) });
    expect(await limiter.checkIp('10.0.0.1', 0)).toBeUndefined();
    expect(await limiter.checkIp('10.0.0.1', 0)).toBeUndefined();
    expect(await limiter.checkIp('10.0.0.1', 0)).toMatchObject({ scope: 'ip', retryAfterMs: 1000 });
    expect(await limiter.checkIp('10.0.0.2', 0)).toBeUndefined();
    for (let i = 0; i < 10; i++) expect(await limiter.checkToken('tok', 0)).toBeUndefined();
    expect(refused).toEqual(['ip']);
  });

  it('limits an IPv6 client by its /64: rotating addresses inside it gets no fresh budget', async () => {
    const limiter = new RateLimiter({ config: config(2, 0), store: new MemoryBucketStore(), logger: silentLogger() });
    expect(await limiter.checkIp('2001:db8:1:2::1', 0)).toBeUndefined();
    expect(await limiter.checkIp('2001:db8:1:2:ffff:0:0:9', 0)).toBeUndefined();
    expect(await limiter.checkIp('2001:db8:1:2::abcd', 0)).toMatchObject({ scope: 'ip' });
    expect(await limiter.checkIp('2001:db8:1:3::1', 0)).toBeUndefined(); // the next /64 is someone else
    const perAddress = new RateLimiter({ config: { ...config(1, 0), ipv6PrefixLength: 128 }, store: new MemoryBucketStore(), logger: silentLogger() });
    expect(await perAddress.checkIp('2001:db8:1:2::1', 0)).toBeUndefined();
    expect(await perAddress.checkIp('2001:db8:1:2::2', 0)).toBeUndefined();
  });
});

describe('client address', () => {
  const xff = (hops: number): ClientAddressConfig => ({ trustedProxyHops: hops, forwardedHeader: 'x-forwarded-for' });
  const fwd = (hops: number): ClientAddressConfig => ({ trustedProxyHops: hops, forwardedHeader: 'forwarded' });

  it('shows IPv4-mapped addresses as IPv4 and drops ports, brackets and zones', () => {
    expect(clientIp('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(clientIp('::1')).toBe('::1');
    expect(clientIp(undefined)).toBe('unknown');
    expect(clientIp('10.0.0.1', { 'x-forwarded-for': '203.0.113.7:51234' }, xff(1))).toBe('203.0.113.7');
    expect(clientIp('10.0.0.1', { 'x-forwarded-for': '[2001:db8::7]:443' }, xff(1))).toBe('2001:db8::7');
    expect(clientIp('fe80::1%eth0')).toBe('fe80::1');
  });

  it('takes the client IP from X-Forwarded-For only as far as trusted proxies reach', () => {
    const forged = { 'x-forwarded-for': '6.6.6.6, 203.0.113.7, 10.0.0.2' };
    expect(clientIp('10.0.0.1', forged)).toBe('10.0.0.1');
    expect(clientIp('10.0.0.1', forged, xff(1))).toBe('10.0.0.2');
    expect(clientIp('10.0.0.1', forged, xff(2))).toBe('203.0.113.7');
    expect(clientIp('10.0.0.1', { 'x-forwarded-for': ['203.0.113.7', '10.0.0.2'] }, xff(2))).toBe('203.0.113.7');
    expect(clientIp('10.0.0.1', { 'x-forwarded-for': '10.0.0.2' }, xff(3))).toBe('10.0.0.1');
    expect(clientIp('10.0.0.1', {}, xff(1))).toBe('10.0.0.1');
  });

  it('reads RFC 7239 Forwarded when configured, and only the header configured', () => {
    const headers = { forwarded: 'for=6.6.6.6, for="[2001:db8:cafe::17]:4711";proto=https;by=10.0.0.9, For=198.51.100.4', 'x-forwarded-for': '7.7.7.7' };
    expect(clientIp('10.0.0.1', headers, fwd(1))).toBe('198.51.100.4');
    expect(clientIp('10.0.0.1', headers, fwd(2))).toBe('2001:db8:cafe::17');
    // A client's own X-Forwarded-For is not read when the proxies write Forwarded, and the reverse.
    expect(clientIp('10.0.0.1', { 'x-forwarded-for': '7.7.7.7' }, fwd(1))).toBe('10.0.0.1');
    expect(clientIp('10.0.0.1', { forwarded: 'for=7.7.7.7' }, xff(1))).toBe('10.0.0.1');
    // An obfuscated identifier is what the proxy knows of the client: kept as written.
    expect(clientIp('10.0.0.1', { forwarded: 'for=_hidden7' }, fwd(1))).toBe('_hidden7');
  });

  it('parses Forwarded elements with quoted commas, escapes and elements without for', () => {
    expect(forwardedFor('for="a,b\\"c";proto=http, proto=https, for=192.0.2.1')).toEqual(['a,b"c', '', '192.0.2.1']);
    expect(forwardedFor('')).toEqual([]);
  });

  it('keys IPv6 buckets by network and leaves IPv4 and non-addresses alone', () => {
    expect(rateLimitKey('2001:db8:1:2:3:4:5:6', 64)).toBe('2001:db8:1:2:0:0:0:0/64');
    expect(rateLimitKey('2001:db8:1:2::9', 64)).toBe('2001:db8:1:2:0:0:0:0/64');
    expect(rateLimitKey('2001:db8:1:2ff::9', 56)).toBe('2001:db8:1:200:0:0:0:0/56');
    expect(rateLimitKey('2001:db8::1.2.3.4', 64)).toBe('2001:db8:0:0:0:0:0:0/64');
    expect(rateLimitKey('2001:db8::1', 128)).toBe('2001:db8::1');
    expect(rateLimitKey('203.0.113.7', 64)).toBe('203.0.113.7');
    expect(rateLimitKey('_hidden7', 64)).toBe('_hidden7');
  });
});

describe('rate-limit and origin options', () => {
  const base = { sessionSecret: 'x'.repeat(32) };
  it('defaults to 1200/min per IP, 600/min per token, loopback hosts plus the public URL host', () => {
    const config = resolveDataPlaneConfig({ ...base, publicUrl: 'https://mcp.example.com' });
    expect(config.rateLimit).toEqual({ perIp: { capacity: 1200, refillPerSecond: 20 }, perToken: { capacity: 600, refillPerSecond: 10 }, keyPrefix: 'gatehouse:rl:', trustedProxyHops: 0, forwardedHeader: 'x-forwarded-for', ipv6PrefixLength: 64 });
    expect(config.allowedHosts).toEqual(['localhost', '127.0.0.1', '::1', 'mcp.example.com']);
    expect(config.allowedOrigins).toContain('https://mcp.example.com');
    expect(config.allowedOrigins).toContain('http://localhost:*');
    expect(config.managedProbe).toEqual({ intervalMs: 30_000, timeoutMs: 5_000, failures: 2 });
    expect(Object.isFrozen(config.managedProbe)).toBe(true);
    expect(resolveDataPlaneConfig({ ...base, managedProbe: { intervalMs: 0 } }).managedProbe).toEqual({ intervalMs: 0, timeoutMs: 5_000, failures: 2 });
  });
  it('names the wrong option', () => {
    expect(() => resolveDataPlaneConfig({ ...base, rateLimit: { perToken: { refillPerSecond: 0 } } })).toThrow('"rateLimit.perToken.refillPerSecond"');
    expect(() => resolveDataPlaneConfig({ ...base, rateLimit: { perIp: { capacity: -1 } } })).toThrow('"rateLimit.perIp.capacity"');
    expect(() => resolveDataPlaneConfig({ ...base, allowedHosts: ['http://x'] })).toThrow('"allowedHosts"');
    expect(() => resolveDataPlaneConfig({ ...base, allowedOrigins: ['app.example.com'] })).toThrow('"allowedOrigins"');
    expect(() => resolveDataPlaneConfig({ ...base, redisUrl: 'http://x' })).toThrow('"redisUrl"');
    expect(() => resolveDataPlaneConfig({ ...base, rateLimit: { trustedProxyHops: -1 } })).toThrow('"rateLimit.trustedProxyHops"');
    expect(() => resolveDataPlaneConfig({ ...base, rateLimit: { forwardedHeader: 'x-real-ip' as never } })).toThrow('"rateLimit.forwardedHeader"');
    expect(() => resolveDataPlaneConfig({ ...base, rateLimit: { ipv6PrefixLength: 129 } })).toThrow('"rateLimit.ipv6PrefixLength"');
    expect(() => resolveDataPlaneConfig({ ...base, publicUrl: 'nope' })).toThrow('"publicUrl"');
    expect(() => resolveDataPlaneConfig({ ...base, managedProbe: { intervalMs: -1 } })).toThrow('"managedProbe.intervalMs"');
    expect(() => resolveDataPlaneConfig({ ...base, managedProbe: { intervalMs: 1.5 } })).toThrow('"managedProbe.intervalMs"');
    expect(() => resolveDataPlaneConfig({ ...base, managedProbe: { timeoutMs: 0 } })).toThrow('"managedProbe.timeoutMs"');
    expect(() => resolveDataPlaneConfig({ ...base, managedProbe: { failures: 0 } })).toThrow('"managedProbe.failures"');
  });
});
