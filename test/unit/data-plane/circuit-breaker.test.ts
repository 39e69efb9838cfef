import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from '../../../data-plane/upstream/circuit-breaker.js';

function breaker(threshold = 3, coolDownMs = 1_000) {
  let now = 10_000;
  const circuit = new CircuitBreaker({ failureThreshold: threshold, coolDownMs }, () => now);
  return { circuit, advance: (ms: number) => (now += ms), now: () => now };
}

describe('CircuitBreaker', () => {
  it('stays closed below the threshold, and any answer resets the count', () => {
    const { circuit } = breaker();
    circuit.failed('a');
    circuit.failed('b');
    circuit.succeeded();
    circuit.failed('c');
    circuit.failed('d');
    expect(circuit.state).toBe('closed');
    expect(circuit.consecutiveFailures).toBe(2);
    expect(circuit.admit()).toEqual({ ok: true, probe: false });
  });

  it('opens after N consecutive failures and refuses until the cool-down ends, saying when', () => {
    const { circuit, advance, now } = breaker();
    for (const reason of ['a', 'b', 'c']) circuit.failed(reason);
    expect(circuit.state).toBe('open');
    expect(circuit.lastFailure).toBe('c');
    expect(circuit.admit()).toEqual({ ok: false, retryAt: now() + 1_000, probing: false });
    advance(999);
    expect(circuit.admit().ok).toBe(false);
  });

  it('lets exactly one probe through after the cool-down; its success closes the circuit', () => {
    const { circuit, advance } = breaker();
    for (let i = 0; i < 3; i += 1) circuit.failed('down');
    advance(1_000);
    expect(circuit.state).toBe('half-open');
    expect(circuit.admit()).toEqual({ ok: true, probe: true });
    expect(circuit.admit()).toMatchObject({ ok: false, probing: true });
    circuit.succeeded();
    expect(circuit.state).toBe('closed');
    expect(circuit.admit()).toEqual({ ok: true, probe: false });
  });

  it('re-opens for another cool-down when the probe fails; an abandoned probe frees the slot', () => {
    const { circuit, advance, now } = breaker();
    for (let i = 0; i < 3; i += 1) circuit.failed('down');
    advance(1_000);
    expect(circuit.admit().ok).toBe(true);
    circuit.failed('still down');
    expect(circuit.state).toBe('open');
    expect(circuit.retryAt).toBe(now() + 1_000);
    advance(1_000);
    expect(circuit.admit()).toEqual({ ok: true, probe: true });
    circuit.abandoned(true);
    expect(circuit.admit()).toEqual({ ok: true, probe: true });
  });

  it('never opens with a threshold of 0', () => {
    const { circuit } = breaker(0);
    for (let i = 0; i < 100; i += 1) circuit.failed('x');
    expect(circuit.admit()).toEqual({ ok: true, probe: false });
  });
});
