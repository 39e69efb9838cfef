import type { SnapshotRuleEngine } from '../../snapshot/types.js';
import type { EngineEnvelope, EngineVerdict } from './verdict.js';

/** One HTTP call an adapter wants made for one evaluation. */
export interface PreparedCall {
  readonly method: 'POST' | 'PUT';
  readonly url: URL;
  /** Serialized once; the same bytes on every attempt. */
  readonly body: string;
  /**
   * The adapter's own headers for an attempt starting at `nowMs` (signatures carry a
   * time, so each retry is signed afresh). They win over configured and forwarded ones.
   */
  headers(nowMs: number): Record<string, string>;
  /** Turns the engine's 2xx JSON answer into a verdict. */
  interpret(answer: unknown): EngineVerdict;
}

/** The engine's configuration with its secrets opened, built once per snapshot. */
export interface OpenedEngine {
  readonly engine: SnapshotRuleEngine;
  readonly url: URL;
  /** Configured headers, opened, lowercase names. */
  readonly headers: Readonly<Record<string, string>>;
  readonly maxBytes: number;
}

/** Maps a Gatehouse envelope to a guard API and its answer back to a verdict. */
export interface EngineAdapter {
  /** A call to make, or a verdict reached without one (nothing to screen). */
  prepare(envelope: EngineEnvelope): PreparedCall | EngineVerdict;
  /** Configured headers the adapter uses itself (credentials) and that are never sent. */
  readonly consumedHeaders?: ReadonlySet<string>;
}

/** Thrown while building an adapter when the engine's configuration cannot work. */
export class EngineConfigurationError extends Error {
  override readonly name = 'EngineConfigurationError';
}
