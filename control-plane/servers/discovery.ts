import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport, SseError } from '@modelcontextprotocol/sdk/client/sse.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ErrorCode,
  ListPromptsResultSchema,
  ListRootsRequestSchema,
  ListResourcesResultSchema,
  ListResourceTemplatesResultSchema,
  ListToolsResultSchema,
  McpError,
  type Implementation,
  type JSONRPCMessage,
  type MessageExtraInfo,
  type ServerCapabilities,
} from '@modelcontextprotocol/sdk/types.js';
import * as z from 'zod';
import { UPSTREAM_CLIENT_CAPABILITIES } from '../../schema/snapshot/index.js';
import { featureKey, toDiscoveredFeature, type DiscoveredFeature, type FeatureKind, type JsonObject } from './feature-hash.js';

/**
 * Feature discovery: connect to an upstream MCP server with the SDK's real client, read what
 * it advertises, and disconnect. One call, one short-lived session; nothing is kept open.
 */

/** Where a server is reached. Header values may hold secrets: they never appear in errors. */
export type DiscoveryTarget =
  | {
      readonly kind: 'stdio';
      readonly command: string;
      readonly args: readonly string[];
      /** Added to a minimal inherited environment (HOME, PATH, USER, …), not to ours. */
      readonly env: Readonly<Record<string, string>>;
      readonly cwd?: string;
    }
  | { readonly kind: 'streamable-http'; readonly url: string; readonly headers: Readonly<Record<string, string>> }
  /** The legacy HTTP+SSE transport (protocol 2024-11-05). */
  | { readonly kind: 'sse'; readonly url: string; readonly headers: Readonly<Record<string, string>> };

export interface DiscoveryOptions {
  /** Deadline for the whole discovery: start, initialize and every page of every list. Default 15000 ms. */
  readonly timeoutMs?: number;
  /** How Gatehouse introduces itself in `initialize`. Default `{ name: 'gatehouse-discovery', version: '0.1.0' }`. */
  readonly clientInfo?: Implementation;
  /** Most pages read from one list before giving up with `PROTOCOL_ERROR`. Default 50. */
  readonly maxPages?: number;
}

export interface DiscoveryResult {
  readonly serverInfo: Implementation;
  /** The protocol version agreed in `initialize`. */
  readonly protocolVersion: string;
  readonly capabilities: ServerCapabilities;
  readonly instructions: string | null;
  /** Tools, then prompts, resources and resource templates, each in the server's order. */
  readonly features: readonly DiscoveredFeature[];
}

export type DiscoveryErrorCode =
  /** The deadline passed with no (complete) answer. */
  | 'TIMEOUT'
  /** A stdio command could not be started: no such executable, not executable, or no such cwd. */
  | 'SPAWN_FAILED'
  /** Nothing answered at the URL (refused, unknown host, unreachable, TLS failure) or the URL is invalid. */
  | 'CONNECT_FAILED'
  /** The server answered, but not with valid MCP: not JSON-RPC, an invalid result, an error reply, endless pages. */
  | 'PROTOCOL_ERROR'
  /** The server went away mid-conversation: the process exited or the connection dropped. */
  | 'SERVER_CRASHED'
  /** The HTTP endpoint answered with a non-success status (see `status`). */
  | 'HTTP_ERROR';

/** Where discovery was when it failed. */
export type DiscoveryPhase = 'start' | 'initialize' | 'tools/list' | 'prompts/list' | 'resources/list' | 'resources/templates/list';

/** A failed discovery. `code` is stable; `message` says what to check. Never carries header values. */
export class DiscoveryError extends Error {
  override readonly name = 'DiscoveryError';
  constructor(
    readonly code: DiscoveryErrorCode,
    message: string,
    readonly details: {
      readonly phase: DiscoveryPhase;
      /** HTTP status, for `HTTP_ERROR`. */
      readonly status?: number;
      /** The last ~4 KiB a stdio server wrote to stderr. */
      readonly stderr?: string;
      /** The stdio server's pid; the process is gone by the time the error is thrown. */
      readonly pid?: number;
    },
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const DEFAULT_TIMEOUT_MS = 15_000;
const DEFAULT_MAX_PAGES = 50;
const DEFAULT_CLIENT_INFO: Implementation = { name: 'gatehouse-discovery', version: '0.1.0' };
const STDERR_TAIL_BYTES = 4096;
/** After closing stdin, how long a stdio server gets before SIGTERM, and then before SIGKILL. */
const STDIO_EXIT_GRACE_MS = 500;
const STDIO_TERM_GRACE_MS = 1000;
const HTTP_TERMINATE_TIMEOUT_MS = 1000;

/**
 * Connects to `target`, lists every feature type the server advertises (following
 * `nextCursor`), and disconnects: Streamable HTTP sessions are ended with DELETE, stdio
 * processes are stopped (stdin closed, then SIGTERM, then SIGKILL) and reaped before this
 * returns or throws. Every failure is a `DiscoveryError`.
 */
export async function discoverServer(target: DiscoveryTarget, options: DiscoveryOptions = {}): Promise<DiscoveryResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new RangeError(`options.timeoutMs must be a positive number of milliseconds, got ${timeoutMs}`);
  }
  const maxPages = options.maxPages ?? DEFAULT_MAX_PAGES;
  if (!Number.isInteger(maxPages) || maxPages < 1) {
    throw new RangeError(`options.maxPages must be a positive integer, got ${maxPages}`);
  }

  const progress: { phase: DiscoveryPhase } = { phase: 'start' };
  let transport: ObservedTransport;
  try {
    transport = new ObservedTransport(createTransport(target));
  } catch (error) {
    const message = 'the server URL is not a valid absolute URL (expected something like https://host/mcp)';
    throw new DiscoveryError('CONNECT_FAILED', message, { phase: 'start' }, { cause: error });
  }
  // The gateway's own capabilities: a server that offers some tools only to clients able to
  // sample or elicit must list them here as it does to the gateway's sessions. Discovery has
  // no roots and no person or model to ask.
  const client = new Client(options.clientInfo ?? DEFAULT_CLIENT_INFO, { capabilities: UPSTREAM_CLIENT_CAPABILITIES });
  client.setRequestHandler(ListRootsRequestSchema, () => ({ roots: [] }));
  for (const schema of [CreateMessageRequestSchema, ElicitRequestSchema]) {
    client.setRequestHandler(schema, (request) => {
      throw new McpError(ErrorCode.InvalidRequest, `feature discovery cannot answer ${request.method}: it only lists what the server offers`);
    });
  }

  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), timeoutMs);
  const timedOut = new Promise<never>((_, reject) =>
    deadline.signal.addEventListener('abort', () => reject(TIMED_OUT), { once: true }),
  );
  const work = discover(client, transport, { signal: deadline.signal, timeoutMs, maxPages }, progress);
  // Whichever loses the race below still settles later; neither may surface as unhandled.
  work.catch(() => undefined);
  timedOut.catch(() => undefined);

  let result: DiscoveryResult | undefined;
  let failure: unknown;
  try {
    result = await Promise.race([work, timedOut]);
  } catch (error) {
    failure = error;
  } finally {
    clearTimeout(timer);
  }
  await shutdown(client, transport);
  if (result) return result;
  throw classify(failure, target, transport, progress.phase, timeoutMs);
}

const TIMED_OUT = Symbol('timed out');

interface RunLimits {
  readonly signal: AbortSignal;
  readonly timeoutMs: number;
  readonly maxPages: number;
}

async function discover(
  client: Client,
  transport: ObservedTransport,
  limits: RunLimits,
  progress: { phase: DiscoveryPhase },
): Promise<DiscoveryResult> {
  const requestOptions = { signal: limits.signal, timeout: limits.timeoutMs };
  progress.phase = 'initialize';
  await client.connect(transport, requestOptions);
  const capabilities = client.getServerCapabilities() ?? {};
  const serverInfo = client.getServerVersion();
  if (!serverInfo || !transport.protocolVersion) {
    throw new ProtocolViolation('initialize', 'the initialize result lacks serverInfo or protocolVersion');
  }

  const features: DiscoveredFeature[] = [];
  const list = async (kind: FeatureKind, optional = false) => {
    progress.phase = LISTS[kind].method;
    features.push(...(await listAll(client, kind, limits, requestOptions, optional)));
  };
  if (capabilities.tools) await list('tool');
  if (capabilities.prompts) await list('prompt');
  if (capabilities.resources) {
    await list('resource');
    // Servers often advertise resources without implementing templates; treat that as none.
    await list('resourceTemplate', true);
  }
  return {
    serverInfo,
    protocolVersion: transport.protocolVersion,
    capabilities,
    instructions: client.getInstructions() ?? null,
    features,
  };
}

const LISTS = {
  tool: { method: 'tools/list', field: 'tools', schema: ListToolsResultSchema },
  prompt: { method: 'prompts/list', field: 'prompts', schema: ListPromptsResultSchema },
  resource: { method: 'resources/list', field: 'resources', schema: ListResourcesResultSchema },
  resourceTemplate: {
    method: 'resources/templates/list',
    field: 'resourceTemplates',
    schema: ListResourceTemplatesResultSchema,
  },
} as const satisfies Record<FeatureKind, { method: DiscoveryPhase; field: string; schema: unknown }>;

/** Keeps the page exactly as sent; the SDK's own schemas would drop fields they do not know. */
const RawPageSchema = z.looseObject({ nextCursor: z.string().optional() });

async function listAll(
  client: Client,
  kind: FeatureKind,
  limits: RunLimits,
  requestOptions: { signal: AbortSignal; timeout: number },
  optional: boolean,
): Promise<DiscoveredFeature[]> {
  const { method, field, schema } = LISTS[kind];
  const features: DiscoveredFeature[] = [];
  const seen = new Set<string>();
  const cursors = new Set<string>();
  let cursor: string | undefined;
  for (let page = 1; ; page += 1) {
    let raw: z.infer<typeof RawPageSchema>;
    try {
      raw = await client.request({ method, params: cursor === undefined ? {} : { cursor } }, RawPageSchema, requestOptions);
    } catch (error) {
      if (optional && error instanceof McpError && error.code === ErrorCode.MethodNotFound) return [];
      throw error;
    }
    const checked = schema.safeParse(raw);
    if (!checked.success) {
      throw new ProtocolViolation(method, `the ${method} result is not valid MCP: ${summarizeIssues(checked.error)}`);
    }
    const items = raw[field];
    for (const item of Array.isArray(items) ? (items as JsonObject[]) : []) {
      const feature = toDiscoveredFeature(kind, item);
      if (!feature) continue;
      const key = featureKey(feature);
      if (seen.has(key)) {
        throw new ProtocolViolation(method, `${method} lists ${kind} \`${feature.name}\` more than once`);
      }
      seen.add(key);
      features.push(feature);
    }
    cursor = raw.nextCursor;
    if (cursor === undefined) return features;
    if (cursors.has(cursor)) {
      throw new ProtocolViolation(method, `${method} returned cursor \`${cursor.slice(0, 80)}\` twice; the server's pagination loops`);
    }
    cursors.add(cursor);
    if (page >= limits.maxPages) {
      throw new ProtocolViolation(method, `${method} still had more pages after ${limits.maxPages}; stopped (maxPages)`);
    }
  }
}

function summarizeIssues(error: { issues?: readonly { path: readonly PropertyKey[]; message: string }[] }): string {
  const issues = error.issues ?? [];
  const shown = issues.slice(0, 3).map((issue) => `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`);
  return shown.join('; ') + (issues.length > 3 ? `; and ${issues.length - 3} more` : '');
}

/** A rule of MCP the server broke, found by us rather than by the SDK. */
class ProtocolViolation extends Error {
  constructor(
    readonly phase: DiscoveryPhase,
    message: string,
  ) {
    super(message);
  }
}

function createTransport(target: DiscoveryTarget): Transport {
  switch (target.kind) {
    case 'stdio':
      return new StdioClientTransport({
        command: target.command,
        args: [...target.args],
        env: { ...target.env },
        ...(target.cwd === undefined ? {} : { cwd: target.cwd }),
        stderr: 'pipe',
      });
    case 'streamable-http':
      return new StreamableHTTPClientTransport(new URL(target.url), {
        requestInit: { headers: { ...target.headers } },
        // Discovery is one short exchange: do not retry a dropped stream in the background.
        reconnectionOptions: { maxReconnectionDelay: 1000, initialReconnectionDelay: 1000, reconnectionDelayGrowFactor: 1, maxRetries: 0 },
      });
    case 'sse':
      return new SSEClientTransport(new URL(target.url), { requestInit: { headers: { ...target.headers } } });
  }
}

/**
 * Wraps a client transport to see what the `Client` does not expose: the negotiated
 * protocol version, the child pid and its stderr, output that was not JSON-RPC, and whether
 * the other side closed first.
 */
class ObservedTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage, extra?: MessageExtraInfo) => void;

  protocolVersion: string | undefined;
  pid: number | undefined;
  /** Set once we begin closing; a close before that came from the other side. */
  closing = false;
  closedByPeer = false;
  /** For stdio: true once the child has exited and been reaped (its `close` event). */
  exited = false;
  readonly invalidOutput: string[] = [];
  private stderrTail = '';
  private readonly exitWaiters: (() => void)[] = [];

  constructor(readonly inner: Transport) {
    inner.onclose = () => {
      if (!this.closing) this.closedByPeer = true;
      if (inner instanceof StdioClientTransport) {
        this.exited = true;
        for (const wake of this.exitWaiters.splice(0)) wake();
      }
      this.onclose?.();
    };
    inner.onerror = (error) => {
      if (isParseFailure(error) && this.invalidOutput.length < 5) this.invalidOutput.push(error.message.slice(0, 200));
      this.onerror?.(error);
    };
    inner.onmessage = (message, extra) => this.onmessage?.(message, extra);
    if (inner instanceof StdioClientTransport) {
      inner.stderr?.on('data', (chunk: Buffer) => {
        this.stderrTail = (this.stderrTail + chunk.toString('utf8')).slice(-STDERR_TAIL_BYTES);
      });
    }
  }

  /** Resolves when the stdio child has exited, or after `ms`, whichever is first. */
  async waitForExit(ms: number): Promise<void> {
    if (this.exited) return;
    await withTimeout(new Promise<void>((resolve) => this.exitWaiters.push(resolve)), ms);
  }

  get sessionId(): string | undefined {
    return this.inner.sessionId;
  }

  get stderr(): string | undefined {
    return this.inner instanceof StdioClientTransport ? this.stderrTail : undefined;
  }

  async start(): Promise<void> {
    await this.inner.start();
    if (this.inner instanceof StdioClientTransport) this.pid = this.inner.pid ?? undefined;
  }

  send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    return this.inner.send(message, options);
  }

  setProtocolVersion(version: string): void {
    this.protocolVersion = version;
    this.inner.setProtocolVersion?.(version);
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.inner.close();
  }
}

function isParseFailure(error: Error): boolean {
  return error instanceof SyntaxError || error.name === 'ZodError' || error.name === '$ZodError';
}

async function shutdown(client: Client, transport: ObservedTransport): Promise<void> {
  transport.closing = true;
  const { inner } = transport;
  if (inner instanceof StreamableHTTPClientTransport && inner.sessionId !== undefined) {
    // client.close() alone leaves the session open on the server (SDK 1.32).
    await withTimeout(inner.terminateSession().catch(() => undefined), HTTP_TERMINATE_TIMEOUT_MS);
  }
  const closed = Promise.allSettled([client.close(), transport.close()]);
  if (transport.pid === undefined) {
    await withTimeout(closed, STDIO_EXIT_GRACE_MS + STDIO_TERM_GRACE_MS);
    return;
  }
  // The SDK escalates after 2 s at each step; a discovery should not take that long to end.
  // Signal only while the child is known not to have exited, so a reused pid is never hit.
  const pid = transport.pid;
  await transport.waitForExit(STDIO_EXIT_GRACE_MS);
  for (const name of ['SIGTERM', 'SIGKILL'] as const) {
    if (transport.exited) return;
    try {
      process.kill(pid, name);
    } catch {
      return;
    }
    await transport.waitForExit(STDIO_TERM_GRACE_MS);
  }
}

async function withTimeout(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** Names the target in messages: the command without its arguments, the URL without credentials. */
function describeTarget(target: DiscoveryTarget): string {
  if (target.kind === 'stdio') return `stdio server \`${target.command}\``;
  try {
    const url = new URL(target.url);
    url.username = '';
    url.password = '';
    url.search = '';
    return url.toString();
  } catch {
    return 'the configured URL';
  }
}

const CONNECT_ERROR_CODES: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connection timed out',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  CERT_HAS_EXPIRED: 'TLS certificate expired',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed TLS certificate',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'TLS certificate not trusted',
  ERR_TLS_CERT_ALTNAME_INVALID: 'TLS certificate does not match the host',
};
const DROPPED_ERROR_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);
const SPAWN_ERROR_CODES = new Set(['ENOENT', 'EACCES', 'ENOTDIR', 'EISDIR', 'ENOEXEC', 'EPERM']);

function classify(
  error: unknown,
  target: DiscoveryTarget,
  transport: ObservedTransport,
  phase: DiscoveryPhase,
  timeoutMs: number,
): DiscoveryError {
  const where = describeTarget(target);
  const stderr = transport.stderr;
  const details = {
    phase,
    ...(stderr === undefined ? {} : { stderr }),
    ...(transport.pid === undefined ? {} : { pid: transport.pid }),
  };
  const make = (code: DiscoveryErrorCode, message: string, extra: { status?: number; phase?: DiscoveryPhase } = {}) =>
    new DiscoveryError(code, message + stderrHint(stderr), { ...details, ...extra }, { cause: error });

  if (error === TIMED_OUT || isAbort(error) || (error instanceof McpError && error.code === ErrorCode.RequestTimeout)) {
    if (transport.invalidOutput.length > 0) {
      return make(
        'PROTOCOL_ERROR',
        `${where} wrote output that is not JSON-RPC and never answered ${phase} (${transport.invalidOutput[0]}); ` +
          'a stdio server must write only MCP messages to stdout',
      );
    }
    return make('TIMEOUT', `${where} did not answer ${phase} within ${timeoutMs} ms`);
  }
  if (error instanceof ProtocolViolation) return make('PROTOCOL_ERROR', `${where}: ${error.message}`);

  const code = errorCode(error);
  if (target.kind === 'stdio' && phase === 'initialize' && transport.pid === undefined && code && SPAWN_ERROR_CODES.has(code)) {
    const cwd = target.cwd === undefined ? '' : ` and that the working directory ${target.cwd} exists`;
    return make('SPAWN_FAILED', `could not start ${where} (${code}): check that \`${target.command}\` is installed, on PATH and executable${cwd}`, {
      phase: 'start',
    });
  }
  if (error instanceof StreamableHTTPError || error instanceof SseError) {
    const status = error.code;
    if (status !== undefined && status >= 100) {
      return make('HTTP_ERROR', `${where} answered ${phase} with HTTP ${status}${httpHint(status)}`, { status });
    }
    const cause = code ? CONNECT_ERROR_CODES[code] : undefined;
    if (cause) return make('CONNECT_FAILED', `could not connect to ${where}: ${cause} (${code})`);
    if (status === undefined && target.kind === 'sse') {
      return make('CONNECT_FAILED', `could not open the SSE stream at ${where}: ${error.message}`);
    }
    return make('PROTOCOL_ERROR', `${where} answered ${phase} with something that is not MCP: ${error.message}`);
  }
  if (code && CONNECT_ERROR_CODES[code]) {
    return make('CONNECT_FAILED', `could not connect to ${where}: ${CONNECT_ERROR_CODES[code]} (${code}); is the server running and the URL right?`);
  }
  if ((code && DROPPED_ERROR_CODES.has(code)) || transport.closedByPeer) {
    const what = target.kind === 'stdio' ? 'exited' : 'dropped the connection';
    return make('SERVER_CRASHED', `${where} ${what} during ${phase}`);
  }
  if (error instanceof McpError) {
    if (error.code === ErrorCode.ConnectionClosed) return make('SERVER_CRASHED', `${where} closed the connection during ${phase}`);
    return make('PROTOCOL_ERROR', `${where} answered ${phase} with error ${error.code}: ${error.message.replace(/^MCP error -?\d+: /, '')}`);
  }
  if (error instanceof Error && (isParseFailure(error) || /protocol version/i.test(error.message))) {
    return make('PROTOCOL_ERROR', `${where} answered ${phase} with something that is not valid MCP: ${error.message.slice(0, 300)}`);
  }
  if (target.kind !== 'stdio' && error instanceof TypeError) {
    return make('CONNECT_FAILED', `could not connect to ${where}: ${error.message}`);
  }
  return make('PROTOCOL_ERROR', `${where} failed during ${phase}: ${error instanceof Error ? error.message : String(error)}`);
}

/** The errno or undici code of an error or of the errors that caused it. */
function errorCode(error: unknown): string | undefined {
  for (let current = error, depth = 0; current && depth < 5; depth += 1) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    const nested = (current as { errors?: unknown[] }).errors?.[0];
    current = (current as { cause?: unknown }).cause ?? nested;
  }
  return undefined;
}

function isAbort(error: unknown): boolean {
  return error instanceof Error && error.name === 'AbortError';
}

function httpHint(status: number): string {
  if (status === 401 || status === 403) return ': check the credentials configured for this server';
  if (status === 404) return ': check the URL path (Streamable HTTP servers usually serve /mcp)';
  if (status === 405) return ': the URL does not accept POST; is this a legacy SSE server?';
  return '';
}

function stderrHint(stderr: string | undefined): string {
  const trimmed = stderr?.trim();
  if (!trimmed) return '';
  return `. Last stderr: ${trimmed.slice(-500)}`;
}
