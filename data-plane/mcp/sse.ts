import type { ServerResponse } from 'node:http';

/** Comment lines sent on idle streams so proxies and clients keep them open. */
const KEEP_ALIVE_MS = 15_000;

/**
 * One `text/event-stream` response. Headers go out on construction, or with the first
 * message when `deferred` (a call's answer: if nothing comes before the result, the
 * caller {@link release}s the stream and answers with plain JSON, which the spec lets the
 * server choose, in one write); `send` writes one JSON-RPC message as a `message` event
 * (with an id when given); writes after the client went away are dropped.
 */
export class SseStream {
  private open = true;
  private keepAlive: NodeJS.Timeout | undefined;
  private readonly closeListeners = new Set<() => void>();

  constructor(
    private readonly res: ServerResponse,
    private readonly headers: Readonly<Record<string, string>> = {},
    options: { readonly deferred?: boolean } = {},
  ) {
    if (!options.deferred) this.start();
    res.on('close', () => this.closed());
  }

  /** False once the stream ended or the client went away. */
  get isOpen(): boolean {
    return this.open && !this.res.destroyed;
  }

  /** True once the headers went out (the response is this stream). */
  get started(): boolean {
    return this.keepAlive !== undefined;
  }

  private start(): void {
    if (this.keepAlive !== undefined) return;
    const res = this.res;
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      ...this.headers,
    });
    res.flushHeaders();
    this.keepAlive = setInterval(() => {
      if (this.open) res.write(': keep-alive\n\n');
    }, KEEP_ALIVE_MS);
    this.keepAlive.unref();
  }

  /** Called once when the stream ends: by {@link end}, or because the client went away. */
  onClose(listener: () => void): void {
    if (!this.open) return listener();
    this.closeListeners.add(listener);
  }

  /** Starts the stream with a priming event: an id to resume from, `retry` (ms) for the client's reconnection, no data. */
  prime(eventId: string, retryMs: number): void {
    if (!this.isOpen) return;
    this.start();
    this.res.write(`id: ${eventId}\nretry: ${retryMs}\ndata: \n\n`);
  }

  send(message: string, eventId?: string): void {
    if (!this.isOpen) return;
    this.start();
    this.res.write(`${eventId === undefined ? '' : `id: ${eventId}\n`}event: message\ndata: ${message}\n\n`);
  }

  /** Sends a last message (with an id when given) and ends the stream, in one write. */
  finish(message: string, eventId?: string): void {
    if (!this.isOpen) return this.end();
    this.start();
    this.res.end(`${eventId === undefined ? '' : `id: ${eventId}\n`}event: message\ndata: ${message}\n\n`);
    this.closed();
  }

  end(): void {
    if (!this.open) return;
    this.start();
    this.res.end();
    this.closed();
  }

  /** Gives up a deferred stream that never started: the response is the caller's to write. */
  release(): void {
    if (!this.started) this.closed();
  }

  private closed(): void {
    if (!this.open) return;
    this.open = false;
    clearInterval(this.keepAlive);
    for (const listener of this.closeListeners) listener();
    this.closeListeners.clear();
  }
}
