import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { DirectCallClosed, DirectCallTimeout, type DirectCalls } from './direct-calls.js';

/** Health probe of the upstream sessions of managed servers. */
export interface IdleProbeOptions {
  /** A session with no answer to any request for this long gets an MCP `ping`. Default 30 s; 0 turns probing off. */
  readonly intervalMs: number;
  /** How long a ping may go unanswered before it counts as failed. Default 5 s. */
  readonly timeoutMs: number;
  /** Failed or unanswered pings in a row that mean the process is hung. Default 2. */
  readonly failures: number;
}

export const DEFAULT_IDLE_PROBE: IdleProbeOptions = Object.freeze({ intervalMs: 30_000, timeoutMs: 5_000, failures: 2 });

/** What an {@link IdleProbe} tells its owner. */
export interface IdleProbeEvents {
  /** A ping was sent. */
  pinged(): void;
  /** A ping failed or went unanswered; `consecutive` counts them since the last answer. */
  failed(consecutive: number, reason: string): void;
  /** `failures` pings in a row failed: the process is hung. The probe has stopped. */
  hung(reason: string): void;
}

/**
 * Pings one upstream session when it has had no call in flight and answered nothing for
 * `intervalMs`: any answer to any request (calls included) resets the wait, so a busy
 * session is never pinged and a call never waits for a probe. The ping goes through the session's direct-request path
 * with its own timeout. `failures` pings in a row without an answer, and no other answer
 * meanwhile, report the process hung. Its timer never keeps the process alive, and it stops
 * for good with {@link stop} or when the session closes.
 */
export class IdleProbe {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private consecutive = 0;

  constructor(
    private readonly calls: DirectCalls,
    private readonly options: IdleProbeOptions,
    private readonly events: IdleProbeEvents,
  ) {}

  start(): void {
    if (this.options.intervalMs > 0 && !this.stopped) this.schedule(this.options.intervalMs);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** False once stopped (by its owner, the session closing, or a hang reported). */
  get running(): boolean {
    return !this.stopped;
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => this.tick(), delayMs);
    this.timer.unref();
  }

  private tick(): void {
    this.timer = undefined;
    if (this.stopped) return;
    if (this.calls.isClosed) return this.stop();
    // Calls in flight: busy, not idle. A server that serves one request at a time answers
    // nothing, ping included, until its call ends; a process stuck mid-call is found once
    // that call ended (its own timeout) and the session still answers nothing.
    if (this.calls.size > 0) {
      this.consecutive = 0;
      return this.schedule(this.options.intervalMs);
    }
    const idleMs = performance.now() - this.calls.lastAnswerAt;
    if (idleMs < this.options.intervalMs) {
      this.consecutive = 0;
      return this.schedule(this.options.intervalMs - idleMs);
    }
    const sentAt = performance.now();
    this.events.pinged();
    this.calls.request('ping', undefined, { timeoutMs: this.options.timeoutMs }).then(
      () => this.answered(),
      (error: unknown) => {
        // An error answer is an answer: the process reads and writes (a server without ping).
        if (error instanceof McpError) return this.answered();
        // The session ended (process exit, unassigned): whoever closed it deals with it.
        if (error instanceof DirectCallClosed) return this.stop();
        this.failed(error, sentAt);
      },
    );
  }

  private answered(): void {
    if (this.stopped) return;
    this.consecutive = 0;
    this.schedule(this.options.intervalMs);
  }

  private failed(error: unknown, sentAt: number): void {
    if (this.stopped) return;
    // Something else was answered while the ping waited: the process is alive.
    if (this.calls.lastAnswerAt > sentAt) {
      this.consecutive = 0;
      return this.tick();
    }
    this.consecutive += 1;
    const reason = error instanceof DirectCallTimeout ? `no answer within ${this.options.timeoutMs} ms` : error instanceof Error ? error.message : String(error);
    this.events.failed(this.consecutive, reason);
    if (this.consecutive < this.options.failures) return this.tick();
    this.stop();
    this.events.hung(`it answered none of ${this.consecutive} pings in a row (last: ${reason})`);
  }
}
