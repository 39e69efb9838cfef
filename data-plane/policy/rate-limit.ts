import type { ServerResponse } from 'node:http';
import type { BucketConfig, RateLimitConfig } from '../config.js';
import type { DataPlaneLogger } from '../logger.js';
import { errorMessage } from '../mcp/json-rpc.js';
import { rateLimitKey } from './client-address.js';

/** JSON-RPC code of a rate-limit refusal, in Gatehouse's server range beside the other refusals. */
export const RATE_LIMITED_RPC_CODE = -32055;

/** What taking one call from a bucket answered. */
export interface BucketDecision {
  readonly allowed: boolean;
  /** Calls left in the bucket after this one (fractional). */
  readonly remaining: number;
  /** When refused: milliseconds until one call is available again. 0 when allowed. */
  readonly retryAfterMs: number;
}

/** The state of one bucket: tokens held at `updatedAt` (epoch ms). */
export interface BucketState {
  tokens: number;
  updatedAt: number;
}

/**
 * The token-bucket step, shared by the in-memory store and (in Lua) the Redis one:
 * refill by elapsed time up to capacity, then take `cost` if available. Mutates `state`.
 * A clock that goes backwards refills nothing.
 */
export function takeFromBucket(state: BucketState, limits: BucketConfig, now: number, cost = 1): BucketDecision {
  if (now > state.updatedAt) {
    state.tokens = Math.min(limits.capacity, state.tokens + ((now - state.updatedAt) * limits.refillPerSecond) / 1000);
    state.updatedAt = now;
  }
  if (state.tokens >= cost) {
    state.tokens -= cost;
    return { allowed: true, remaining: state.tokens, retryAfterMs: 0 };
  }
  return { allowed: false, remaining: state.tokens, retryAfterMs: Math.ceil(((cost - state.tokens) * 1000) / limits.refillPerSecond) };
}

/** Where buckets live: this process's memory, or Redis shared by every replica. */
export interface BucketStore {
  take(key: string, limits: BucketConfig, now: number): Promise<BucketDecision>;
  close(): Promise<void>;
}

/**
 * Buckets in this process. Idle buckets that have refilled to capacity carry no
 * information and are swept once the map grows past `maxKeys`, so a flood of distinct
 * IPs cannot grow memory without bound.
 */
export class MemoryBucketStore implements BucketStore {
  private readonly buckets = new Map<string, BucketState & { limits: BucketConfig }>();

  constructor(private readonly maxKeys = 50_000) {}

  takeSync(key: string, limits: BucketConfig, now: number): BucketDecision {
    let state = this.buckets.get(key);
    if (!state) {
      if (this.buckets.size >= this.maxKeys) this.sweep(now);
      state = { tokens: limits.capacity, updatedAt: now, limits };
      this.buckets.set(key, state);
    }
    state.limits = limits;
    return takeFromBucket(state, limits, now);
  }

  take(key: string, limits: BucketConfig, now: number): Promise<BucketDecision> {
    return Promise.resolve(this.takeSync(key, limits, now));
  }

  get size(): number {
    return this.buckets.size;
  }

  /** Drops buckets that are full again; if none are, the oldest half (they refill first). */
  sweep(now: number): void {
    for (const [key, state] of this.buckets) {
      const tokens = state.tokens + ((now - state.updatedAt) * state.limits.refillPerSecond) / 1000;
      if (tokens >= state.limits.capacity) this.buckets.delete(key);
    }
    if (this.buckets.size >= this.maxKeys) {
      let drop = Math.ceil(this.buckets.size / 2);
      for (const key of this.buckets.keys()) {
        if (drop-- <= 0) break;
        this.buckets.delete(key);
      }
    }
  }

  async close(): Promise<void> {
    this.buckets.clear();
  }
}

export type RateLimitScope = 'ip' | 'token';

export interface RateLimitRefusal {
  readonly scope: RateLimitScope;
  readonly retryAfterMs: number;
  readonly limits: BucketConfig;
}

export interface RateLimiterOptions {
  readonly config: RateLimitConfig;
  readonly store: BucketStore;
  readonly logger: DataPlaneLogger;
  /** Called on every refusal (metrics). */
  readonly onRefused?: (scope: RateLimitScope) => void;
}

/**
 * Pipeline stage 1: a token bucket per client IP (checked before authentication, so
 * anonymous floods are cut off before any hashing) and per access token (after it,
 * keyed by the token's id, so one token's budget is shared by all its sessions and, with
 * Redis, by all replicas). A capacity of 0 turns a bucket off.
 */
export class RateLimiter {
  constructor(private readonly options: RateLimiterOptions) {}

  /** undefined when allowed; otherwise what to answer. An IPv6 client is limited by its network (`ipv6PrefixLength`). */
  async checkIp(ip: string, now: number): Promise<RateLimitRefusal | undefined> {
    return this.check('ip', rateLimitKey(ip, this.options.config.ipv6PrefixLength), now);
  }

  async checkToken(tokenId: string, now: number): Promise<RateLimitRefusal | undefined> {
    return this.check('token', tokenId, now);
  }

  private async check(scope: RateLimitScope, id: string, now: number): Promise<RateLimitRefusal | undefined> {
    const limits = scope === 'ip' ? this.options.config.perIp : this.options.config.perToken;
    if (limits.capacity === 0) return undefined;
    const decision = await this.options.store.take(`${this.options.config.keyPrefix}${scope}:${id}`, limits, now);
    if (decision.allowed) return undefined;
    this.options.onRefused?.(scope);
    return { scope, retryAfterMs: decision.retryAfterMs, limits };
  }

  close(): Promise<void> {
    return this.options.store.close();
  }
}

/** 429 with `Retry-After` (whole seconds, at least 1) and a JSON-RPC error saying which limit and when to retry. */
export function sendRateLimited(res: ServerResponse, refusal: RateLimitRefusal): void {
  const seconds = Math.max(1, Math.ceil(refusal.retryAfterMs / 1000));
  const perMinute = Math.round(refusal.limits.refillPerSecond * 60);
  const who = refusal.scope === 'ip' ? 'this client address (IPv6: its network)' : 'this access token';
  const body = errorMessage(null, {
    code: RATE_LIMITED_RPC_CODE,
    message: `rate limit exceeded for ${who} (${perMinute} requests per minute, bursts of ${refusal.limits.capacity}); retry after ${seconds} s`,
    data: { code: 'RATE_LIMITED', scope: refusal.scope, retryAfterSeconds: seconds },
  });
  res.writeHead(429, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'retry-after': String(seconds) }).end(body);
}
