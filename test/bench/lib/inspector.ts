/**
 * A minimal Chrome DevTools Protocol client for a child started with `--inspect=127.0.0.1:0`:
 * enough to read `process.memoryUsage()`, force a full GC and stream a heap snapshot to a
 * file, without touching the code being measured.
 */
import { createWriteStream } from 'node:fs';
import WebSocket from 'ws';

interface Pending {
  resolve(result: unknown): void;
  reject(error: Error): void;
}

export class InspectorSession {
  readonly #socket: WebSocket;
  readonly #pending = new Map<number, Pending>();
  readonly #listeners = new Map<string, (params: Record<string, unknown>) => void>();
  #nextId = 1;

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as { id?: number; result?: unknown; error?: { message: string }; method?: string; params?: Record<string, unknown> };
      if (message.id !== undefined) {
        const pending = this.#pending.get(message.id);
        this.#pending.delete(message.id);
        if (message.error) pending?.reject(new Error(message.error.message));
        else pending?.resolve(message.result);
      } else if (message.method) {
        this.#listeners.get(message.method)?.(message.params ?? {});
      }
    });
  }

  /** Connects to the `ws://…` URL the child printed ("Debugger listening on …"). */
  static async connect(url: string): Promise<InspectorSession> {
    const socket = new WebSocket(url, { maxPayload: 1024 * 1024 * 1024 });
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    return new InspectorSession(socket);
  }

  send<T = unknown>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (r: unknown) => void, reject });
      this.#socket.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Evaluates an expression in the child's main context and returns its JSON value. */
  async evaluate<T>(expression: string): Promise<T> {
    const answer = await this.send<{ result: { value?: T }; exceptionDetails?: { text: string } }>('Runtime.evaluate', { expression, returnByValue: true });
    if (answer.exceptionDetails) throw new Error(`evaluate failed: ${answer.exceptionDetails.text}`);
    return answer.result.value as T;
  }

  /** A full, compacting GC (the same one a heap snapshot runs). */
  async collectGarbage(): Promise<void> {
    await this.send('HeapProfiler.collectGarbage');
  }

  /** Takes a heap snapshot and writes it to `file` (a `.heapsnapshot` Chrome DevTools opens). */
  async heapSnapshot(file: string): Promise<void> {
    const out = createWriteStream(file);
    this.#listeners.set('HeapProfiler.addHeapSnapshotChunk', (params) => out.write(params.chunk as string));
    await this.send('HeapProfiler.enable');
    await this.send('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
    this.#listeners.delete('HeapProfiler.addHeapSnapshotChunk');
    await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  }

  close(): void {
    this.#socket.close();
  }
}

/** The inspector URL in a child's output lines, if it printed one. */
export function inspectorUrl(lines: readonly string[]): string | undefined {
  for (const line of lines) {
    const match = /Debugger listening on (ws:\/\/\S+)/.exec(line);
    if (match) return match[1];
  }
  return undefined;
}
