import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDataPlane, type DataPlane } from '../../../data-plane/app.js';
import { RedisBucketStore } from '../../../data-plane/policy/rate-limit-redis.js';
import { silentLogger } from '../../../data-plane/logger.js';
import { InMemorySnapshotSource } from '../../../data-plane/snapshot/snapshot-source.js';
import { freePort } from '../../fixtures/mcp/spawn.js';
import { TOKENS, fixtureSnapshot } from '../../unit/data-plane/fixtures.js';

const SECRET = 'rate-limit-session-secret-0123456789abcdef';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const INITIALIZE = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
});

const snapshots = new InMemorySnapshotSource();
const planes: DataPlane[] = [];

beforeAll(() => {
  snapshots.offer(fixtureSnapshot());
});

afterAll(async () => {
  for (const plane of planes) await plane.close();
});

async function start(config: Parameters<typeof buildDataPlane>[0], deps: Partial<Parameters<typeof buildDataPlane>[1]> = {}): Promise<string> {
  const plane = buildDataPlane(config, { snapshots, ...deps });
  planes.push(plane);
  return (await plane.listen()).url;
}

function initialize(url: string, token: string | null = TOKENS.eng): Promise<Response> {
  return fetch(`${url}/mcp/eng`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: INITIALIZE,
  });
}

describe('rate limits', () => {
  it('shares one token bucket between two data planes through Redis; over the limit is 429 with Retry-After', async () => {
    const keyPrefix = `gatehouse-test:${randomUUID()}:`;
    const config = {
      port: 0,
      sessionSecret: SECRET,
      redisUrl: REDIS_URL,
      rateLimit: { perToken: { capacity: 6, refillPerSecond: 0.01 }, keyPrefix },
    };
    const stores = [new RedisBucketStore({ url: REDIS_URL, logger: silentLogger() }), new RedisBucketStore({ url: REDIS_URL, logger: silentLogger() })];
    await Promise.all(stores.map((store) => store.ready(5_000)));
    const a = await start(config, { bucketStore: stores[0] });
    const b = await start(config, { bucketStore: stores[1] });

    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await initialize(i % 2 === 0 ? a : b)).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200]);
    expect(stores.every((store) => store.shared)).toBe(true);

    // The bucket is shared: the 7th call is refused whichever replica gets it.
    for (const url of [a, b]) {
      const refused = await initialize(url);
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      const body = (await refused.json()) as { jsonrpc: string; error: { code: number; message: string; data: { code: string; scope: string } } };
      expect(body).toMatchObject({ jsonrpc: '2.0', error: { code: -32055, data: { code: 'RATE_LIMITED', scope: 'token' } } });
      expect(body.error.message).toContain('rate limit exceeded for this access token');
    }
    // Another token has its own bucket.
    expect((await initialize(a, TOKENS.machine)).status).toBe(200);
  });

  it('limits per client IP before authentication', async () => {
    const url = await start({ port: 0, sessionSecret: SECRET, rateLimit: { perIp: { capacity: 3, refillPerSecond: 0.01 } } });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await initialize(url, null)).status);
    // Anonymous calls get 401 while the IP has budget, then 429 without reaching authentication.
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
    const refused = await initialize(url);
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as { error: { data: { scope: string } } }).error.data.scope).toBe('ip');
  });

  it('keys the IP bucket on X-Forwarded-For behind a trusted proxy', async () => {
    const url = await start({ port: 0, sessionSecret: SECRET, rateLimit: { perIp: { capacity: 1, refillPerSecond: 0.01 }, trustedProxyHops: 1 } });
    const from = (ip: string) =>
      fetch(`${url}/mcp/eng`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json', 'x-forwarded-for': ip }, body: INITIALIZE });
    expect((await from('198.51.100.1')).status).toBe(401);
    expect((await from('198.51.100.1')).status).toBe(429);
    expect((await from('198.51.100.2')).status).toBe(401);
  });

  it('keys the IP bucket on RFC 7239 Forwarded when the proxies write it, and by /64 for IPv6 clients', async () => {
    const url = await start({ port: 0, sessionSecret: SECRET, rateLimit: { perIp: { capacity: 1, refillPerSecond: 0.01 }, trustedProxyHops: 1, forwardedHeader: 'forwarded' } });
    const from = (forwarded: string, xff = '198.51.100.99') =>
      fetch(`${url}/mcp/eng`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json', forwarded, 'x-forwarded-for': xff }, body: INITIALIZE });
    expect((await from('for="[2001:db8:1:2::1]:5555";proto=https')).status).toBe(401);
    // Another address in the same /64, and a forged X-Forwarded-For: still the same bucket.
    expect((await from('for="[2001:db8:1:2::beef]"', '203.0.113.50')).status).toBe(429);
    expect((await from('for="[2001:db8:1:3::1]"')).status).toBe(401);
    expect((await from('for=198.51.100.1')).status).toBe(401);
  });

  it('fails open to per-replica buckets when Redis is unreachable, and keeps limiting', async () => {
    const deadRedis = `redis://127.0.0.1:${await freePort()}`;
    const url = await start({ port: 0, sessionSecret: SECRET, redisUrl: deadRedis, rateLimit: { perToken: { capacity: 2, refillPerSecond: 0.01 } } });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await initialize(url)).status);
    expect(statuses).toEqual([200, 200, 429]);
  });
});
