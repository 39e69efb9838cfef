import type { Progress, Result } from '@modelcontextprotocol/sdk/types.js';

/** A JSON-RPC notification or request as relayed (method and params only; ids are mapped). */
export interface RelayedMessage {
  readonly method: string;
  readonly params?: Record<string, unknown> | undefined;
}

/**
 * Where the upstream's messages about one in-flight client call go: the call's own
 * response stream (an SSE stream when the client accepted one). The endpoint implements
 * it; the upstream connection attributes each message to a call (see `DirectCalls`).
 */
export interface CallRelay {
  /** A notification the upstream sent while serving the call (`notifications/message`). */
  notify(notification: RelayedMessage): void;
  /** Progress of the call; present when the client asked for progress (gave a token). */
  readonly progress?: ((progress: Progress) => void) | undefined;
  /**
   * A request the upstream sent while serving the call (sampling, elicitation, roots):
   * relayed to the client under a gateway-assigned id; resolves with the client's result
   * or rejects with its error (an `McpError`). `signal` aborts when the upstream cancels.
   */
  request(request: RelayedMessage, signal: AbortSignal): Promise<Result>;
  /**
   * The upstream closed the call's response stream before answering and will be polled
   * for the rest (SEP-1699); present when the client's side can do the same (its call is
   * an SSE stream it can resume).
   */
  readonly pause?: (() => void) | undefined;
}
