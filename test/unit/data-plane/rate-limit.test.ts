import { describe, expect, it } from 'vitest';
import { resolveDataPlaneConfig } from '../../../data-plane/config.js';
import { MemoryBucketStore, RateLimiter, clientIp, takeFromBucket, type BucketState } from '../../../data-plane/policy/rate-limit.js';
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

  it('shows IPv4-mapped addresses as IPv4', () => {
    expect(clientIp('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(clientIp('::1')).toBe('::1');
    expect(clientIp(undefined)).toBe('unknown');
  });

  it('takes the client IP from X-Forwarded-For only as far as trusted proxies reach', () => {
    const forged = '6.6.6.6, 203.0.113.7, 10.0.0.2';
    expect(clientIp('10.0.0.1', forged)).toBe('10.0.0.1');
    expect(clientIp('10.0.0.1', forged, 1)).toBe('10.0.0.2');
    expect(clientIp('10.0.0.1', forged, 2)).toBe('203.0.113.7');
    expect(clientIp('10.0.0.1', ['203.0.113.7', '10.0.0.2'], 2)).toBe('203.0.113.7');
    expect(clientIp('10.0.0.1', '10.0.0.2', 3)).toBe('10.0.0.1');
    expect(clientIp('10.0.0.1', undefined, 1)).toBe('10.0.0.1');
  });
});

describe('rate-limit and origin options', () => {
  const base = { sessionSecret: 'x'.repeat(32) };
  it('defaults to 1200/min per IP, 600/min per token, loopback hosts plus the public URL host', () => {
    const config = resolveDataPlaneConfig({ ...base, publicUrl: 'https://mcp.example.com' });
    expect(config.rateLimit).toEqual({ perIp: { capacity: 1200, refillPerSecond: 20 }, perToken: { capacity: 600, refillPerSecond: 10 }, keyPrefix: 'gatehouse:rl:', trustedProxyHops: 0 });
    expect(config.allowedHosts).toEqual(['localhost', '127.0.0.1', '::1', 'mcp.example.com']);
    expect(config.allowedOrigins).toContain('https://mcp.example.com');
    expect(config.allowedOrigins).toContain('http://localhost:*');
  });
  it('names the wrong option', () => {
    expect(() => resolveDataPlaneConfig({ ...base, rateLimit: { perToken: { refillPerSecond: 0 } } })).toThrow('"rateLimit.perToken.refillPerSecond"');
    expect(() => resolveDataPlaneConfig({ ...base, rateLimit: { perIp: { capacity: -1 } } })).toThrow('"rateLimit.perIp.capacity"');
    expect(() => resolveDataPlaneConfig({ ...base, allowedHosts: ['http://x'] })).toThrow('"allowedHosts"');
    expect(() => resolveDataPlaneConfig({ ...base, allowedOrigins: ['app.example.com'] })).toThrow('"allowedOrigins"');
    expect(() => resolveDataPlaneConfig({ ...base, redisUrl: 'http://x' })).toThrow('"redisUrl"');
    expect(() => resolveDataPlaneConfig({ ...base, rateLimit: { trustedProxyHops: -1 } })).toThrow('"rateLimit.trustedProxyHops"');
    expect(() => resolveDataPlaneConfig({ ...base, publicUrl: 'nope' })).toThrow('"publicUrl"');
  });
});
