import { AsyncLocalStorage } from 'node:async_hooks';
import type { Progress, Result } from '@modelcontextprotocol/sdk/types.js';

/** A JSON-RPC notification or request as relayed (method and params only; ids are mapped). */
export interface RelayedMessage {
  readonly method: string;
  readonly params?: Record<string, unknown> | undefined;
}

/**
 * Where the upstream's messages about one in-flight client call go: the call's own
 * response stream (an SSE stream when the client accepted one). The endpoint implements
 * it; the upstream connection attributes each message to a call (see {@link callContext}).
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
}

/**
 * The call a piece of upstream traffic belongs to. One upstream session serves many
 * client sessions, and the SDK client does not tell which request's stream a message
 * arrived on, so the upstream request runs inside `callContext.run(relay, …)`: for a
 * Streamable HTTP upstream the POST's response stream is read in that async context, so
 * everything that arrives on it (logging, server-to-client requests) carries the call.
 * Messages with no context (a stdio upstream, or the upstream's GET stream) fall back to
 * the only call in flight on that connection, if there is exactly one.
 */
export const callContext = new AsyncLocalStorage<CallRelay>();
