import { randomUUID } from 'node:crypto';
import { ErrorCode, McpError, type Progress, type ProgressToken, type Result } from '@modelcontextprotocol/sdk/types.js';
import type { CallRelay, RelayedMessage } from '../upstream/relay.js';
import type { JsonRpcId } from './json-rpc.js';
import type { RulesHook } from './router.js';
import { RULE_BLOCKED_RPC_CODE } from './rules-stage.js';
import { sessionTag, type RelayedClientCapabilities } from './session-id.js';
import { logLevelRank } from './session-log-levels.js';
import type { CallStreamSink } from './call-streams.js';

/** JSON-RPC code of a cancelled request (as LSP uses; MCP sends no answer on SSE), and of cancellations in the audit trail. */
export const REQUEST_CANCELLED = -32800;

/** Ids the gateway gives server-to-client requests it relays (the client answers under them). */
export const RELAYED_ID_PREFIX = 'gatehouse-';

/**
 * Which client capability a server-to-client request needs, and how a refusal names it.
 * Elicitation depends on its mode: URL mode is declared on its own (`elicitation.url`),
 * any other mode is form mode's.
 */
function neededCapability(method: string, params: Record<string, unknown> | undefined): readonly [keyof RelayedClientCapabilities, string] | undefined {
  switch (method) {
    case 'sampling/createMessage':
      return ['sampling', 'the "sampling" capability'];
    case 'roots/list':
      return ['roots', 'the "roots" capability'];
    case 'elicitation/create':
      return params?.mode === 'url'
        ? ['elicitationUrl', 'URL-mode elicitation (the "elicitation.url" capability)']
        : ['elicitation', 'form-mode elicitation (the "elicitation" capability, or "elicitation.form")'];
    default:
      return undefined;
  }
}

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
  /** [audit] Where each relayed request and the answer it got are recorded (the call's record). */
  readonly audit?: RelayAuditHook | undefined;
  /** [rules] The call's content rules: what the upstream asks, and what the client answers, may be rewritten or blocked. */
  readonly rules?: Pick<RulesHook, 'relayedRequest' | 'relayedAnswer'> | undefined;
}

/**
 * A server-to-client request of one call, as the audit trail records it: what the upstream
 * asked, whether it reached the client, and what went back upstream. Plain data, set as
 * the exchange goes; the entries are built from it after the call (`build-entries.ts`).
 */
export interface RelayedRequestRecord {
  readonly method: string;
  readonly params: Record<string, unknown> | undefined;
  /** `performance.now()` when the upstream's request arrived. */
  readonly receivedAt: number;
  /** The id the client was asked under; undefined when the gateway refused to relay it. */
  relayedId?: string;
  /** Bytes of the request as written to the client's stream. */
  bytesOut?: number;
  /** `performance.now()` when its outcome went back upstream. */
  endedAt?: number;
  /** The client's result, or the error the upstream got (the client's, or the gateway's when it refused or gave up). */
  outcome?: { readonly result: Result } | { readonly error: McpError | Error };
}

/** What the relay tells the call's audit record (implemented by `AuditedCall`). */
export interface RelayAuditHook {
  relayedRequest(record: RelayedRequestRecord): void;
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

  /** `onRelayed` [ops]: told how each relayed request ended (the metric of relayed requests). */
  constructor(private readonly options: { readonly onRelayed?: (method: string, outcome: RelayOutcome) => void } = {}) {}

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

  /**
   * One server-to-client request: refused when it cannot reach the client, else passed
   * through the call's rules (the request, then the client's answer) and relayed; what
   * happened is recorded for audit. Rejects with the error the upstream is to get.
   */
  private relayRequest(options: CallRelayOptions, request: RelayedMessage, signal: AbortSignal): Promise<Result> {
    const record: RelayedRequestRecord | undefined = options.audit ? { method: request.method, params: request.params, receivedAt: performance.now() } : undefined;
    if (record) options.audit!.relayedRequest(record);
    const refusal = relayRefusal(options, request.method, request.params);
    const onRelayed = this.options.onRelayed;
    return (refusal ? Promise.reject(refusal) : this.relayThroughRules(options, request, signal, record)).then(
      (result) => {
        if (record) {
          record.endedAt = performance.now();
          record.outcome = { result };
        }
        onRelayed?.(request.method, 'answered');
        return result;
      },
      (error: unknown) => {
        if (record) {
          record.endedAt = performance.now();
          record.outcome = { error: error instanceof Error ? error : new Error(String(error)) };
        }
        onRelayed?.(request.method, refusal ? 'refused' : relayOutcome(error));
        throw error;
      },
    );
  }

  private async relayThroughRules(options: CallRelayOptions, request: RelayedMessage, signal: AbortSignal, record: RelayedRequestRecord | undefined): Promise<Result> {
    const { rules } = options;
    const asked = rules && request.params ? { method: request.method, params: await rules.relayedRequest(request.method, request.params) } : request;
    const answer = await this.exchange(options, asked, signal, record);
    return rules ? rules.relayedAnswer(request.method, answer) : answer;
  }

  /** Relays one request to the client and waits for its answer; `record` (audit) learns the id and size written. */
  private exchange(options: CallRelayOptions, request: RelayedMessage, signal: AbortSignal, record: RelayedRequestRecord | undefined): Promise<Result> {
    const stream = options.stream!;
    // The stream may have ended while rules ran.
    if (!stream.isOpen) return Promise.reject(new McpError(ErrorCode.ConnectionClosed, `the client's call ended before ${request.method} could be relayed`));
    const id = `${RELAYED_ID_PREFIX}${randomUUID()}`;
    const cancelled = () => (signal.reason instanceof McpError ? signal.reason : new McpError(REQUEST_CANCELLED, 'cancelled by the upstream server'));
    return new Promise<Result>((resolve, reject) => {
      const settle = () => {
        this.pending.delete(id);
        signal.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        settle();
        stream.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: 'cancelled by the upstream server' } }));
        reject(cancelled());
      };
      // Cancelled before it was sent (while rules ran): the client never heard of it.
      if (signal.aborted) return reject(cancelled());
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
      const message = JSON.stringify({ jsonrpc: '2.0', id, method: request.method, ...(request.params ? { params: request.params } : {}) });
      if (record !== undefined) {
        record.relayedId = id;
        record.bytesOut = Buffer.byteLength(message);
      }
      stream.send(message);
    });
  }
}

/** How a relayed request ended, for the metric: `refused` is decided before anything is relayed. */
export type RelayOutcome = 'answered' | 'client_error' | 'refused' | 'blocked' | 'cancelled' | 'unanswered';

function relayOutcome(error: unknown): RelayOutcome {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === RULE_BLOCKED_RPC_CODE) return 'blocked';
  if (code === REQUEST_CANCELLED) return 'cancelled';
  // The call ended, or the client went away, before the answer (as `exchange` words it).
  if (error instanceof McpError && code === ErrorCode.ConnectionClosed) return 'unanswered';
  return 'client_error';
}

/** Why a server-to-client request cannot reach the client of this call, if it cannot. */
function relayRefusal(options: CallRelayOptions, method: string, params: Record<string, unknown> | undefined): McpError | undefined {
  if (!options.stream?.isOpen) {
    return new McpError(ErrorCode.InvalidRequest, `the gateway cannot relay ${method}: the client's call is answered as JSON, not an SSE stream`);
  }
  const needed = neededCapability(method, params);
  if (needed !== undefined && !options.capabilities?.[needed[0]]) {
    return new McpError(ErrorCode.InvalidRequest, `the client did not declare ${needed[1]}, so ${method} cannot be relayed to it`);
  }
  return undefined;
}

function callKey(tag: string, requestId: JsonRpcId): string {
  return `${tag}\u0000${typeof requestId}:${String(requestId)}`;
}
