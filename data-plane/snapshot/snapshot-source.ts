import { acceptSnapshot, type CompiledSnapshot } from './compiled-snapshot.js';

/** How the data plane's link to its snapshot supplier stands, for `/readyz`. Times are epoch ms. */
export type SnapshotLinkState =
  /** Snapshots are supplied in-process (tests, one-process mode); there is no link to lose. */
  | { readonly state: 'local' }
  | ({ readonly state: 'connected'; readonly since: number } & SnapshotLinkHistory)
  /** The control plane is unreachable (since `since`): the last good snapshot is still enforced. */
  | ({ readonly state: 'disconnected'; readonly since: number; readonly reason: string } & SnapshotLinkHistory);

export interface SnapshotLinkHistory {
  /** The last message received from the control plane (delivery, acknowledgement, pong). */
  readonly lastContactAt?: number;
  /** The last failure of the link, cleared when it reconnects. */
  readonly lastError?: string;
}

/**
 * Where the data plane gets its snapshots. The endpoint reads `current()` once per
 * request and never caches it, so a swap takes effect on the next message. The
 * graphql-ws push client implements this interface; {@link InMemorySnapshotSource}
 * is the in-process implementation tests and the one-process mode use.
 */
export interface SnapshotSource {
  /** The snapshot being enforced, or undefined before the first one (fail closed: 503). */
  current(): CompiledSnapshot | undefined;
  /** Called after each swap. Returns an unsubscribe function. */
  onChange(listener: (next: CompiledSnapshot, previous: CompiledSnapshot | undefined) => void): () => void;
  /** The state of the link to the control plane; absent means `local`. */
  link?(): SnapshotLinkState;
}

/**
 * Holds the latest accepted snapshot in memory. `offer` runs the full acceptance path
 * (validation, hash, strictly newer, index build) and swaps atomically: a rejected
 * snapshot throws `SnapshotRejectedError` and leaves the held one in service.
 */
export class InMemorySnapshotSource implements SnapshotSource {
  private held: CompiledSnapshot | undefined;
  private readonly listeners = new Set<(next: CompiledSnapshot, previous: CompiledSnapshot | undefined) => void>();

  current(): CompiledSnapshot | undefined {
    return this.held;
  }

  /**
   * Validates `input` (a parsed snapshot body) and swaps it in.
   * @param secretKeys snapshot keys by `keyId`, for opening the snapshot's secrets.
   */
  offer(input: unknown, secretKeys?: ReadonlyMap<string, Uint8Array>): CompiledSnapshot {
    const next = acceptSnapshot(this.held, input, secretKeys);
    const previous = this.held;
    this.held = next;
    for (const listener of this.listeners) listener(next, previous);
    return next;
  }

  onChange(listener: (next: CompiledSnapshot, previous: CompiledSnapshot | undefined) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  link(): SnapshotLinkState {
    return { state: 'local' };
  }
}
