import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';
import type { BucketConfig } from '../config.js';
import type { DataPlaneLogger } from '../logger.js';
import { MemoryBucketStore, type BucketDecision, type BucketStore } from './rate-limit.js';

/**
 * The token-bucket step of `takeFromBucket`, atomically in Redis. The clock is Redis's
 * own (`TIME`), so replicas with skewed clocks share one consistent bucket. Returns
 * {allowed (0/1), retryAfterMs, remaining as a string (Lua numbers become integers)}.
 * The key expires once the bucket would be full again: an idle bucket costs nothing.
 */
const TAKE_SCRIPT = `
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
if now > ts then
  tokens = math.min(capacity, tokens + (now - ts) * rate / 1000)
  ts = now
end
local allowed = 0
local retry = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  retry = math.ceil((cost - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity * 1000 / rate) + 1000)
return {allowed, retry, tostring(tokens)}
`;

type TakeReply = [number, number, string];
type WithTake = Redis & { gatehouseTakeToken(key: string, capacity: number, rate: number, cost: number): Promise<TakeReply> };

export interface RedisBucketStoreOptions {
  readonly url: string;
  readonly logger: DataPlaneLogger;
  /** A Redis call slower than this counts as a failure. Default 250 ms. */
  readonly commandTimeoutMs?: number;
  /** Called when a take fell back to memory (metrics). */
  readonly onFallback?: () => void;
}

/**
 * Buckets shared by every replica through Redis.
 *
 * Decision: when Redis is unreachable or slow this store FAILS OPEN to a per-process
 * in-memory bucket (logged once per outage as a warning, and counted). Rate limiting
 * protects capacity; it is not an access control: authentication, kill switches and
 * authorization still run on every call. Refusing every MCP call because a cache is
 * down would turn a Redis outage into a full gateway outage, while the fallback still
 * caps each client per replica (at most N × the limit across N replicas) until Redis
 * returns. Commands are not queued while disconnected (`enableOfflineQueue: false`),
 * so the hot path never waits for a reconnect.
 */
export class RedisBucketStore implements BucketStore {
  private readonly redis: WithTake;
  private readonly fallback = new MemoryBucketStore();
  private degraded = false;

  constructor(private readonly options: RedisBucketStoreOptions) {
    // Loaded on first use: processes without REDIS_URL (and the CLI's other commands) never pay for it.
    const { Redis: RedisClient } = createRequire(import.meta.url)('ioredis') as typeof import('ioredis');
    const redis = new RedisClient(options.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.commandTimeoutMs ?? 250,
      connectTimeout: 2_000,
      retryStrategy: (times) => Math.min(times * 200, 5_000),
    });
    // Without a listener ioredis prints "Unhandled error event" on every failed reconnect.
    redis.on('error', (error: Error) => this.markDegraded(error));
    redis.on('ready', () => {
      if (this.degraded) options.logger.info('Redis is reachable again; rate limits are shared across replicas again');
      this.degraded = false;
    });
    redis.defineCommand('gatehouseTakeToken', { numberOfKeys: 1, lua: TAKE_SCRIPT });
    this.redis = redis as WithTake;
  }

  async take(key: string, limits: BucketConfig, now: number): Promise<BucketDecision> {
    try {
      const [allowed, retryAfterMs, remaining] = await this.redis.gatehouseTakeToken(key, limits.capacity, limits.refillPerSecond, 1);
      return { allowed: allowed === 1, retryAfterMs: Number(retryAfterMs), remaining: Number(remaining) };
    } catch (error) {
      this.markDegraded(error);
      this.options.onFallback?.();
      return this.fallback.takeSync(key, limits, now);
    }
  }

  private markDegraded(error: unknown): void {
    if (this.degraded) return;
    this.degraded = true;
    this.options.logger.warn(
      { err: error },
      'Redis is unreachable: rate limits fall back to this replica\'s memory (fail open to per-replica limits) until it returns',
    );
  }

  /** True when Redis answered the last attempt (for tests and readiness). */
  get shared(): boolean {
    return !this.degraded && this.redis.status === 'ready';
  }

  /** Resolves once connected (or rejects after `ms`); the store works before, falling back. */
  async ready(ms = 2_000): Promise<void> {
    if (this.redis.status === 'ready') return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Redis not ready within ${ms} ms`)), ms);
      this.redis.once('ready', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    await this.fallback.close();
    this.redis.disconnect();
  }
}
