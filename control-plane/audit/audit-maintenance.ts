import type { Logger } from '../logger.js';
import type { AuditStore } from './audit-store.js';

export interface AuditMaintenanceOptions {
  /** How often partitions are created ahead and retention applied. Default 1 hour. */
  readonly intervalMs?: number;
  /** Injectable clock. Default `() => new Date()`. */
  readonly clock?: () => Date;
}

/**
 * Keeps the audit store in shape: day partitions created ahead and retention applied, at
 * start and every `intervalMs` (default hourly), on every control-plane process (the
 * store's DDL is serialized by an advisory lock, and retention is idempotent). Failures
 * are logged and retried at the next tick; ingest never depends on them (the default
 * partition takes what has no day partition).
 */
export class AuditMaintenance {
  readonly #intervalMs: number;
  readonly #clock: () => Date;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(
    private readonly store: AuditStore,
    private readonly logger: Logger,
    options: AuditMaintenanceOptions = {},
  ) {
    this.#intervalMs = options.intervalMs ?? 3_600_000;
    if (!Number.isInteger(this.#intervalMs) || this.#intervalMs <= 0) throw new TypeError(`audit maintenance option "intervalMs" must be a positive integer, got ${options.intervalMs}`);
    this.#clock = options.clock ?? (() => new Date());
  }

  /**
   * Runs a first pass in the background (start-up does not wait for DDL; an ingest that
   * comes first creates the partition it needs itself) and schedules the periodic run.
   */
  start(): void {
    this.#timer = setInterval(() => void this.runOnce(), this.#intervalMs);
    this.#timer.unref();
    void this.runOnce();
  }

  /** One pass: partitions ahead, then retention. Concurrent calls share one run. */
  runOnce(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    this.#running ??= (async () => {
      const now = this.#clock();
      try {
        await this.store.ensurePartitions(now);
        await this.store.applyRetention(now);
      } catch (error) {
        if (!this.#stopped) this.logger.error({ err: error }, 'audit maintenance failed; retrying at the next run');
      } finally {
        this.#running = undefined;
      }
    })();
    return this.#running;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#running;
  }
}
