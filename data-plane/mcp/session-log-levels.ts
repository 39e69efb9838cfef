import { flat, sessionTag } from './session-id.js';

/** MCP log levels (RFC 5424 severities), least severe first. */
export const LOG_LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const RANK: ReadonlyMap<string, number> = new Map(LOG_LEVELS.map((level, rank) => [level, rank]));

export function isLogLevel(value: unknown): value is LogLevel {
  return typeof value === 'string' && RANK.has(value);
}

/** The severity rank of a level (debug 0 … emergency 7); undefined for anything else. */
export function logLevelRank(level: unknown): number | undefined {
  return typeof level === 'string' ? RANK.get(level) : undefined;
}

/** How log levels reach every replica (Redis: `session-state-redis.ts`), named by session tag like endings. */
export interface SharedSessionLogLevels {
  /** Tells every replica; never throws (a failure is logged, and the level stays local). */
  publishLogLevel(tag: string, level: LogLevel, expiresAt: number): Promise<void>;
  /** Starts delivering levels set on other replicas (and those set while this one was away). */
  subscribeLogLevels(onSet: (tag: string, level: LogLevel, expiresAt: number) => void): void;
}

/**
 * The level each session asked for with `logging/setLevel`. Upstream sessions are shared
 * by every client session of an assignment, so the level is not forwarded upstream: the
 * gateway drops relayed `notifications/message` below it instead (MCP: servers should only
 * send messages at or above the level set). A session that never set one gets every
 * message, as before. The check is a map lookup per relayed call; with `shared` (Redis), a
 * level set on one replica is pushed to every other, as session endings are.
 */
export class SessionLogLevels {
  /** Session tag → minimum rank and when the id expires anyway (insertion order: oldest first). */
  private readonly levels = new Map<string, { readonly rank: number; readonly until: number }>();

  constructor(
    private readonly maxAgeMs: number,
    private readonly shared?: SharedSessionLogLevels,
    /** Sessions remembered at most; past it the oldest forget their level (and get every message again). */
    private readonly capacity = 100_000,
  ) {
    shared?.subscribeLogLevels((tag, level, expiresAt) => this.remember(flat(tag), RANK.get(level)!, expiresAt));
  }

  /** Sets the session's level here at once and, when shared, on every replica. */
  async set(sessionId: string, issuedAt: number, level: LogLevel): Promise<void> {
    const tag = flat(sessionTag(sessionId));
    const expiresAt = issuedAt + this.maxAgeMs;
    this.remember(tag, RANK.get(level)!, expiresAt);
    await this.shared?.publishLogLevel(tag, level, expiresAt);
  }

  /** The least severe rank the session wants relayed; undefined when it set no level. */
  minimumRank(sessionId: string, now: number): number | undefined {
    if (this.levels.size === 0) return undefined;
    const tag = sessionTag(sessionId);
    const entry = this.levels.get(tag);
    if (entry === undefined) return undefined;
    if (entry.until < now) {
      this.levels.delete(tag);
      return undefined;
    }
    return entry.rank;
  }

  get size(): number {
    return this.levels.size;
  }

  private remember(tag: string, rank: number, until: number): void {
    this.levels.delete(tag); // a new level moves the session to the newest end
    this.levels.set(tag, { rank, until });
    while (this.levels.size > this.capacity) this.levels.delete(this.levels.keys().next().value!);
  }
}
