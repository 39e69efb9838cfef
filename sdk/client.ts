import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { Kind, print, type DocumentNode, type GraphQLFormattedError } from 'graphql';
import { createClient, type Client as WebSocketClient, type FormattedExecutionResult } from 'graphql-ws';
import WebSocket from 'ws';
import { GatehouseAuthError, GatehouseError, GatehouseNetworkError } from './errors.js';

/** Options of {@link GatehouseClient}. */
export interface GatehouseClientOptions {
  /** Control-plane base URL, e.g. `http://localhost:4000`. GraphQL is served at `<url>/graphql`. */
  readonly url: string;
  /** An admin API key; sent as `Authorization: Bearer <apiKey>`. */
  readonly apiKey: string;
  /** The fetch to use. Default: the global `fetch`. */
  readonly fetch?: typeof fetch;
  /**
   * Extra attempts after a network error or a 502/503/504 response. GraphQL errors and other
   * statuses are never retried. Also the reconnect attempts of subscriptions. Default: 3.
   */
  readonly retries?: number;
  /** Delay before the first retry; doubles each retry, with jitter. Default: 200. */
  readonly retryDelayMs?: number;
  /**
   * Time allowed per attempt, until the whole response body has arrived. A timed-out request is
   * not retried: the server may still be applying it. Default: 30000.
   */
  readonly timeoutMs?: number;
  /** WebSocket constructor for subscriptions. Default: `WebSocket` of the `ws` package. */
  readonly webSocketImpl?: unknown;
}

/** Per-call options of {@link GatehouseClient.request}. */
export interface RequestOptions {
  /** Aborts the request (and its retries); the fetch's AbortError is rethrown as is. */
  readonly signal?: AbortSignal;
}

interface PreparedDocument {
  readonly query: string;
  readonly operationName: string | undefined;
}

const RETRYABLE_STATUS: ReadonlySet<number> = new Set([502, 503, 504]);
const GRAPHQL_PATH = '/graphql';
/** graphql-ws closes with 4403 when `onConnect` refuses the connection parameters. */
const WS_FORBIDDEN = 4403;

const prepared = new WeakMap<DocumentNode, PreparedDocument>();

function prepare(document: DocumentNode): PreparedDocument {
  let p = prepared.get(document);
  if (!p) {
    const operation = document.definitions.find((d) => d.kind === Kind.OPERATION_DEFINITION);
    p = { query: print(document), operationName: operation?.name?.value };
    prepared.set(document, p);
  }
  return p;
}

function isCloseEvent(value: unknown): value is { code: number; reason: string } {
  return typeof value === 'object' && value !== null && 'code' in value && typeof value.code === 'number' && 'reason' in value;
}

function isFormattedErrors(value: unknown): value is GraphQLFormattedError[] {
  return Array.isArray(value) && value.every((e) => typeof e === 'object' && e !== null && typeof e.message === 'string');
}

/** The GatehouseError for a response's top-level GraphQL errors. */
function graphQLErrorOf(errors: readonly GraphQLFormattedError[], status: number | undefined, sentRequestId: string | undefined): GatehouseError {
  const first = errors[0];
  const code = typeof first?.extensions?.code === 'string' ? first.extensions.code : 'GRAPHQL_ERROR';
  const serverRequestId = errors.map((e) => e.extensions?.requestId).find((id) => typeof id === 'string');
  const message = errors.map((e) => e.message).join('; ');
  const options = { status, errors, requestId: serverRequestId ?? sentRequestId };
  return code === 'UNAUTHENTICATED' ? new GatehouseAuthError(message, options) : new GatehouseError(code, message, options);
}

function nonNegativeInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 0) throw new RangeError(`GatehouseClient: option "${name}" must be a non-negative integer, got ${value}`);
  return value;
}

/**
 * A small client for the control plane's GraphQL API, made for scripts and
 * Terraform-style tooling. Pair it with the generated documents:
 *
 * @example
 * const client = new GatehouseClient({ url: 'http://localhost:4000', apiKey });
 * const { role } = unwrap(await client.request(CreateRoleDocument, { input: { name: 'Ops', capabilities: ['people.view'] } }), 'createRole');
 */
export class GatehouseClient {
  readonly #httpUrl: string;
  readonly #wsUrl: string;
  readonly #apiKey: string;
  readonly #fetch: typeof fetch;
  readonly #retries: number;
  readonly #retryDelayMs: number;
  readonly #timeoutMs: number;
  readonly #webSocketImpl: unknown;
  #ws: WebSocketClient | undefined;

  constructor(options: GatehouseClientOptions) {
    let base: URL;
    try {
      base = new URL(options.url);
    } catch {
      throw new TypeError(`GatehouseClient: option "url" must be an absolute http(s) URL, got ${JSON.stringify(options.url)}`);
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      throw new TypeError(`GatehouseClient: option "url" must use http or https, got ${base.protocol}`);
    }
    if (typeof options.apiKey !== 'string' || options.apiKey.trim() === '') {
      throw new TypeError('GatehouseClient: option "apiKey" must be a non-empty string');
    }
    const httpUrl = `${base.origin}${base.pathname.replace(/\/+$/, '')}${GRAPHQL_PATH}`;
    this.#httpUrl = httpUrl;
    this.#wsUrl = httpUrl.replace(/^http/, 'ws');
    this.#apiKey = options.apiKey;
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#retries = nonNegativeInteger('retries', options.retries, 3);
    this.#retryDelayMs = nonNegativeInteger('retryDelayMs', options.retryDelayMs, 200);
    this.#timeoutMs = nonNegativeInteger('timeoutMs', options.timeoutMs, 30_000);
    this.#webSocketImpl = options.webSocketImpl ?? WebSocket;
  }

  /** The GraphQL endpoint requests go to, e.g. `http://localhost:4000/graphql`. */
  get graphqlUrl(): string {
    return this.#httpUrl;
  }

  /**
   * Runs a query or mutation and resolves to its `data`.
   *
   * Retries network errors and 502/503/504 responses up to `retries` times with exponential
   * backoff; never retries GraphQL errors or other statuses.
   *
   * @throws {GatehouseAuthError} on 401 (the key is missing, unknown or revoked).
   * @throws {GatehouseError} when the response has top-level `errors` (`code` is the first
   *   error's `extensions.code`) or is not a GraphQL response (`HTTP_ERROR`).
   * @throws {GatehouseNetworkError} when no attempt got a response (`NETWORK_ERROR`, `TIMEOUT`).
   *
   * Mutation failures are not thrown here: they are union members of the data. Use
   * {@link unwrap} to turn them into a {@link GatehouseMutationError}.
   */
  async request<TResult, TVariables>(
    document: TypedDocumentNode<TResult, TVariables>,
    variables?: TVariables,
    options: RequestOptions = {},
  ): Promise<TResult> {
    const { query, operationName } = prepare(document);
    const body = JSON.stringify({ query, operationName, variables: variables ?? {} });
    const requestId = randomUUID();
    const headers = {
      accept: 'application/graphql-response+json, application/json',
      'content-type': 'application/json',
      authorization: `Bearer ${this.#apiKey}`,
      'x-request-id': requestId,
    };
    for (let attempt = 1; ; attempt++) {
      const timeout = AbortSignal.timeout(this.#timeoutMs);
      const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
      let status: number;
      let text: string;
      try {
        const response = await this.#fetch(this.#httpUrl, { method: 'POST', headers, body, signal });
        status = response.status;
        // Reading the body is part of the attempt: a connection can also break mid-body.
        text = await response.text();
      } catch (err) {
        if (options.signal?.aborted) throw err;
        if (timeout.aborted) {
          throw new GatehouseNetworkError('TIMEOUT', `no response from ${this.#httpUrl} within ${this.#timeoutMs} ms`, attempt, {
            cause: err,
            requestId,
          });
        }
        if (attempt > this.#retries) {
          const reason = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
          throw new GatehouseNetworkError('NETWORK_ERROR', `cannot reach ${this.#httpUrl} after ${attempt} attempts: ${reason}`, attempt, {
            cause: err,
            requestId,
          });
        }
        await this.#backoff(attempt, options.signal);
        continue;
      }
      if (RETRYABLE_STATUS.has(status) && attempt <= this.#retries) {
        await this.#backoff(attempt, options.signal);
        continue;
      }
      return this.#parse<TResult>(status, text, requestId);
    }
  }

  /**
   * Starts a subscription over graphql-ws and iterates its `data`. The subscription starts at
   * once, so events committed after this call are not missed even before the first `next()`.
   * Calling `return()` on the iterator (or leaving a `for await` loop) ends it; the socket,
   * shared by this client's subscriptions, closes when the last one ends.
   *
   * The iterator throws a {@link GatehouseAuthError} when the key is refused, and a
   * {@link GatehouseError} on GraphQL errors or when the socket closes with an error.
   */
  subscribe<TResult, TVariables>(document: TypedDocumentNode<TResult, TVariables>, variables?: TVariables): AsyncIterableIterator<TResult> {
    const { query, operationName } = prepare(document);
    const source = this.#webSocket().iterate<TResult>({
      query,
      ...(operationName ? { operationName } : {}),
      ...(variables ? { variables: variables as Record<string, unknown> } : {}),
    });
    let finished = false;
    const finish = async (): Promise<IteratorReturnResult<undefined>> => {
      if (!finished) {
        finished = true;
        await source.return?.();
      }
      return { done: true, value: undefined };
    };
    const iterator: AsyncIterableIterator<TResult> = {
      next: async (): Promise<IteratorResult<TResult>> => {
        if (finished) return { done: true, value: undefined };
        let step: IteratorResult<FormattedExecutionResult<TResult, unknown>>;
        try {
          step = await source.next();
        } catch (err) {
          finished = true;
          throw this.#subscriptionError(err);
        }
        if (step.done) return finish();
        if (step.value.errors?.length) {
          await finish();
          throw graphQLErrorOf(step.value.errors, undefined, undefined);
        }
        return { done: false, value: step.value.data as TResult };
      },
      return: finish,
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }

  /** Ends every subscription and closes the socket. The client stays usable afterwards. */
  async close(): Promise<void> {
    const ws = this.#ws;
    this.#ws = undefined;
    await ws?.dispose();
  }

  #webSocket(): WebSocketClient {
    this.#ws ??= createClient({
      url: this.#wsUrl,
      webSocketImpl: this.#webSocketImpl,
      connectionParams: { authorization: `Bearer ${this.#apiKey}` },
      lazy: true,
      retryAttempts: this.#retries,
      retryWait: (retries) => sleep(this.#delay(retries + 1)),
      // A refused key stays refused: fail the subscription instead of reconnecting.
      shouldRetry: (errOrCloseEvent) => !(isCloseEvent(errOrCloseEvent) && errOrCloseEvent.code === WS_FORBIDDEN),
    });
    return this.#ws;
  }

  #subscriptionError(err: unknown): GatehouseError {
    if (err instanceof GatehouseError) return err;
    if (isFormattedErrors(err)) return graphQLErrorOf(err, undefined, undefined);
    if (isCloseEvent(err)) {
      const detail = `${err.code}${err.reason ? ` ${err.reason}` : ''}`;
      if (err.code === WS_FORBIDDEN) return new GatehouseAuthError(`the control plane refused the API key (WebSocket closed: ${detail})`);
      return new GatehouseError('SUBSCRIPTION_CLOSED', `the subscription socket closed: ${detail}`);
    }
    const message = err instanceof Error ? err.message : String(err);
    return new GatehouseNetworkError('NETWORK_ERROR', `cannot reach ${this.#wsUrl}: ${message}`, this.#retries + 1, { cause: err });
  }

  #parse<TResult>(status: number, text: string, requestId: string): TResult {
    let body: { data?: unknown; errors?: unknown } | undefined;
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) body = parsed;
    } catch {
      // Not JSON: handled below as a non-GraphQL response.
    }
    if (body && isFormattedErrors(body.errors) && body.errors.length > 0) {
      const error = graphQLErrorOf(body.errors, status, requestId);
      if (status === 401 && !(error instanceof GatehouseAuthError)) {
        throw new GatehouseAuthError(error.message, { status, errors: error.errors, requestId: error.requestId });
      }
      throw error;
    }
    if (status === 401) throw new GatehouseAuthError('the control plane refused the API key (HTTP 401)', { status, requestId });
    if (status < 200 || status > 299 || !body || !('data' in body) || body.data === null) {
      const snippet = text.length > 200 ? `${text.slice(0, 200)}…` : text;
      throw new GatehouseError('HTTP_ERROR', `unexpected response from ${this.#httpUrl}: HTTP ${status} ${snippet}`, { status, requestId });
    }
    return body.data as TResult;
  }

  /** Exponential backoff with jitter: the n-th retry waits between ½ and 1 × `retryDelayMs · 2ⁿ⁻¹`. */
  #delay(retry: number): number {
    const ceiling = this.#retryDelayMs * 2 ** (retry - 1);
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  async #backoff(retry: number, signal: AbortSignal | undefined): Promise<void> {
    await sleep(this.#delay(retry), undefined, signal ? { signal } : undefined);
  }
}
