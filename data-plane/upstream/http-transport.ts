import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import { ErrorCode, type JSONRPCMessage, type JSONRPCRequest } from '@modelcontextprotocol/sdk/types.js';
import type { Dispatcher } from 'undici';
import type { RequestStreamRouting } from './direct-calls.js';
import { SseParser, type SseEvent } from './sse-parser.js';

/** The upstream answered an MCP HTTP request with a status the transport cannot use. */
export class UpstreamHttpStatusError extends Error {
  override readonly name = 'UpstreamHttpStatusError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface UndiciStreamableHttpTransportOptions {
  /** The upstream's MCP endpoint. */
  readonly url: URL;
  /** Where requests go: the pool's keep-alive agent (one connection pool per origin). */
  readonly dispatcher: Dispatcher;
  /** Sent on every request (the assignment's shared credential headers). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Called after the transport re-initialized an expired upstream session (404), with the new session id. */
  readonly onReinitialized?: (sessionId: string | undefined) => void;
  /** Milliseconds to wait for the DELETE that ends the session on close. Default 2000. */
  readonly closeTimeoutMs?: number;
  /** GET-stream reconnection backoff. Default 1000 ms growing ×1.5 to 30 s (or the server's `retry`). */
  readonly reconnect?: { readonly initialMs: number; readonly maxMs: number };
}

const PROTOCOL_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' } as const;
/** After a POST stream delivered its response, how long the upstream has to end it before it is cut. */
const LINGER_AFTER_RESPONSE_MS = 5_000;
/** Resumptions (GET with Last-Event-ID) of one POST stream that ended before its response. */
const MAX_POST_RESUMPTIONS = 3;
/** Longest wait before resuming a stream, whatever the server's `retry` says. */
const MAX_RESUME_DELAY_MS = 5_000;
/** Deadline of a transport-owned exchange (re-initialization). */
const EXCHANGE_TIMEOUT_MS = 30_000;

type RequestId = string | number;

/**
 * MCP Streamable HTTP client transport on undici's `request` (keep-alive pooled
 * connections, no `fetch`), for the SDK `Client`. Behaviour, checked against the SDK's
 * own `StreamableHTTPClientTransport`:
 *
 * - POST per message with `Accept: application/json, text/event-stream`; a JSON answer
 *   (one message or an array) or an SSE stream, parsed incrementally as bytes arrive;
 *   202 for notifications and responses.
 * - `Mcp-Session-Id` taken from the initialize answer and sent on every later request;
 *   `MCP-Protocol-Version` once the Client sets it.
 * - 404 on a request carrying a session id: the upstream forgot the session (restart,
 *   expiry). The transport re-initializes once (replaying the Client's initialize and
 *   `notifications/initialized`; concurrent requests share the attempt) and resends the
 *   message; a second 404 is an error. The SDK transport has no such recovery.
 * - After `notifications/initialized`, a GET stream for server-to-client messages (405:
 *   the server offers none); reconnected with backoff and `Last-Event-ID` while open.
 * - A POST stream that ends before its response is resumed with GET + `Last-Event-ID`
 *   when it carried event ids, else the request fails at once with a connection-closed
 *   error (the SDK would wait for its timeout).
 * - `notifications/cancelled` for a request also aborts that request's stream, so a
 *   cancelled call never holds a pooled connection.
 * - `close()` aborts everything, then sends DELETE with the session id (405 accepted).
 *
 * Not supported: redirects (a 3xx is an error), OAuth (`authProvider`), legacy HTTP+SSE.
 */
export class UndiciStreamableHttpTransport implements Transport, RequestStreamRouting {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  /** Sees first every message that arrives on a request's own response (JSON or SSE). */
  onRequestStreamMessage?: ((requestId: RequestId, message: JSONRPCMessage) => boolean) | undefined;
  /** A request's answer stream ended without its response; true when the hook failed the request itself. */
  onRequestStreamEnded?: ((requestId: RequestId) => boolean) | undefined;
  /** The server closed a request's answer stream to be polled for the rest (SEP-1699), before the transport resumes it. */
  onRequestStreamPaused?: ((requestId: RequestId) => void) | undefined;

  private session: string | undefined;
  private protocolVersion: string | undefined;
  private initializeRequest: JSONRPCRequest | undefined;
  private readonly origin: string;
  private readonly path: string;
  private readonly extraHeaders: Readonly<Record<string, string>>;
  /** Transport-owned requests (re-initialization), aborted on close. */
  private readonly own = new Set<AbortController>();
  /** Open POST streams (and JSON exchanges) by request id, to abort on cancellation and close. */
  private readonly inflight = new Map<RequestId, AbortController>();
  private getStream: AbortController | undefined;
  private reinitializing: Promise<void> | undefined;
  private reinitCount = 0;
  private serverRetryMs: number | undefined;
  private started = false;
  private closed = false;

  constructor(private readonly options: UndiciStreamableHttpTransportOptions) {
    const { url } = options;
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`upstream URL must be http(s), got ${url.protocol}`);
    this.origin = url.origin;
    this.path = `${url.pathname}${url.search}`;
    this.extraHeaders = options.headers ?? {};
  }

  get sessionId(): string | undefined {
    return this.session;
  }

  async start(): Promise<void> {
    if (this.started) throw new Error('the transport is already started');
    this.started = true;
  }

  setProtocolVersion(version: string): void {
    this.protocolVersion = version;
  }

  async send(message: JSONRPCMessage, _options?: TransportSendOptions): Promise<void> {
    try {
      if (this.reinitializing) await this.reinitializing.catch(() => undefined);
      await this.post(message, true);
      if (isCancellation(message)) this.abortRequest(message.params.requestId);
    } catch (error) {
      const failure = asError(error);
      this.onerror?.(failure);
      throw failure;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.getStream?.abort();
    for (const controller of this.inflight.values()) controller.abort();
    for (const controller of this.own) controller.abort();
    this.inflight.clear();
    if (this.session !== undefined) await this.endSession().catch(() => undefined);
    this.onclose?.();
  }

  /** Request headers: the credential first, so it can never replace a protocol header. */
  private headers(extra?: Record<string, string>): Record<string, string> {
    const headers: Record<string, string> = { ...this.extraHeaders, ...PROTOCOL_HEADERS, ...extra };
    if (this.session !== undefined) headers['mcp-session-id'] = this.session;
    if (this.protocolVersion !== undefined) headers['mcp-protocol-version'] = this.protocolVersion;
    return headers;
  }

  private async post(message: JSONRPCMessage, mayReinitialize: boolean): Promise<void> {
    if (this.closed) throw new Error('the upstream transport is closed');
    const request = isRequest(message) ? message : undefined;
    const initialize = request?.method === 'initialize';
    if (initialize) this.initializeRequest = request;
    const sessionAtSend = this.session;
    // One controller per message (no signal combinators on the hot path): close() aborts them all.
    const controller = new AbortController();
    const signal = controller.signal;
    if (request) this.inflight.set(request.id, controller);
    else this.own.add(controller);
    let keep = false;
    try {
      const response = await this.options.dispatcher.request({
        origin: this.origin,
        path: this.path,
        method: 'POST',
        headers: this.headers(),
        body: JSON.stringify(message),
        signal,
        // The Client times requests out (and cancels them); long SSE answers are normal.
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      const { statusCode, headers, body } = response;
      const sessionHeader = headers['mcp-session-id'];
      if (typeof sessionHeader === 'string' && sessionHeader !== '' && (initialize || this.session === undefined)) this.session = sessionHeader;

      if (statusCode === 202) {
        await body.dump();
        if (isInitialized(message)) this.openGetStream();
        return;
      }
      if (statusCode === 404 && sessionAtSend !== undefined && !initialize && mayReinitialize) {
        await body.dump();
        if (request) this.inflight.delete(request.id);
        await this.reinitialize(sessionAtSend);
        return await this.post(message, false);
      }
      if (statusCode < 200 || statusCode >= 300) {
        const text = await readText(body, 300);
        throw new UpstreamHttpStatusError(statusCode, `the upstream answered HTTP ${statusCode}${describeStatus(statusCode, sessionAtSend)}${text ? `: ${text}` : ''}`);
      }
      if (!request) {
        await body.dump();
        return;
      }
      const mediaType = mediaTypeOf(headers['content-type']);
      if (mediaType === 'application/json') {
        const parsed = parseJson(await body.text());
        const id = request.id;
        await deliverInTurn(Array.isArray(parsed) ? parsed : [parsed], (item) => this.deliver(item, id));
        return;
      }
      if (mediaType === 'text/event-stream') {
        keep = true;
        void this.readPostStream(body, request.id, controller, signal);
        return;
      }
      await body.dump();
      throw new UpstreamHttpStatusError(statusCode, `the upstream answered with content type ${String(headers['content-type'] ?? 'none')}, neither JSON nor an event stream`);
    } finally {
      if (!request) this.own.delete(controller);
      else if (!keep && this.inflight.get(request.id) === controller) this.inflight.delete(request.id);
    }
  }

  /** Reads a request's SSE answer; if it ends unanswered, resumes it or fails the request. */
  private async readPostStream(body: Dispatcher.ResponseData['body'], id: RequestId, controller: AbortController, signal: AbortSignal): Promise<void> {
    let answered = false;
    let linger: NodeJS.Timeout | undefined;
    const onMessage = (message: unknown) => {
      if (isResponseTo(message, id) && !answered) {
        answered = true;
        // The server should end the stream now; one that keeps it open would hold a pooled connection.
        linger = setTimeout(() => controller.abort(), LINGER_AFTER_RESPONSE_MS);
        linger.unref();
      }
      this.deliver(message, id);
    };
    let lastEventId: string | undefined;
    try {
      lastEventId = await this.readEvents(body, onMessage, signal);
      if (!answered && lastEventId !== undefined && !signal.aborted) this.onRequestStreamPaused?.(id);
      for (let attempt = 0; !answered && lastEventId !== undefined && attempt < MAX_POST_RESUMPTIONS && !signal.aborted; attempt += 1) {
        await delay(Math.min(this.serverRetryMs ?? 0, MAX_RESUME_DELAY_MS), signal);
        const resumed = await this.openEventStream(lastEventId, signal);
        if (!resumed) break;
        lastEventId = (await this.readEvents(resumed, onMessage, signal)) ?? lastEventId;
      }
    } catch (error) {
      if (!signal.aborted) this.onerror?.(new Error(`the upstream's response stream failed: ${asError(error).message}`));
    } finally {
      clearTimeout(linger);
      if (this.inflight.get(id) === controller) this.inflight.delete(id);
    }
    if (!answered && !signal.aborted) {
      if (this.onRequestStreamEnded?.(id)) return;
      this.onmessage?.({
        jsonrpc: '2.0',
        id,
        error: { code: ErrorCode.ConnectionClosed, message: 'the upstream closed the response stream before answering' },
      });
    }
  }

  /** Parses one event stream to its end, delivering messages; returns the stream's last event id. */
  private async readEvents(body: AsyncIterable<Uint8Array>, onMessage: (message: unknown) => void, signal: AbortSignal): Promise<string | undefined> {
    const pending: unknown[] = [];
    const parser = new SseParser(
      (event: SseEvent) => {
        if (event.data === '' || (event.event !== undefined && event.event !== 'message')) return;
        let message: unknown;
        try {
          message = JSON.parse(event.data);
        } catch {
          this.onerror?.(new Error('the upstream sent an event that is not JSON'));
          return;
        }
        if (Array.isArray(message)) pending.push(...message);
        else pending.push(message);
      },
      (ms) => {
        this.serverRetryMs = ms;
      },
    );
    try {
      for await (const chunk of body) {
        if (signal.aborted) break;
        parser.push(chunk);
        if (pending.length > 0) await deliverInTurn(pending, onMessage);
      }
    } finally {
      parser.end();
    }
    if (pending.length > 0) await deliverInTurn(pending, onMessage);
    return parser.lastEventId;
  }

  /** Opens a GET event stream (optionally resuming after `lastEventId`); undefined when the server offers none. */
  private async openEventStream(lastEventId: string | undefined, signal: AbortSignal): Promise<Dispatcher.ResponseData['body'] | undefined> {
    const response = await this.options.dispatcher.request({
      origin: this.origin,
      path: this.path,
      method: 'GET',
      headers: this.headers({ accept: 'text/event-stream', ...(lastEventId === undefined ? {} : { 'last-event-id': lastEventId }) }),
      signal,
      headersTimeout: 0,
      bodyTimeout: 0,
    });
    if (response.statusCode === 405 || response.statusCode === 404 || response.statusCode === 409) {
      await response.body.dump();
      return undefined;
    }
    if (response.statusCode < 200 || response.statusCode >= 300) {
      const text = await readText(response.body, 200);
      throw new UpstreamHttpStatusError(response.statusCode, `the upstream refused its event stream with HTTP ${response.statusCode}${text ? `: ${text}` : ''}`);
    }
    if (mediaTypeOf(response.headers['content-type']) !== 'text/event-stream') {
      await response.body.dump();
      throw new UpstreamHttpStatusError(response.statusCode, 'the upstream answered GET with something other than an event stream');
    }
    return response.body;
  }

  /** The standalone GET stream: server-to-client messages outside any request, reconnected while the session lives. */
  private openGetStream(): void {
    if (this.closed) return;
    this.getStream?.abort();
    const controller = new AbortController();
    this.getStream = controller;
    const session = this.session;
    void this.runGetStream(session, controller.signal);
  }

  private async runGetStream(session: string | undefined, signal: AbortSignal): Promise<void> {
    const backoff = this.options.reconnect ?? { initialMs: 1_000, maxMs: 30_000 };
    let lastEventId: string | undefined;
    let failures = 0;
    while (!signal.aborted && this.session === session) {
      try {
        const body = await this.openEventStream(lastEventId, signal);
        if (!body) return; // no stream offered (405), or the session is gone (404: the next POST re-initializes)
        failures = 0;
        lastEventId = (await this.readEvents(body, (message) => this.deliver(message), signal)) ?? lastEventId;
      } catch (error) {
        if (signal.aborted) return;
        failures += 1;
        this.onerror?.(new Error(`the upstream's event stream failed: ${asError(error).message}`));
      }
      if (signal.aborted) return;
      const wait = this.serverRetryMs ?? Math.min(backoff.initialMs * 1.5 ** failures, backoff.maxMs);
      await delay(wait, signal).catch(() => undefined);
    }
  }

  /**
   * Opens a new upstream session after the upstream forgot ours (404): replays the
   * Client's initialize under a transport-owned id and `notifications/initialized`.
   * Concurrent callers share one attempt.
   */
  private reinitialize(expired: string): Promise<void> {
    if (this.reinitializing) return this.reinitializing;
    if (this.session !== expired) return Promise.resolve();
    const attempt = this.openNewSession().finally(() => {
      if (this.reinitializing === attempt) this.reinitializing = undefined;
    });
    this.reinitializing = attempt;
    return attempt;
  }

  private async openNewSession(): Promise<void> {
    const initialize = this.initializeRequest;
    if (!initialize) throw new Error('the upstream session expired before it was initialized');
    this.getStream?.abort();
    this.session = undefined;
    this.reinitCount += 1;
    const id = `gatehouse-reinitialize-${this.reinitCount}`;
    const response = await this.exchange({ ...initialize, id });
    if (!('result' in response)) {
      throw new Error(`the upstream refused to re-initialize its expired session: ${JSON.stringify((response as { error?: unknown }).error ?? null).slice(0, 200)}`);
    }
    const version = (response.result as { protocolVersion?: unknown }).protocolVersion;
    if (typeof version === 'string') this.protocolVersion = version;
    await this.post({ jsonrpc: '2.0', method: 'notifications/initialized' }, false);
    this.options.onReinitialized?.(this.session);
  }

  /** POSTs a request the transport itself owns and returns its response (other messages are dropped). */
  private async exchange(request: JSONRPCRequest): Promise<{ result: unknown } | { error: unknown }> {
    const controller = new AbortController();
    this.own.add(controller);
    const timer = setTimeout(() => controller.abort(new Error(`the upstream did not answer ${request.method} within ${EXCHANGE_TIMEOUT_MS} ms`)), EXCHANGE_TIMEOUT_MS);
    try {
      return await this.exchangeWith(request, controller.signal);
    } finally {
      clearTimeout(timer);
      this.own.delete(controller);
    }
  }

  private async exchangeWith(request: JSONRPCRequest, signal: AbortSignal): Promise<{ result: unknown } | { error: unknown }> {
    const response = await this.options.dispatcher.request({
      origin: this.origin,
      path: this.path,
      method: 'POST',
      headers: this.headers(),
      body: JSON.stringify(request),
      signal,
      headersTimeout: 0,
      bodyTimeout: 0,
    });
    const sessionHeader = response.headers['mcp-session-id'];
    if (typeof sessionHeader === 'string' && sessionHeader !== '') this.session = sessionHeader;
    if (response.statusCode < 200 || response.statusCode >= 300) {
      const text = await readText(response.body, 200);
      throw new UpstreamHttpStatusError(response.statusCode, `the upstream answered ${request.method} with HTTP ${response.statusCode}${text ? `: ${text}` : ''}`);
    }
    const mediaType = mediaTypeOf(response.headers['content-type']);
    let found: { result: unknown } | { error: unknown } | undefined;
    const take = (message: unknown) => {
      if (!found && isResponseTo(message, request.id)) found = message as { result: unknown } | { error: unknown };
    };
    if (mediaType === 'application/json') {
      const parsed = parseJson(await response.body.text());
      for (const item of Array.isArray(parsed) ? parsed : [parsed]) take(item);
    } else if (mediaType === 'text/event-stream') {
      await this.readEvents(response.body, take, signal);
    } else {
      await response.body.dump();
    }
    if (!found) throw new Error(`the upstream gave no answer to ${request.method}`);
    return found;
  }

  private async endSession(): Promise<void> {
    const response = await this.options.dispatcher.request({
      origin: this.origin,
      path: this.path,
      method: 'DELETE',
      headers: this.headers(),
      signal: AbortSignal.timeout(this.options.closeTimeoutMs ?? 2_000),
    });
    await response.body.dump();
    this.session = undefined;
  }

  private abortRequest(requestId: unknown): void {
    if (typeof requestId !== 'string' && typeof requestId !== 'number') return;
    const controller = this.inflight.get(requestId);
    if (!controller) return;
    this.inflight.delete(requestId);
    controller.abort();
  }

  /**
   * Hands a parsed message on, dropping what is not JSON-RPC 2.0 at all: first to the
   * request-stream hook when it arrived on request `requestId`'s answer, else to `onmessage`.
   */
  private deliver(message: unknown, requestId?: RequestId): void {
    if (typeof message !== 'object' || message === null || (message as { jsonrpc?: unknown }).jsonrpc !== '2.0') {
      this.onerror?.(new Error('the upstream sent something that is not a JSON-RPC 2.0 message'));
      return;
    }
    if (requestId !== undefined && this.onRequestStreamMessage?.(requestId, message as JSONRPCMessage)) return;
    this.onmessage?.(message as JSONRPCMessage);
  }
}

/**
 * Delivers messages one per microtask turn and empties `messages`. The SDK's Protocol
 * runs notification handlers (progress) a microtask after delivery but settles responses
 * at once; several messages from one chunk delivered back to back would let a request's
 * response overtake the progress sent before it (its handler then finds no request).
 */
async function deliverInTurn(messages: unknown[], deliver: (message: unknown) => void): Promise<void> {
  for (let i = 0; i < messages.length; i += 1) {
    if (i > 0) await Promise.resolve();
    deliver(messages[i]);
  }
  messages.length = 0;
}

function isRequest(message: JSONRPCMessage): message is JSONRPCRequest {
  return 'method' in message && 'id' in message && message.id !== undefined;
}

function isInitialized(message: JSONRPCMessage): boolean {
  return 'method' in message && message.method === 'notifications/initialized' && !('id' in message);
}

function isCancellation(message: JSONRPCMessage): message is JSONRPCMessage & { params: { requestId: unknown } } {
  return 'method' in message && message.method === 'notifications/cancelled' && typeof message.params === 'object' && message.params !== null;
}

function isResponseTo(message: unknown, id: RequestId): boolean {
  if (typeof message !== 'object' || message === null) return false;
  const record = message as Record<string, unknown>;
  return record.id === id && ('result' in record || 'error' in record) && !('method' in record);
}

function mediaTypeOf(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  return value?.split(';')[0]!.trim().toLowerCase();
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`the upstream answered with invalid JSON: ${JSON.stringify(text.slice(0, 80))}`);
  }
}

async function readText(body: Dispatcher.ResponseData['body'], limit: number): Promise<string> {
  try {
    const text = await body.text();
    return text.length > limit ? `${text.slice(0, limit)}…` : text;
  } catch {
    return '';
  }
}

function describeStatus(status: number, session: string | undefined): string {
  if (status === 404 && session !== undefined) return ' (its session expired again right after re-initialization)';
  if (status >= 300 && status < 400) return ' (a redirect, which the gateway does not follow; fix the server URL)';
  if (status === 401 || status === 403) return ' (the upstream refused the credential)';
  return '';
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0) return signal.aborted ? Promise.reject(signal.reason) : Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
