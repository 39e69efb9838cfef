import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Agent, Dispatcher } from 'undici';
import { SnapshotSecretError, openSnapshotSecret } from '../../snapshot/secrets.js';
import type { EncryptedSecret, SnapshotRuleEngine } from '../../snapshot/types.js';
import { EngineConfigurationError, type EngineAdapter, type OpenedEngine, type PreparedCall } from './adapter.js';
import { bedrockAdapter } from './bedrock-adapter.js';
import { lakeraAdapter } from './lakera-adapter.js';
import { SIGNATURE_HEADER } from './signature.js';
import { checkDestinationUrl, createEngineDispatcher, EngineDestinationError, findDestinationError, type LookupFunction } from './ssrf.js';
import {
  DEFAULT_ENGINE_MAX_BYTES,
  clipReason,
  engineError,
  type EngineEnvelope,
  type EngineErrorCode,
  type EngineEvaluation,
  type EngineVerdict,
} from './verdict.js';
import { webhookAdapter } from './webhook-adapter.js';

/** Opens one of the engine's encrypted values; throws when it cannot. */
export type OpenSecret = (secret: EncryptedSecret) => string;

export interface RuleEngineClientOptions {
  /** Cap on the envelope sent and on the answer read, in bytes. Default 16 MiB. */
  readonly maxBytes?: number;
  /** Extra attempts after a network failure or a 502/503/504. Default 2. */
  readonly retries?: number;
  /** First backoff delay; doubles per retry, with jitter, within the timeout. Default 200 ms. */
  readonly retryDelayMs?: number;
  /** Wall clock in epoch ms (envelope timestamp, signature `t`, SigV4 date). Default `Date.now`. */
  readonly clock?: () => number;
  /** Replaces the system resolver for the post-resolution address check (tests fake DNS). */
  readonly lookup?: LookupFunction;
  /** Sockets kept per engine origin. Default 32. */
  readonly connections?: number;
}

export interface EvaluateOptions {
  /** The caller's cancellation: aborting ends the evaluation with an `ABORTED` error verdict. */
  readonly signal?: AbortSignal;
  /** The MCP client's request headers (lowercase names); those named in `forwardHeaders` are copied. */
  readonly callerHeaders?: { readonly [name: string]: string | readonly string[] | undefined };
}

export interface ConnectionTestResult {
  /** True when the engine answered with a verdict other than `error`. */
  readonly ok: boolean;
  readonly verdict: EngineVerdict;
  readonly durationMs: number;
}

/** Default `timeoutMs` when the snapshot's is not a positive number. */
export const DEFAULT_ENGINE_TIMEOUT_MS = 30_000;

/** Names never configured on, nor forwarded to, an engine: framing, our signature, and (forwarded) the caller's credentials. */
const RESERVED_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer', 'expect', SIGNATURE_HEADER]);
/** Never forwarded: the caller's Gatehouse token and cookies must not leave the gateway. */
export const UNFORWARDABLE_HEADERS: ReadonlySet<string> = new Set([...RESERVED_HEADERS, 'authorization', 'proxy-authorization', 'cookie', 'content-type']);
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;
const RETRY_STATUSES = new Set([502, 503, 504]);
const RETRY_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CLOSED',
]);

/** Opens snapshot secrets with the snapshot keys the data plane holds (by `keyId`). */
export function snapshotSecretOpener(secretKeys: ReadonlyMap<string, Uint8Array>): OpenSecret {
  return (secret) => {
    const key = secretKeys.get(secret.keyId);
    if (!key) throw new Error(`sealed with snapshot key ${secret.keyId}, which this data plane was not given`);
    try {
      return openSnapshotSecret(key, secret);
    } catch (error) {
      if (error instanceof SnapshotSecretError) throw new Error(`cannot be opened (${error.code})`);
      throw error;
    }
  };
}

/** The evaluation the test-connection mutation sends: a harmless request-leg text. */
export function connectionTestEvaluation(workspaceId: string): EngineEvaluation {
  return {
    workspace: { id: workspaceId },
    gateway: { id: 'connection-test', slug: 'connection-test' },
    server: { id: 'connection-test', name: 'connection-test' },
    feature: { type: 'tools', name: 'connection-test' },
    caller: { userId: null, connectionId: 'connection-test', hostId: 'connection-test' },
    hook: 'request',
    payload: { text: 'Gatehouse rule engine connection test' },
  };
}

type Attempt = { readonly final: EngineVerdict } | { readonly retry: { readonly code: EngineErrorCode; readonly reason: string } };

/**
 * The data plane's client of one custom rule engine, built once per snapshot: it opens
 * the engine's secrets, checks its URL, and keeps one keep-alive pool whose connections
 * are checked after DNS resolution. `evaluate` never throws; every failure is an `error`
 * verdict with a code and a reason, for the rule's failure mode to decide on.
 * A configuration that cannot work (bad URL, unopenable secret, missing adapter option)
 * does not throw either: every evaluation answers its `CONFIGURATION` /
 * `DESTINATION_REFUSED` error.
 */
export class RuleEngineClient {
  readonly engine: SnapshotRuleEngine;
  readonly timeoutMs: number;
  readonly #maxBytes: number;
  readonly #retries: number;
  readonly #retryDelayMs: number;
  readonly #clock: () => number;
  readonly #broken: EngineVerdict | undefined;
  readonly #adapter: EngineAdapter | undefined;
  readonly #dispatcher: Agent | undefined;
  readonly #headers: Readonly<Record<string, string>>;
  readonly #forward: readonly string[];

  constructor(engine: SnapshotRuleEngine, openSecret: OpenSecret, options: RuleEngineClientOptions = {}) {
    this.engine = engine;
    this.timeoutMs = Number.isFinite(engine.timeoutMs) && engine.timeoutMs > 0 ? engine.timeoutMs : DEFAULT_ENGINE_TIMEOUT_MS;
    this.#maxBytes = positive(options.maxBytes, 'maxBytes') ?? DEFAULT_ENGINE_MAX_BYTES;
    this.#retries = options.retries ?? 2;
    if (!Number.isInteger(this.#retries) || this.#retries < 0) throw new TypeError('RuleEngineClient option retries must be a non-negative integer');
    this.#retryDelayMs = positive(options.retryDelayMs, 'retryDelayMs') ?? 200;
    this.#clock = options.clock ?? Date.now;
    this.#forward = engine.forwardHeaders.map((name) => name.toLowerCase()).filter((name) => !UNFORWARDABLE_HEADERS.has(name));

    let broken: EngineVerdict | undefined;
    let adapter: EngineAdapter | undefined;
    const headers: Record<string, string> = {};
    try {
      const url = checkDestinationUrl(engine.url, engine.allowPrivateNetwork);
      for (const header of engine.headers) {
        const name = header.name.toLowerCase();
        if (!HEADER_NAME.test(name) || RESERVED_HEADERS.has(name)) throw new EngineConfigurationError(`header "${header.name}" cannot be set on a rule engine call`);
        const value = open(openSecret, header.value, `header ${header.name}`);
        if (/[\r\n\0]/.test(value)) throw new EngineConfigurationError(`the value of header ${header.name} contains a line break`);
        headers[name] = value;
      }
      const opened: OpenedEngine = { engine, url, headers, maxBytes: this.#maxBytes };
      switch (engine.kind) {
        case 'webhook':
          adapter = webhookAdapter(opened, open(openSecret, engine.signingSecret, 'signing secret'));
          break;
        case 'lakera':
          adapter = lakeraAdapter(opened);
          break;
        case 'bedrock':
          adapter = bedrockAdapter(opened);
          break;
        default:
          throw new EngineConfigurationError(`unknown engine kind "${String((engine as { kind: unknown }).kind)}"`);
      }
      for (const name of adapter.consumedHeaders ?? []) delete headers[name];
    } catch (error) {
      adapter = undefined;
      if (error instanceof EngineDestinationError) {
        broken = engineError(error.code === 'INVALID_URL' ? 'CONFIGURATION' : 'DESTINATION_REFUSED', `rule engine "${engine.name}": ${error.message}`);
      } else if (error instanceof EngineConfigurationError) {
        broken = engineError('CONFIGURATION', `rule engine "${engine.name}": ${error.message}`);
      } else {
        throw error;
      }
    }
    this.#broken = broken;
    this.#adapter = adapter;
    this.#headers = Object.freeze(headers);
    this.#dispatcher = adapter
      ? createEngineDispatcher({
          allowPrivateNetwork: engine.allowPrivateNetwork,
          connectTimeoutMs: Math.min(10_000, this.timeoutMs),
          ...(options.lookup ? { lookup: options.lookup } : {}),
          ...(options.connections ? { connections: options.connections } : {}),
        })
      : undefined;
  }

  /** The configuration problem every evaluation answers, if any (for the control plane's test connection). */
  get configurationError(): EngineVerdict | undefined {
    return this.#broken;
  }

  /** Sends one envelope and reads the engine's verdict. Never throws. */
  async evaluate(evaluation: EngineEvaluation, options: EvaluateOptions = {}): Promise<EngineVerdict> {
    if (this.#broken || !this.#adapter || !this.#dispatcher) return this.#broken ?? engineError('CONFIGURATION', 'rule engine client is not usable');
    if (options.signal?.aborted) return engineError('ABORTED', `the call was cancelled before rule engine "${this.engine.name}" was asked`);
    const envelope: EngineEnvelope = {
      version: 1,
      id: evaluation.id ?? randomUUID(),
      timestamp: new Date(this.#clock()).toISOString(),
      workspace: evaluation.workspace,
      gateway: evaluation.gateway,
      server: evaluation.server,
      feature: evaluation.feature,
      caller: evaluation.caller,
      hook: evaluation.hook,
      payload: evaluation.payload,
    };
    let call: PreparedCall;
    try {
      const prepared = this.#adapter.prepare(envelope);
      if ('verdict' in prepared) return prepared;
      call = prepared;
    } catch (error) {
      return engineError('INVALID_PAYLOAD', `the payload cannot be sent to rule engine "${this.engine.name}": ${message(error)}`);
    }
    const size = Buffer.byteLength(call.body, 'utf8');
    if (size > this.#maxBytes) {
      return engineError('TOO_LARGE', `the envelope for rule engine "${this.engine.name}" is ${size} bytes, over the ${this.#maxBytes}-byte limit`);
    }
    return this.#send(call, this.#baseHeaders(options.callerHeaders), options.signal);
  }

  /** One evaluation of {@link connectionTestEvaluation} (or the one given), timed. */
  async testConnection(evaluation: EngineEvaluation): Promise<ConnectionTestResult> {
    const started = performance.now();
    const verdict = await this.evaluate(evaluation);
    return { ok: verdict.verdict !== 'error', verdict, durationMs: performance.now() - started };
  }

  /** Closes the engine's pool (when its snapshot is replaced). In-flight calls finish first. */
  async close(): Promise<void> {
    await this.#dispatcher?.close();
  }

  #baseHeaders(callerHeaders: EvaluateOptions['callerHeaders']): Record<string, string> {
    const headers: Record<string, string> = { 'user-agent': 'Gatehouse-RuleEngine/1' };
    if (callerHeaders) {
      for (const name of this.#forward) {
        const value = callerHeaders[name];
        if (value === undefined) continue;
        const text = typeof value === 'string' ? value : value.join(', ');
        if (!/[\r\n\0]/.test(text)) headers[name] = text;
      }
    }
    // Configured headers win over forwarded ones; the adapter's (content type, signatures) over both.
    return Object.assign(headers, this.#headers);
  }

  async #send(call: PreparedCall, baseHeaders: Record<string, string>, callerSignal: AbortSignal | undefined): Promise<EngineVerdict> {
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new Error('rule engine timeout')), this.timeoutMs);
    const signal = callerSignal ? AbortSignal.any([callerSignal, deadline.signal]) : deadline.signal;
    const endsAt = performance.now() + this.timeoutMs;
    try {
      for (let attempt = 0; ; attempt++) {
        const outcome = await this.#attempt(call, { ...baseHeaders, ...call.headers(this.#clock()) }, signal, deadline.signal, endsAt);
        if ('final' in outcome) return outcome.final;
        if (deadline.signal.aborted) return this.#timeout();
        if (callerSignal?.aborted) return this.#aborted();
        const delay = this.#retryDelayMs * 2 ** attempt * (0.5 + Math.random() / 2);
        if (attempt >= this.#retries || performance.now() + delay >= endsAt) {
          const tries = attempt + 1;
          return engineError(outcome.retry.code, `${outcome.retry.reason} (${tries} attempt${tries === 1 ? '' : 's'})`);
        }
        const slept = await sleep(delay, signal);
        if (!slept) return deadline.signal.aborted ? this.#timeout() : this.#aborted();
      }
    } finally {
      clearTimeout(timer);
    }
  }

  async #attempt(call: PreparedCall, headers: Record<string, string>, signal: AbortSignal, deadline: AbortSignal, endsAt: number): Promise<Attempt> {
    const name = this.engine.name;
    const remaining = Math.max(1, Math.ceil(endsAt - performance.now()));
    let response: Dispatcher.ResponseData;
    try {
      response = await this.#dispatcher!.request({
        origin: call.url.origin,
        path: `${call.url.pathname}${call.url.search}`,
        method: call.method,
        headers,
        body: call.body,
        signal,
        headersTimeout: remaining,
        bodyTimeout: remaining,
      });
    } catch (error) {
      return this.#failure(error, signal, deadline);
    }
    try {
      const status = response.statusCode;
      if (status >= 300 && status < 400) {
        await discard(response);
        const location = response.headers['location'];
        const target = typeof location === 'string' ? describeLocation(location, call.url) : 'no Location';
        return { final: engineError('REDIRECT', `rule engine "${name}" answered HTTP ${status} redirecting to ${target}; redirects are not followed`) };
      }
      if (status < 200 || status >= 300) {
        const detail = await errorDetail(response);
        const reason = `rule engine "${name}" answered HTTP ${status}${detail ? `: ${detail}` : ''}`;
        return RETRY_STATUSES.has(status) ? { retry: { code: 'HTTP_STATUS', reason } } : { final: engineError('HTTP_STATUS', reason) };
      }
      const declared = Number(response.headers['content-length']);
      if (Number.isFinite(declared) && declared > this.#maxBytes) {
        response.body.destroy();
        return { final: this.#tooLarge(`${declared} bytes`) };
      }
      const chunks: Buffer[] = [];
      let total = 0;
      for await (const chunk of response.body) {
        total += (chunk as Buffer).length;
        if (total > this.#maxBytes) {
          response.body.destroy();
          return { final: this.#tooLarge(`more than ${this.#maxBytes} bytes`) };
        }
        chunks.push(chunk as Buffer);
      }
      let answer: unknown;
      try {
        answer = JSON.parse(Buffer.concat(chunks, total).toString('utf8'));
      } catch {
        return { final: engineError('INVALID_RESPONSE', `rule engine "${name}" answered ${total === 0 ? 'an empty body' : 'a body that is not valid JSON'}`) };
      }
      return { final: call.interpret(answer) };
    } catch (error) {
      response.body.destroy();
      return this.#failure(error, signal, deadline);
    }
  }

  #failure(error: unknown, signal: AbortSignal, deadline: AbortSignal): Attempt {
    if (signal.aborted) return { final: deadline.aborted ? this.#timeout() : this.#aborted() };
    const refused = findDestinationError(error);
    if (refused) return { final: engineError('DESTINATION_REFUSED', `rule engine "${this.engine.name}": ${refused.message}`) };
    const code = errorCode(error);
    if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return { final: this.#timeout() };
    const reason = `rule engine "${this.engine.name}" could not be reached: ${code ?? message(error)}`;
    return code && RETRY_CODES.has(code) ? { retry: { code: 'UNREACHABLE', reason } } : { final: engineError('UNREACHABLE', reason) };
  }

  #timeout(): EngineVerdict {
    return engineError('TIMEOUT', `rule engine "${this.engine.name}" did not answer within ${this.timeoutMs} ms`);
  }

  #aborted(): EngineVerdict {
    return engineError('ABORTED', `the call was cancelled while rule engine "${this.engine.name}" was evaluating it`);
  }

  #tooLarge(size: string): EngineVerdict {
    return engineError('TOO_LARGE', `rule engine "${this.engine.name}" answered ${size}, over the ${this.#maxBytes}-byte limit`);
  }
}

/** One client per engine of a snapshot, by engine id. Close them all when the snapshot is replaced. */
export function createRuleEngineClients(
  engines: readonly SnapshotRuleEngine[],
  openSecret: OpenSecret,
  options: RuleEngineClientOptions = {},
): Map<string, RuleEngineClient> {
  return new Map(engines.map((engine) => [engine.id, new RuleEngineClient(engine, openSecret, options)]));
}

function positive(value: number | undefined, option: string): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isFinite(value) || value <= 0) throw new TypeError(`RuleEngineClient option ${option} must be a positive number`);
  return value;
}

function open(openSecret: OpenSecret, secret: EncryptedSecret, what: string): string {
  try {
    return openSecret(secret);
  } catch (error) {
    throw new EngineConfigurationError(`the ${what} ${message(error)}`);
  }
}

function message(error: unknown): string {
  return clipReason(error instanceof Error ? error.message : String(error)).slice(0, 200);
}

function errorCode(error: unknown): string | undefined {
  for (let current = error, depth = 0; current && depth < 6; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

async function discard(response: Dispatcher.ResponseData): Promise<void> {
  try {
    await response.body.dump({ limit: 64 * 1024 });
  } catch {
    response.body.destroy();
  }
}

/** Where a redirect pointed, without its path or query (they may carry tokens). */
function describeLocation(location: string, base: URL): string {
  try {
    const target = new URL(location, base);
    return `${target.protocol}//${target.host}`;
  } catch {
    return 'an invalid Location';
  }
}

/** A short `message` from a JSON error body (AWS and most APIs send one), or nothing. */
async function errorDetail(response: Dispatcher.ResponseData): Promise<string | undefined> {
  const limit = 4096;
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of response.body) {
      chunks.push(chunk as Buffer);
      total += (chunk as Buffer).length;
      if (total >= limit) {
        response.body.destroy();
        break;
      }
    }
  } catch {
    return undefined;
  }
  try {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    const error = body['error'];
    const text =
      typeof body['message'] === 'string'
        ? body['message']
        : typeof body['Message'] === 'string'
          ? body['Message']
          : typeof error === 'string'
            ? error
            : typeof (error as { message?: unknown })?.message === 'string'
              ? (error as { message: string }).message
              : undefined;
    return text === undefined ? undefined : clipReason(text).slice(0, 200);
  } catch {
    return undefined;
  }
}
