import { randomUUID } from 'node:crypto';
import { ErrorCode, McpError, type Progress, type ProgressToken, type Result } from '@modelcontextprotocol/sdk/types.js';
import type { CallRelay, RelayedMessage } from '../upstream/relay.js';
import type { JsonRpcId } from './json-rpc.js';
import { sessionTag, type RelayedClientCapabilities } from './session-id.js';
import { logLevelRank } from './session-log-levels.js';
import type { CallStreamSink } from './call-streams.js';

/** Ids the gateway gives server-to-client requests it relays (the client answers under them). */
export const RELAYED_ID_PREFIX = 'gatehouse-';

/** Which client capability a server-to-client request needs. */
const CAPABILITY_FOR: { readonly [method: string]: keyof RelayedClientCapabilities } = {
  'sampling/createMessage': 'sampling',
  'elicitation/create': 'elicitation',
  'roots/list': 'roots',
};

interface PendingServerRequest {
  /** The session's tag (`sessionTag`): what a replica forwarding the answer knows of it. */
  readonly sessionTag: string;
  resolve(result: Result): void;
  reject(error: Error): void;
}

/** What {@link CallRegistry.relay} needs to know about one client call. */
export interface CallRelayOptions {
  readonly sessionId: string;
  /** As declared at initialize (from the session claims); undefined: nothing declared. */
  readonly capabilities: RelayedClientCapabilities | undefined;
  /** The call's SSE response stream; undefined when the client gets a JSON answer. */
  readonly stream: CallStreamSink | undefined;
  /** The session's protocol lets the gateway close the stream for the client to poll (2025-11-25, SEP-1699): an upstream's pause is passed on. */
  readonly pausable?: boolean;
  /** The client's `_meta.progressToken`, when it asked for progress. */
  readonly progressToken: ProgressToken | undefined;
  /** Log messages less severe than this rank are dropped (the session's `logging/setLevel`); undefined: all relayed. */
  readonly minimumLogRank?: number | undefined;
}

/**
 * The calls in flight on this replica and the server-to-client requests they are
 * waiting on. A client's `notifications/cancelled` or its answer to a relayed request
 * may reach another replica than the one serving the call (one HTTP connection carries
 * the call's SSE stream); that replica forwards it (`SessionForwards`, through Redis) and
 * the one holding the call applies it here with {@link cancelTagged} / {@link answerTagged}.
 * Calls are keyed by the session's tag, which is all a forwarded message carries.
 */
export class CallRegistry {
  private readonly inFlight = new Map<string, AbortController>();
  private readonly pending = new Map<string, PendingServerRequest>();

  /** Registers a client request as cancellable; `finish` must be called when it ends. */
  begin(sessionId: string, requestId: JsonRpcId): { readonly signal: AbortSignal; abort(): void; finish(): void } {
    const key = callKey(sessionTag(sessionId), requestId);
    const controller = new AbortController();
    this.inFlight.set(key, controller);
    return {
      signal: controller.signal,
      abort: () => controller.abort(new McpError(ErrorCode.ConnectionClosed, 'the client went away')),
      finish: () => {
        if (this.inFlight.get(key) === controller) this.inFlight.delete(key);
      },
    };
  }

  /** Cancels an in-flight call of the session (the client sent `notifications/cancelled`). False if unknown. */
  cancel(sessionId: string, requestId: unknown, reason: unknown): boolean {
    return this.cancelTagged(sessionTag(sessionId), requestId, reason);
  }

  /** {@link cancel} by session tag (a cancellation forwarded from another replica). */
  cancelTagged(tag: string, requestId: unknown, reason: unknown): boolean {
    if (typeof requestId !== 'string' && typeof requestId !== 'number') return false;
    const controller = this.inFlight.get(callKey(tag, requestId));
    if (!controller) return false;
    controller.abort(new McpError(ErrorCode.RequestTimeout, typeof reason === 'string' ? `cancelled by the client: ${reason}` : 'cancelled by the client'));
    return true;
  }

  /** Routes a client's answer to the relayed request it answers. False if none is waiting. */
  answer(sessionId: string, id: JsonRpcId, result: unknown, error: unknown): boolean {
    return this.answerTagged(sessionTag(sessionId), id, result, error);
  }

  /** {@link answer} by session tag (an answer forwarded from another replica). */
  answerTagged(tag: string, id: unknown, result: unknown, error: unknown): boolean {
    if (typeof id !== 'string') return false;
    const waiting = this.pending.get(id);
    if (!waiting || waiting.sessionTag !== tag) return false;
    this.pending.delete(id);
    if (error !== undefined) {
      const body = typeof error === 'object' && error !== null ? (error as Record<string, unknown>) : {};
      const code = typeof body.code === 'number' ? body.code : ErrorCode.InternalError;
      const message = typeof body.message === 'string' ? body.message : 'the client answered with an error';
      waiting.reject(new McpError(code, message, body.data));
    } else {
      waiting.resolve((typeof result === 'object' && result !== null ? result : {}) as Result);
    }
    return true;
  }

  /** The relay of one client call: where the upstream's progress, logging and requests go. */
  relay(options: CallRelayOptions): CallRelay {
    const { stream, progressToken, minimumLogRank } = options;
    const send = (message: Record<string, unknown>) => stream?.send(JSON.stringify({ jsonrpc: '2.0', ...message }));
    return {
      notify: (notification: RelayedMessage) => {
        // Below the session's level: dropped. A level this gateway cannot rank is relayed.
        if (minimumLogRank !== undefined && notification.method === 'notifications/message' && (logLevelRank(notification.params?.level) ?? minimumLogRank) < minimumLogRank) return;
        send({ method: notification.method, ...(notification.params ? { params: notification.params } : {}) });
      },
      progress:
        progressToken === undefined || !stream
          ? undefined
          : (progress: Progress) => send({ method: 'notifications/progress', params: { ...progress, progressToken } }),
      request: (request, signal) => this.relayRequest(options, request, signal),
      ...(stream && options.pausable ? { pause: () => stream.pause() } : {}),
    };
  }

  private relayRequest(options: CallRelayOptions, request: RelayedMessage, signal: AbortSignal): Promise<Result> {
    const { stream } = options;
    if (!stream?.isOpen) {
      return Promise.reject(
        new McpError(ErrorCode.InvalidRequest, `the gateway cannot relay ${request.method}: the client's call is answered as JSON, not an SSE stream`),
      );
    }
    const capability = CAPABILITY_FOR[request.method];
    if (capability !== undefined && !options.capabilities?.[capability]) {
      return Promise.reject(new McpError(ErrorCode.InvalidRequest, `the client did not declare the "${capability}" capability, so ${request.method} cannot be relayed to it`));
    }
    const id = `${RELAYED_ID_PREFIX}${randomUUID()}`;
    return new Promise<Result>((resolve, reject) => {
      const settle = () => {
        this.pending.delete(id);
        signal.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        settle();
        stream.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: 'cancelled by the upstream server' } }));
        reject(signal.reason instanceof Error ? signal.reason : new Error('cancelled by the upstream server'));
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, {
        sessionTag: sessionTag(options.sessionId),
        resolve: (result) => {
          settle();
          resolve(result);
        },
        reject: (error) => {
          settle();
          reject(error);
        },
      });
      // The call ended (cancelled, failed) or the client went away with the request unanswered.
      stream.onClose(() => {
        if (!this.pending.has(id)) return;
        settle();
        reject(new McpError(ErrorCode.ConnectionClosed, `the client's call ended before it answered ${request.method}`));
      });
      stream.send(JSON.stringify({ jsonrpc: '2.0', id, method: request.method, ...(request.params ? { params: request.params } : {}) }));
    });
  }
}

function callKey(tag: string, requestId: JsonRpcId): string {
  return `${tag}\u0000${typeof requestId}:${String(requestId)}`;
}
