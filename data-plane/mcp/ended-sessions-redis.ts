import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';
import type { DataPlaneLogger } from '../logger.js';
import type { SharedSessionEndings } from './session-id.js';

export interface RedisSessionEndingsOptions {
  readonly url: string;
  readonly logger: DataPlaneLogger;
  /** Prefix of the keys and the channel. Default `gatehouse:`. */
  readonly keyPrefix?: string;
  /** A Redis command slower than this counts as failed. Default 500 ms. */
  readonly commandTimeoutMs?: number;
}

/**
 * Ended sessions shared by every replica through Redis.
 *
 * An ending is `SET <prefix>session-ended:<tag> 1 PX <until the id expires anyway>` and
 * `PUBLISH <prefix>session-ended "<tag> <expiresAt>"`, in one MULTI. Every replica
 * subscribes and adds what arrives to its local set, so the per-message check stays a
 * map lookup (no Redis round trip on the hot path); after each (re)connection of its
 * subscriber it SCANs the keys to learn the endings it missed while away.
 *
 * Decision: when Redis is unreachable an ending stays local to the replica that got the
 * DELETE (logged once per outage) rather than failing the DELETE. Ending a session is
 * the client's housekeeping, not an access control: the session id stays bound to its
 * access token (revocation is enforced on every message from the snapshot) and expires
 * at the session max age regardless.
 */
export class RedisSessionEndings implements SharedSessionEndings {
  private readonly commands: Redis;
  private readonly subscriber: Redis;
  private readonly keyPrefix: string;
  private readonly channel: string;
  private onEnded: ((tag: string, expiresAt: number) => void) | undefined;
  private degraded = false;
  private closed = false;

  constructor(private readonly options: RedisSessionEndingsOptions) {
    const { Redis: RedisClient } = createRequire(import.meta.url)('ioredis') as typeof import('ioredis');
    const common = { connectTimeout: 2_000, retryStrategy: (times: number) => Math.min(times * 200, 5_000) };
    this.keyPrefix = `${options.keyPrefix ?? 'gatehouse:'}session-ended:`;
    this.channel = `${options.keyPrefix ?? 'gatehouse:'}session-ended`;
    this.commands = new RedisClient(options.url, { ...common, enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: options.commandTimeoutMs ?? 500 });
    this.subscriber = new RedisClient(options.url, { ...common, autoResubscribe: true });
    // Without listeners ioredis prints "Unhandled error event" on every failed reconnect.
    this.commands.on('error', (error: Error) => this.markDegraded(error));
    this.subscriber.on('error', (error: Error) => this.markDegraded(error));
    this.subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return;
      const [tag, expiresAt] = message.split(' ');
      const until = Number(expiresAt);
      if (tag && Number.isFinite(until)) this.onEnded?.(tag, until);
    });
    this.subscriber.on('ready', () => void this.catchUp());
  }

  subscribe(onEnded: (tag: string, expiresAt: number) => void): void {
    this.onEnded = onEnded;
    this.subscriber.subscribe(this.channel).catch((error: unknown) => this.markDegraded(error));
  }

  async publish(tag: string, expiresAt: number): Promise<void> {
    const remaining = expiresAt - Date.now();
    if (remaining <= 0) return;
    try {
      await this.commands.multi().set(`${this.keyPrefix}${tag}`, '1', 'PX', remaining).publish(this.channel, `${tag} ${expiresAt}`).exec();
      if (this.degraded) this.recovered();
    } catch (error) {
      this.markDegraded(error);
    }
  }

  /** Resolves once both connections are up (or rejects after `ms`). */
  async ready(ms = 2_000): Promise<void> {
    const wait = (redis: Redis) =>
      redis.status === 'ready'
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`Redis not ready within ${ms} ms`)), ms);
            redis.once('ready', () => {
              clearTimeout(timer);
              resolve();
            });
          });
    await Promise.all([wait(this.commands), wait(this.subscriber)]);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.commands.disconnect();
    this.subscriber.disconnect();
  }

  /** Learns the endings made while this replica's subscriber was away. */
  private async catchUp(): Promise<void> {
    if (this.closed) return;
    try {
      if (this.commands.status !== 'ready') await new Promise<void>((resolve) => this.commands.once('ready', () => resolve()));
      let cursor = '0';
      do {
        const [next, keys] = await this.commands.scan(cursor, 'MATCH', `${this.keyPrefix}*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length === 0) continue;
        const pipeline = this.commands.pipeline();
        for (const key of keys) pipeline.pttl(key);
        const ttls = (await pipeline.exec()) ?? [];
        const now = Date.now();
        keys.forEach((key, i) => {
          const ttl = ttls[i]?.[1];
          if (typeof ttl === 'number' && ttl > 0) this.onEnded?.(key.slice(this.keyPrefix.length), now + ttl);
        });
      } while (cursor !== '0');
      if (this.degraded) this.recovered();
    } catch (error) {
      this.markDegraded(error);
    }
  }

  private markDegraded(error: unknown): void {
    if (this.degraded || this.closed) return;
    this.degraded = true;
    this.options.logger.warn({ err: error }, 'Redis is unreachable: sessions ended with DELETE end only on the replica that got the DELETE until it returns');
  }

  private recovered(): void {
    this.degraded = false;
    this.options.logger.info('Redis is reachable again; ended sessions are shared across replicas again');
  }
}
