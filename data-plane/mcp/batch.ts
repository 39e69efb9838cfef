import { EventEmitter } from 'node:events';
import type { IncomingMessage as HttpRequest, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';

/** The protocol version that allows JSON-RPC batches; 2025-06-18 removed them. */
export const BATCH_PROTOCOL_VERSION = '2025-03-26';

/** Most messages one batch may carry (each runs every pipeline stage, in parallel). */
export const MAX_BATCH_MESSAGES = 100;

/**
 * Why a batch cannot be served, or undefined when it can. `version` is the session's
 * negotiated protocol version (its id's claims) or, without a session, the
 * `MCP-Protocol-Version` header (absent: 2025-03-26, as the spec says to assume).
 */
export function batchRefusal(elements: readonly unknown[], version: string | string[] | undefined): string | undefined {
  const negotiated = typeof version === 'string' ? version : BATCH_PROTOCOL_VERSION;
  if (negotiated !== BATCH_PROTOCOL_VERSION) {
    return `JSON-RPC batches are not supported by protocol version ${negotiated} (only ${BATCH_PROTOCOL_VERSION} allows them); send one message per request`;
  }
  if (elements.length === 0) return 'an empty JSON-RPC batch is not a valid request';
  if (elements.length > MAX_BATCH_MESSAGES) return `a JSON-RPC batch may carry at most ${MAX_BATCH_MESSAGES} messages; this one has ${elements.length}`;
  if (elements.some((element) => typeof element === 'object' && element !== null && (element as { method?: unknown }).method === 'initialize')) {
    return 'initialize must not be part of a JSON-RPC batch; send it alone';
  }
  return undefined;
}

/**
 * Answers a JSON-RPC batch (protocol 2025-03-26): every element goes through the
 * endpoint's own per-message handler as if POSTed alone (so admission, rate limits,
 * session checks, rules and routing apply to each), all in parallel, answered as JSON.
 * Each request's response becomes an element of the answer array, in the batch's order;
 * notifications and responses produce none; a batch of only those gets 202.
 */
export async function answerBatch(
  elements: readonly unknown[],
  req: HttpRequest,
  res: ServerResponse,
  handleOne: (req: HttpRequest, res: ServerResponse) => Promise<void>,
): Promise<void> {
  const answers = await Promise.all(
    elements.map(async (element) => {
      const captured = new CapturedResponse();
      await handleOne(elementRequest(req, JSON.stringify(element)), captured as unknown as ServerResponse);
      return captured.message();
    }),
  );
  const messages = answers.filter((answer): answer is unknown => answer !== undefined);
  if (messages.length === 0) {
    res.writeHead(202).end();
    return;
  }
  const body = JSON.stringify(messages);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
}

/** The batch's HTTP request narrowed to one element: same headers and peer, a JSON-only Accept, the element as body. */
function elementRequest(req: HttpRequest, body: string): HttpRequest {
  const buffer = Buffer.from(body, 'utf8');
  const headers = { ...req.headers, accept: 'application/json', 'content-length': String(buffer.length) };
  return Object.assign(Readable.from([buffer]), {
    method: 'POST',
    url: req.url,
    headers,
    rawHeaders: [],
    httpVersion: req.httpVersion,
    socket: req.socket,
    connection: req.socket,
  }) as unknown as HttpRequest;
}

/** Enough of a `ServerResponse` for the per-message handler: records status and body. */
class CapturedResponse extends EventEmitter {
  statusCode = 200;
  headersSent = false;
  writableEnded = false;
  destroyed = false;
  private readonly headers = new Map<string, unknown>();
  private readonly chunks: string[] = [];

  setHeader(name: string, value: unknown): this {
    this.headers.set(name.toLowerCase(), value);
    return this;
  }

  getHeader(name: string): unknown {
    return this.headers.get(name.toLowerCase());
  }

  removeHeader(name: string): void {
    this.headers.delete(name.toLowerCase());
  }

  writeHead(status: number, headers?: Record<string, unknown>): this {
    this.statusCode = status;
    for (const [name, value] of Object.entries(headers ?? {})) this.setHeader(name, value);
    this.headersSent = true;
    return this;
  }

  flushHeaders(): void {
    this.headersSent = true;
  }

  write(chunk: unknown): boolean {
    this.headersSent = true;
    this.chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8'));
    return true;
  }

  end(chunk?: unknown): this {
    if (this.writableEnded) return this;
    if (chunk !== undefined && chunk !== null && typeof chunk !== 'function') this.write(chunk);
    this.headersSent = true;
    this.writableEnded = true;
    // As a real response does: 'finish' and 'close' after the handler's own code ran.
    setImmediate(() => {
      this.emit('finish');
      this.emit('close');
    });
    return this;
  }

  destroy(): this {
    this.destroyed = true;
    setImmediate(() => this.emit('close'));
    return this;
  }

  /** The JSON-RPC message the handler answered with, or undefined (202, or nothing). */
  message(): unknown {
    if (this.statusCode === 202) return undefined;
    const text = this.chunks.join('');
    if (text === '') return undefined;
    const type = String(this.headers.get('content-type') ?? '');
    try {
      if (type.startsWith('text/event-stream')) {
        const data = text
          .split('\n')
          .filter((line) => line.startsWith('data: ') && line.length > 6)
          .map((line) => line.slice(6));
        return data.length === 0 ? undefined : JSON.parse(data[data.length - 1]!);
      }
      return JSON.parse(text);
    } catch {
      return undefined;
    }
  }
}
