import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { ErrorCode, McpError, type JSONRPCMessage, type Progress, type Result } from '@modelcontextprotocol/sdk/types.js';
import type { CallRelay } from './relay.js';

/**
 * A transport that can tell which request's response stream a message arrived on
 * (Streamable HTTP: the POST's SSE answer). The hook sees such messages first; true
 * means it consumed the message.
 */
export interface RequestStreamRouting {
  onRequestStreamMessage?: ((requestId: string | number, message: JSONRPCMessage) => boolean) | undefined;
  /** The request's answer stream ended without its response; true when the hook failed the request. */
  onRequestStreamEnded?: ((requestId: string | number) => boolean) | undefined;
  /** The server closed the request's answer stream to be polled for the rest (SEP-1699); the transport resumes it. */
  onRequestStreamPaused?: ((requestId: string | number) => void) | undefined;
}

export interface DirectRequestOptions {
  /** Milliseconds to wait for the answer; progress restarts the wait. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
  /** Where this call's progress, logging and server-to-client requests go. */
  readonly relay?: CallRelay | undefined;
}

interface PendingCall {
  readonly id: string;
  readonly relay: CallRelay | undefined;
  readonly timer: NodeJS.Timeout;
  resolve(result: Result): void;
  reject(error: Error): void;
  /** Server-to-client requests of this call still waiting for the client, by upstream id. */
  relayed?: Map<string | number, AbortController>;
}

/** The upstream did not answer a direct request in time (told apart from an upstream's own -32001 error). */
export class DirectCallTimeout extends Error {
  override readonly name = 'DirectCallTimeout';
}

/** The upstream session closed with the request unanswered (told apart from an upstream's own -32000 error). */
export class DirectCallClosed extends Error {
  override readonly name = 'DirectCallClosed';
}

/**
 * Notifications about a call that go to its client as they are: log messages, and the end
 * of a URL-mode elicitation the call asked for (2025-11-25). Progress is mapped separately.
 */
export const CALL_NOTIFICATIONS: ReadonlySet<string> = new Set(['notifications/message', 'notifications/elicitation/complete']);

/** Prefix of the ids of direct requests: never a number, so never one of the SDK Client's ids. */
const ID_PREFIX = 'gh-';

/**
 * Requests to one upstream session sent straight through its transport, without the SDK
 * `Client`'s protocol layer (per-request zod validation, timer and abort wiring, handler
 * maps, async-context propagation). The `Client` still initializes the session and
 * handles what is not about a direct request: session-wide notifications, and
 * server-to-client requests on a transport that cannot attribute them (stdio).
 *
 * A direct request gets an id of its own (`gh-<n>`). Its response and progress (the
 * progress token is that id) are taken out of the transport's message stream before the
 * `Client` sees them; on Streamable HTTP, logging and server-to-client requests that
 * arrive on the request's own response stream go to the call's relay, so no async
 * context is needed to attribute them. A timeout or abort sends `notifications/cancelled`
 * upstream, as the SDK does.
 */
export class DirectCalls {
  private sequence = 0;
  private readonly pending = new Map<string, PendingCall>();
  private closed = false;
  /**
   * `performance.now()` of the last answer (result or error) to a direct request, late
   * ones included; the session's opening until the first. The idle probe reads it.
   */
  lastAnswerAt = performance.now();

  /** Takes over the transport's callbacks; call after the `Client` connected it. */
  constructor(private readonly transport: Transport & RequestStreamRouting) {
    const clientMessage = transport.onmessage;
    transport.onmessage = (message, extra) => {
      if (!this.intercept(message)) clientMessage?.(message, extra);
    };
    const clientClose = transport.onclose;
    transport.onclose = () => {
      this.closeAll();
      clientClose?.();
    };
    transport.onRequestStreamMessage = (requestId, message) => this.onStreamMessage(requestId, message);
    // An upstream that asks to be polled: the client's stream of the call is paused likewise, where it can be.
    transport.onRequestStreamPaused = (requestId) => {
      if (typeof requestId === 'string') this.pending.get(requestId)?.relay?.pause?.();
    };
    transport.onRequestStreamEnded = (requestId) => {
      const call = typeof requestId === 'string' ? this.pending.get(requestId) : undefined;
      call?.reject(new DirectCallClosed('the upstream closed the response stream before answering'));
      return call !== undefined;
    };
  }

  /** Calls in flight. */
  get size(): number {
    return this.pending.size;
  }

  /** The session closed: every request fails at once. */
  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Sends one request and resolves with the upstream's result, unchanged. The upstream's
   * JSON-RPC error rejects as `McpError` with its code (whatever the code: an upstream's
   * -32001 is its own error, not our timeout); a timeout as {@link DirectCallTimeout}; a
   * closed session as {@link DirectCallClosed}; a transport failure with its own error;
   * an abort with the signal's reason.
   */
  request(method: string, params: Record<string, unknown> | undefined, options: DirectRequestOptions): Promise<Result> {
    if (this.closed) return Promise.reject(new DirectCallClosed('the upstream session closed'));
    const { signal, relay } = options;
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    const id = `${ID_PREFIX}${(this.sequence += 1)}`;
    const wantsProgress = relay?.progress !== undefined;
    const sentParams = wantsProgress ? { ...params, _meta: { ...(params?._meta as object | undefined), progressToken: id } } : params;
    return new Promise<Result>((resolve, reject) => {
      const onAbort = () => this.cancel(id, abortReason(signal!), 'the client cancelled the call');
      const settle = () => {
        clearTimeout(call.timer);
        this.pending.delete(id);
        signal?.removeEventListener('abort', onAbort);
        if (call.relayed) for (const controller of call.relayed.values()) controller.abort();
      };
      const call: PendingCall = {
        id,
        relay,
        timer: setTimeout(
          () => this.cancel(id, new DirectCallTimeout(`no answer within ${options.timeoutMs} ms`), `timed out after ${options.timeoutMs} ms`),
          options.timeoutMs,
        ),
        resolve: (result) => {
          settle();
          resolve(result);
        },
        reject: (error) => {
          settle();
          reject(error);
        },
      };
      this.pending.set(id, call);
      signal?.addEventListener('abort', onAbort, { once: true });
      const message = { jsonrpc: '2.0' as const, id, method, ...(sentParams === undefined ? {} : { params: sentParams }) };
      this.transport.send(message as JSONRPCMessage).catch((error: unknown) => {
        this.pending.get(id)?.reject(error instanceof Error ? error : new Error(String(error)));
      });
    });
  }

  /** Fails every call in flight: the session closed. */
  closeAll(): void {
    this.closed = true;
    for (const call of [...this.pending.values()]) call.reject(new DirectCallClosed('the upstream session closed'));
  }

  /** Ends a call early and tells the upstream (which may have stopped already). */
  private cancel(id: string, error: Error, reason: string): void {
    const call = this.pending.get(id);
    if (!call) return;
    call.reject(error);
    if (this.closed) return;
    this.transport.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason } }).catch(() => undefined);
  }

  /** A message of the session: the answer or progress of a direct request is taken; the rest goes on. */
  private intercept(message: JSONRPCMessage): boolean {
    const record = message as { id?: unknown; method?: unknown; params?: Record<string, unknown>; result?: unknown; error?: unknown };
    if (record.method === undefined) {
      if (typeof record.id !== 'string' || !record.id.startsWith(ID_PREFIX)) return false;
      this.lastAnswerAt = performance.now();
      const call = this.pending.get(record.id);
      if (!call) return true; // the answer to a call that already ended (timed out, cancelled)
      if (record.error !== undefined) call.reject(upstreamError(record.error));
      else if (typeof record.result === 'object' && record.result !== null && !Array.isArray(record.result)) call.resolve(record.result as Result);
      else call.reject(new McpError(ErrorCode.InternalError, 'the upstream answered with a result that is not an object'));
      return true;
    }
    if (record.method === 'notifications/progress') {
      const token = record.params?.progressToken;
      if (typeof token !== 'string' || !token.startsWith(ID_PREFIX)) return false;
      const call = this.pending.get(token);
      if (!call) return true;
      call.timer.refresh();
      const { progressToken: _ours, ...progress } = record.params!;
      call.relay?.progress?.(progress as Progress);
      return true;
    }
    return false;
  }

  /** A message that arrived on a direct request's own response stream (Streamable HTTP). */
  private onStreamMessage(requestId: string | number, message: JSONRPCMessage): boolean {
    if (typeof requestId !== 'string') return false;
    const call = this.pending.get(requestId);
    if (!call) return false;
    const record = message as { id?: string | number; method?: string; params?: Record<string, unknown> };
    if (record.method === undefined) return false;
    if (record.id !== undefined) {
      this.relayRequest(call, record.id, record.method, record.params);
      return true;
    }
    if (CALL_NOTIFICATIONS.has(record.method)) {
      call.relay?.notify({ method: record.method, params: record.params });
      return true;
    }
    if (record.method === 'notifications/cancelled') {
      const target = record.params?.requestId;
      const controller = typeof target === 'string' || typeof target === 'number' ? call.relayed?.get(target) : undefined;
      if (!controller) return false;
      controller.abort(new McpError(ErrorCode.RequestTimeout, 'cancelled by the upstream server'));
      return true;
    }
    return false;
  }

  /** A server-to-client request during a call: to the call's client, and its answer back upstream. */
  private relayRequest(call: PendingCall, upstreamId: string | number, method: string, params: Record<string, unknown> | undefined): void {
    const answer = (body: { result: Result } | { error: { code: number; message: string; data?: unknown } }) =>
      void this.transport.send({ jsonrpc: '2.0', id: upstreamId, ...body } as JSONRPCMessage).catch(() => undefined);
    if (!call.relay) {
      answer({ error: { code: ErrorCode.InvalidRequest, message: `the gateway cannot relay ${method}: the call it arrived with cannot reach its client` } });
      return;
    }
    const controller = new AbortController();
    (call.relayed ??= new Map()).set(upstreamId, controller);
    call.relay.request({ method, params }, controller.signal).then(
      (result) => answer({ result }),
      (error: unknown) =>
        answer({
          error:
            error instanceof McpError
              ? { code: error.code, message: error.message.replace(/^MCP error -?\d+: /, ''), ...(error.data === undefined ? {} : { data: error.data }) }
              : { code: ErrorCode.InternalError, message: error instanceof Error ? error.message : String(error) },
        }),
    ).finally(() => call.relayed?.delete(upstreamId));
  }
}

function upstreamError(error: unknown): McpError {
  const body = typeof error === 'object' && error !== null ? (error as { code?: unknown; message?: unknown; data?: unknown }) : {};
  const code = typeof body.code === 'number' && Number.isInteger(body.code) ? body.code : ErrorCode.InternalError;
  const message = typeof body.message === 'string' ? body.message : 'the upstream answered with a malformed error';
  return new McpError(code, message, body.data);
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('request cancelled');
}
