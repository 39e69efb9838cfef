import type { ServerResponse } from 'node:http';

/** Comment lines sent on idle streams so proxies and clients keep them open. */
const KEEP_ALIVE_MS = 15_000;

/**
 * One `text/event-stream` response. Headers go out on construction; `send` writes one
 * JSON-RPC message as a `message` event (with an id when given); writes after the client
 * went away are dropped.
 */
export class SseStream {
  private open = true;
  private readonly keepAlive: NodeJS.Timeout;
  private readonly closeListeners = new Set<() => void>();

  constructor(
    private readonly res: ServerResponse,
    headers: Readonly<Record<string, string>> = {},
  ) {
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      ...headers,
    });
    res.flushHeaders();
    this.keepAlive = setInterval(() => {
      if (this.open) res.write(': keep-alive\n\n');
    }, KEEP_ALIVE_MS);
    this.keepAlive.unref();
    res.on('close', () => this.closed());
  }

  /** False once the stream ended or the client went away. */
  get isOpen(): boolean {
    return this.open && !this.res.destroyed;
  }

  /** Called once when the stream ends: by {@link end}, or because the client went away. */
  onClose(listener: () => void): void {
    if (!this.open) return listener();
    this.closeListeners.add(listener);
  }

  send(message: string, eventId?: string): void {
    if (!this.isOpen) return;
    this.res.write(`${eventId === undefined ? '' : `id: ${eventId}\n`}event: message\ndata: ${message}\n\n`);
  }

  end(): void {
    if (!this.open) return;
    this.res.end();
    this.closed();
  }

  private closed(): void {
    if (!this.open) return;
    this.open = false;
    clearInterval(this.keepAlive);
    for (const listener of this.closeListeners) listener();
    this.closeListeners.clear();
  }
}
