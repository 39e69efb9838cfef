/**
 * A lean MCP client for the load generator: Streamable HTTP over one undici Pool per
 * origin, JSON or SSE answers, session and protocol headers. It speaks the same protocol
 * as the SDK's Client (checked by test/integration/bench/lean-client.test.ts) at a
 * fraction of the per-call cost, so the generator measures the server, not itself.
 */
import { Pool } from 'undici';

export const LEAN_PROTOCOL_VERSION = '2025-06-18';

export interface JsonRpcAnswer {
  readonly id: number | string | null;
  readonly result?: Record<string, unknown>;
  readonly error?: { code: number; message: string; data?: unknown };
}

export class McpHttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`HTTP ${status}: ${body.slice(0, 300)}`);
  }
}

const pools = new Map<string, Pool>();

/** One keep-alive pool per origin, shared by every session of this process. */
export function poolFor(origin: string, connections = 256): Pool {
  let pool = pools.get(origin);
  if (!pool) {
    pool = new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 60_000 });
    pools.set(origin, pool);
  }
  return pool;
}

export async function closePools(): Promise<void> {
  await Promise.all([...pools.values()].map((pool) => pool.close()));
  pools.clear();
}

export class LeanMcpSession {
  private readonly pool: Pool;
  private readonly path: string;
  private sessionId: string | undefined;
  private protocolVersion: string | undefined;
  private nextId = 1;

  constructor(
    url: string,
    private readonly headers: Record<string, string> = {},
  ) {
    const parsed = new URL(url);
    this.pool = poolFor(parsed.origin);
    this.path = parsed.pathname + parsed.search;
  }

  get id(): string | undefined {
    return this.sessionId;
  }

  /** initialize + notifications/initialized; returns the server's initialize result. */
  async initialize(clientName = 'gatehouse-bench'): Promise<Record<string, unknown>> {
    const answer = await this.request('initialize', {
      protocolVersion: LEAN_PROTOCOL_VERSION,
      capabilities: {},
      clientInfo: { name: clientName, version: '1.0.0' },
    });
    const result = unwrap(answer);
    this.protocolVersion = String(result.protocolVersion);
    await this.notify('notifications/initialized');
    return result;
  }

  callTool(name: string, args: Record<string, unknown>): Promise<Record<string, unknown>> {
    return this.request('tools/call', { name, arguments: args }).then(unwrap);
  }

  listTools(cursor?: string): Promise<Record<string, unknown>> {
    return this.request('tools/list', cursor ? { cursor } : {}).then(unwrap);
  }

  /** Sends one request; resolves to the JSON-RPC answer with the same id (errors included). */
  async request(method: string, params: Record<string, unknown>): Promise<JsonRpcAnswer> {
    const id = this.nextId++;
    const { statusCode, headers, body } = await this.pool.request({
      method: 'POST',
      path: this.path,
      headers: this.requestHeaders(),
      body: JSON.stringify({ jsonrpc: '2.0', id, method, params }),
    });
    const text = await body.text();
    if (method === 'initialize') {
      const session = headers['mcp-session-id'];
      if (typeof session === 'string') this.sessionId = session;
    }
    const contentType = String(headers['content-type'] ?? '');
    if (statusCode >= 400 && !contentType.includes('json')) throw new McpHttpError(statusCode, text);
    const answer = contentType.startsWith('text/event-stream') ? answerFromSse(text, id) : (JSON.parse(text) as JsonRpcAnswer);
    if (statusCode >= 400 && !answer.error) throw new McpHttpError(statusCode, text);
    return answer;
  }

  async notify(method: string, params?: Record<string, unknown>): Promise<void> {
    const { statusCode, body } = await this.pool.request({
      method: 'POST',
      path: this.path,
      headers: this.requestHeaders(),
      body: JSON.stringify({ jsonrpc: '2.0', method, ...(params ? { params } : {}) }),
    });
    const text = await body.text();
    if (statusCode !== 202 && statusCode !== 200) throw new McpHttpError(statusCode, text);
  }

  /** DELETE the session (servers that do not support it answer 405, which is fine). */
  async close(): Promise<void> {
    if (!this.sessionId) return;
    const { body } = await this.pool.request({ method: 'DELETE', path: this.path, headers: this.requestHeaders() });
    await body.dump();
    this.sessionId = undefined;
  }

  private requestHeaders(): Record<string, string> {
    return {
      ...this.headers,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...(this.sessionId ? { 'mcp-session-id': this.sessionId } : {}),
      ...(this.protocolVersion ? { 'mcp-protocol-version': this.protocolVersion } : {}),
    };
  }
}

function unwrap(answer: JsonRpcAnswer): Record<string, unknown> {
  if (answer.error) throw new Error(`JSON-RPC error ${answer.error.code}: ${answer.error.message}`);
  return answer.result ?? {};
}

/** The answer with `id` among the `data:` events of an SSE body (others are notifications). */
function answerFromSse(text: string, id: number): JsonRpcAnswer {
  for (const event of text.split(/\r?\n\r?\n/)) {
    const data = event
      .split(/\r?\n/)
      .filter((line) => line.startsWith('data:'))
      .map((line) => line.slice(5).trimStart())
      .join('\n');
    if (data === '') continue;
    const message = JSON.parse(data) as JsonRpcAnswer & { method?: string };
    if (message.method === undefined && message.id === id) return message;
  }
  throw new Error(`the SSE answer carried no response with id ${id}`);
}
