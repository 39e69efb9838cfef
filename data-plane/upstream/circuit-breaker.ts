/** Circuit breaker settings of every upstream connection. */
export interface CircuitBreakerOptions {
  /** Consecutive failures (unreachable or timed out) that open the circuit. Default 5; 0 turns the breaker off. */
  readonly failureThreshold: number;
  /** How long an open circuit refuses calls before one probe call is let through. Default 10 s. */
  readonly coolDownMs: number;
}

export const DEFAULT_CIRCUIT_BREAKER: CircuitBreakerOptions = Object.freeze({ failureThreshold: 5, coolDownMs: 10_000 });

/** `closed`: calls flow; `open`: calls fail at once until the cool-down ends; `half-open`: one probe call is in flight. */
export type CircuitState = 'closed' | 'open' | 'half-open';

/** What {@link CircuitBreaker.admit} decided for one call. */
export type CircuitAdmission =
  | { readonly ok: true; readonly probe: boolean }
  | { readonly ok: false; readonly retryAt: number; readonly probing: boolean };

/**
 * Per-upstream circuit breaker: closed → open after `failureThreshold` consecutive
 * failures → after `coolDownMs` the next call is the probe (half-open; others keep
 * failing fast) → closed if it succeeds, open for another cool-down if it fails. Only
 * the gateway's view of reachability counts: an upstream's own JSON-RPC error is an
 * answer, so a success. The clock is injectable.
 */
export class CircuitBreaker {
  private stateValue: CircuitState = 'closed';
  private failures = 0;
  private retryAtValue = 0;
  private probing = false;
  /** The last failure's message, for the refusal. */
  lastFailure: string | undefined;

  constructor(
    private readonly options: CircuitBreakerOptions = DEFAULT_CIRCUIT_BREAKER,
    private readonly clock: () => number = Date.now,
  ) {}

  get state(): CircuitState {
    if (this.stateValue === 'open' && this.clock() >= this.retryAtValue) return 'half-open';
    return this.stateValue;
  }

  get consecutiveFailures(): number {
    return this.failures;
  }

  /** Epoch ms when an open circuit lets a probe through. */
  get retryAt(): number {
    return this.retryAtValue;
  }

  admit(): CircuitAdmission {
    if (this.stateValue === 'closed' || this.options.failureThreshold === 0) return { ok: true, probe: false };
    const now = this.clock();
    if (this.probing) return { ok: false, retryAt: Math.max(now, this.retryAtValue), probing: true };
    if (now < this.retryAtValue) return { ok: false, retryAt: this.retryAtValue, probing: false };
    this.stateValue = 'half-open';
    this.probing = true;
    return { ok: true, probe: true };
  }

  succeeded(): void {
    this.stateValue = 'closed';
    this.failures = 0;
    this.probing = false;
    this.lastFailure = undefined;
  }

  failed(message: string): void {
    this.failures += 1;
    this.lastFailure = message;
    if (this.options.failureThreshold === 0) return;
    if (this.stateValue === 'half-open' || this.failures >= this.options.failureThreshold) {
      this.stateValue = 'open';
      this.retryAtValue = this.clock() + this.options.coolDownMs;
    }
    this.probing = false;
  }

  /** The call ended without telling anything (cancelled by the client): a probe's slot is freed. */
  abandoned(probe: boolean): void {
    if (probe) this.probing = false;
  }
}
