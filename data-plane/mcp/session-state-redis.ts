import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';
import type { DataPlaneLogger } from '../logger.js';
import type { SharedSessionEndings } from './session-id.js';
import { isLogLevel, type LogLevel, type SharedSessionLogLevels } from './session-log-levels.js';
import { readForwardedMessage, type ForwardedSessionMessage, type SharedSessionForwards } from './session-forwards.js';
import type { SessionEvent, SharedSessionEvents } from './session-streams.js';

export interface RedisSessionStateOptions {
  readonly url: string;
  readonly logger: DataPlaneLogger;
  /** Prefix of the keys and the channel. Default `gatehouse:`. */
  readonly keyPrefix?: string;
  /** A Redis command slower than this counts as failed. Default 500 ms. */
  readonly commandTimeoutMs?: number;
}

/** One kind of session state shared through Redis: its keys and its channel. */
interface Kind {
  /** Key prefix (`<prefix>session-ended:`); the session tag follows. */
  readonly keyPrefix: string;
  readonly channel: string;
}

/**
 * What replicas learn about sessions from each other through Redis: sessions ended with
 * DELETE, the log level a session set with `logging/setLevel`, and client messages about
 * a call another replica holds (`session-forwards.ts`: `PUBLISH <prefix>session-forward`
 * of the message as JSON; nothing stored, a message no replica holds a call for is dropped).
 *
 * A session's GET-stream events are a list, `RPUSH <prefix>session-events:<tag>` of
 * `[id, data]`, trimmed to the newest 256 and expiring 10 minutes after the last one (or
 * with the session), read with `LRANGE` when a stream opens: a client reconnecting through
 * any replica gets what it missed (`session-streams.ts`); `DEL` when the session ends.
 *
 * An ending is `SET <prefix>session-ended:<tag> 1 PX <until the id expires anyway>` and
 * `PUBLISH <prefix>session-ended "<tag> <expiresAt>"`, in one MULTI; a level is
 * `SET <prefix>session-log-level:<tag> <level> PX …` and `PUBLISH <prefix>session-log-level
 * "<tag> <expiresAt> <level>"`. Every replica subscribes and adds what arrives to its
 * local maps, so the per-message checks stay map lookups (no Redis round trip on the hot
 * path); after each (re)connection of its subscriber it SCANs the keys to learn what it
 * missed while away. One pair of connections per replica carries both.
 *
 * Decision: when Redis is unreachable an ending stays local to the replica that got the
 * DELETE (logged once per outage) rather than failing the DELETE. Ending a session is
 * the client's housekeeping, not an access control: the session id stays bound to its
 * access token (revocation is enforced on every message from the snapshot) and expires
 * at the session max age regardless.
 */
export class RedisSessionState implements SharedSessionEndings, SharedSessionLogLevels, SharedSessionForwards, SharedSessionEvents {
  private readonly commands: Redis;
  private readonly subscriber: Redis;
  private readonly ended: Kind;
  private readonly levels: Kind;
  private onEnded: ((tag: string, expiresAt: number) => void) | undefined;
  private onLevel: ((tag: string, level: LogLevel, expiresAt: number) => void) | undefined;
  private onForward: ((message: ForwardedSessionMessage) => void) | undefined;
  private readonly forwardChannel: string;
  private readonly eventsPrefix: string;
  private degraded = false;
  private closed = false;

  constructor(private readonly options: RedisSessionStateOptions) {
    const { Redis: RedisClient } = createRequire(import.meta.url)('ioredis') as typeof import('ioredis');
    const common = { connectTimeout: 2_000, retryStrategy: (times: number) => Math.min(times * 200, 5_000) };
    const prefix = options.keyPrefix ?? 'gatehouse:';
    this.ended = { keyPrefix: `${prefix}session-ended:`, channel: `${prefix}session-ended` };
    this.levels = { keyPrefix: `${prefix}session-log-level:`, channel: `${prefix}session-log-level` };
    this.forwardChannel = `${prefix}session-forward`;
    this.eventsPrefix = `${prefix}session-events:`;
    this.commands = new RedisClient(options.url, { ...common, enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: options.commandTimeoutMs ?? 500 });
    this.subscriber = new RedisClient(options.url, { ...common, autoResubscribe: true });
    // Without listeners ioredis prints "Unhandled error event" on every failed reconnect.
    this.commands.on('error', (error: Error) => this.markDegraded(error));
    this.subscriber.on('error', (error: Error) => this.markDegraded(error));
    this.subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.forwardChannel) {
        const forwarded = readForwardedMessage(message);
        if (forwarded) this.onForward?.(forwarded);
        return;
      }
      const [tag, expiresAt, level] = message.split(' ');
      const until = Number(expiresAt);
      if (!tag || !Number.isFinite(until)) return;
      if (channel === this.ended.channel) this.onEnded?.(tag, until);
      else if (channel === this.levels.channel && isLogLevel(level)) this.onLevel?.(tag, level, until);
    });
    this.subscriber.on('ready', () => void this.catchUp());
  }

  subscribe(onEnded: (tag: string, expiresAt: number) => void): void {
    this.onEnded = onEnded;
    this.subscriber.subscribe(this.ended.channel).catch((error: unknown) => this.markDegraded(error));
  }

  async publish(tag: string, expiresAt: number): Promise<void> {
    await this.#publish(this.ended, tag, '1', expiresAt, `${tag} ${expiresAt}`);
  }

  subscribeLogLevels(onSet: (tag: string, level: LogLevel, expiresAt: number) => void): void {
    this.onLevel = onSet;
    this.subscriber.subscribe(this.levels.channel).catch((error: unknown) => this.markDegraded(error));
  }

  async publishLogLevel(tag: string, level: LogLevel, expiresAt: number): Promise<void> {
    await this.#publish(this.levels, tag, level, expiresAt, `${tag} ${expiresAt} ${level}`);
  }

  subscribeForwards(onMessage: (message: ForwardedSessionMessage) => void): void {
    this.onForward = onMessage;
    this.subscriber.subscribe(this.forwardChannel).catch((error: unknown) => this.markDegraded(error));
  }

  async publishForward(message: ForwardedSessionMessage): Promise<void> {
    try {
      await this.commands.publish(this.forwardChannel, JSON.stringify(message));
      if (this.degraded) this.recovered();
    } catch (error) {
      this.markDegraded(error);
    }
  }

  async recordEvent(tag: string, event: SessionEvent, max: number, keepMs: number): Promise<void> {
    const key = `${this.eventsPrefix}${tag}`;
    try {
      await this.commands.multi().rpush(key, JSON.stringify([event.id, event.data])).ltrim(key, -max, -1).pexpire(key, Math.ceil(keepMs)).exec();
      if (this.degraded) this.recovered();
    } catch (error) {
      this.markDegraded(error);
    }
  }

  async readEvents(tag: string): Promise<SessionEvent[] | undefined> {
    let items: string[];
    try {
      items = await this.commands.lrange(`${this.eventsPrefix}${tag}`, 0, -1);
      if (this.degraded) this.recovered();
    } catch (error) {
      this.markDegraded(error);
      return undefined;
    }
    const events: SessionEvent[] = [];
    for (const item of items) {
      try {
        const [id, data] = JSON.parse(item) as unknown[];
        if (typeof id === 'string' && typeof data === 'string') events.push({ id, data });
      } catch {
        // Not written by a replica: skipped.
      }
    }
    return events;
  }

  async forgetEvents(tag: string): Promise<void> {
    try {
      await this.commands.del(`${this.eventsPrefix}${tag}`);
    } catch (error) {
      this.markDegraded(error);
    }
  }

  async #publish(kind: Kind, tag: string, value: string, expiresAt: number, message: string): Promise<void> {
    const remaining = expiresAt - Date.now();
    if (remaining <= 0) return;
    try {
      await this.commands.multi().set(`${kind.keyPrefix}${tag}`, value, 'PX', remaining).publish(kind.channel, message).exec();
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

  /** Learns the endings and levels set while this replica's subscriber was away. */
  private async catchUp(): Promise<void> {
    if (this.closed) return;
    try {
      if (this.commands.status !== 'ready') await new Promise<void>((resolve) => this.commands.once('ready', () => resolve()));
      if (this.onEnded) await this.#scan(this.ended, (tag, until) => this.onEnded?.(tag, until));
      if (this.onLevel) await this.#scan(this.levels, (tag, until, level) => isLogLevel(level) && this.onLevel?.(tag, level, until));
      if (this.degraded) this.recovered();
    } catch (error) {
      this.markDegraded(error);
    }
  }

  /** Every live key of a kind: its tag, when it expires and its value. */
  async #scan(kind: Kind, found: (tag: string, expiresAt: number, value: string | null) => void): Promise<void> {
    let cursor = '0';
    do {
      const [next, keys] = await this.commands.scan(cursor, 'MATCH', `${kind.keyPrefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length === 0) continue;
      const pipeline = this.commands.pipeline();
      for (const key of keys) pipeline.pttl(key).get(key);
      const replies = (await pipeline.exec()) ?? [];
      const now = Date.now();
      keys.forEach((key, i) => {
        const ttl = replies[2 * i]?.[1];
        const value = replies[2 * i + 1]?.[1];
        if (typeof ttl === 'number' && ttl > 0) found(key.slice(kind.keyPrefix.length), now + ttl, typeof value === 'string' ? value : null);
      });
    } while (cursor !== '0');
  }

  private markDegraded(error: unknown): void {
    if (this.degraded || this.closed) return;
    this.degraded = true;
    this.options.logger.warn({ err: error }, 'Redis is unreachable: sessions ended with DELETE, log levels sessions set, cancellations and answers for calls on other replicas, and call and GET streams resumed through another replica apply only on the replica that got them until it returns');
  }

  private recovered(): void {
    this.degraded = false;
    this.options.logger.info('Redis is reachable again; session endings, log levels and forwarded client messages are shared across replicas again');
  }
}
