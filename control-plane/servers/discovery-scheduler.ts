import type { Logger } from '../logger.js';
import type { DiscoverableServer, DiscoveryService } from './discovery.service.js';

export interface DiscoverySchedulerOptions {
  /** How old a server's last discovery may get before it is discovered again, in ms. Must be > 0. */
  readonly intervalMs: number;
  /** Discoveries run at once, across all workspaces. Default 2. */
  readonly concurrency?: number;
  /** How often to look for due servers, in ms. Default `min(intervalMs, 60000)`. */
  readonly tickMs?: number;
  /** Injectable clock. Default `() => new Date()`. */
  readonly now?: () => Date;
}

export interface DiscoveryTickResult {
  readonly discovered: number;
  readonly failed: number;
}

/**
 * Periodic feature discovery of every enabled server in every enabled workspace.
 *
 * Each tick discovers the servers whose last discovery is older than the interval (or that
 * were never discovered), a few at a time. Because "due" is read from the database, several
 * control-plane processes on one Postgres share the work instead of each discovering every
 * server; an occasional duplicate run is harmless (runs on one server are serialised by its
 * row lock). Timers are unref'd so they never keep a process alive; nothing here throws.
 */
export class DiscoveryScheduler {
  private readonly intervalMs: number;
  private readonly concurrency: number;
  private readonly tickMs: number;
  private readonly now: () => Date;
  private timer: NodeJS.Timeout | undefined;
  private current: Promise<DiscoveryTickResult> | undefined;
  private running = false;
  /** Set by stop(): workers take no further servers. */
  private halted = false;

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly logger: Logger,
    options: DiscoverySchedulerOptions,
  ) {
    if (!(options.intervalMs > 0)) throw new RangeError(`options.intervalMs must be positive, got ${options.intervalMs}`);
    const concurrency = options.concurrency ?? 2;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new RangeError(`options.concurrency must be a positive integer, got ${concurrency}`);
    }
    this.intervalMs = options.intervalMs;
    this.concurrency = concurrency;
    this.tickMs = options.tickMs ?? Math.min(options.intervalMs, 60_000);
    this.now = options.now ?? (() => new Date());
  }

  /** Starts ticking; the first tick comes after one tick period. Idempotent. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.halted = false;
    this.schedule();
  }

  /** Stops ticking and waits for the discoveries under way to be recorded. */
  async stop(): Promise<void> {
    this.running = false;
    this.halted = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.current?.catch(() => undefined);
  }

  /** Discovers every due server once, `concurrency` at a time. Never rejects. */
  tick(): Promise<DiscoveryTickResult> {
    this.current ??= this.runTick().finally(() => {
      this.current = undefined;
    });
    return this.current;
  }

  private schedule(): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      void this.tick().finally(() => this.schedule());
    }, this.tickMs);
    this.timer.unref();
  }

  private async runTick(): Promise<DiscoveryTickResult> {
    let due: DiscoverableServer[];
    try {
      due = await this.discovery.dueServers(new Date(this.now().getTime() - this.intervalMs));
    } catch (err) {
      this.logger.error({ err }, 'could not list servers due for discovery');
      return { discovered: 0, failed: 0 };
    }
    let discovered = 0;
    let failed = 0;
    const queue = [...due];
    const worker = async () => {
      for (let next = queue.shift(); next && !this.halted; next = queue.shift()) {
        try {
          const run = await this.discovery.discoverAsSystem(next);
          if (run?.status === 'ok') discovered++;
          else if (run) {
            failed++;
            this.logger.warn({ serverId: next.serverId, workspaceId: next.workspaceId, code: run.error_code }, 'scheduled discovery failed');
          }
        } catch (err) {
          failed++;
          this.logger.error({ err, serverId: next.serverId, workspaceId: next.workspaceId }, 'scheduled discovery could not be recorded');
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, queue.length) }, worker));
    if (due.length > 0) this.logger.info({ discovered, failed }, 'scheduled discovery finished');
    return { discovered, failed };
  }
}
