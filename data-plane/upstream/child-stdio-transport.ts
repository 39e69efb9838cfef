import type { ChildProcess } from 'node:child_process';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

/** Largest line (one message) accepted from a child; beyond it the session is closed. */
const MAX_LINE_BYTES = 16 * 1024 * 1024;

/**
 * MCP over the stdin/stdout of a process someone else supervises (newline-delimited
 * JSON). Unlike the SDK's `StdioClientTransport` it does not own the process: `close()`
 * detaches and calls `onRelease` (the supervisor decides whether the process must go),
 * and the process exiting closes the transport.
 */
export class ChildStdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;

  private buffer: Buffer | undefined;
  private closed = false;
  private readonly onData = (chunk: Buffer) => this.read(chunk);
  private readonly onGone = () => void this.close();

  constructor(
    private readonly child: ChildProcess,
    /** Called once when the transport closes for any reason other than the process exiting. */
    private readonly onRelease: () => void = () => undefined,
  ) {}

  async start(): Promise<void> {
    if (!this.child.stdout || !this.child.stdin) throw new Error('the managed process has no stdio pipes');
    if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error('the managed process already exited');
    this.child.stdout.on('data', this.onData);
    this.child.once('exit', this.onGone);
    this.child.stdout.once('close', this.onGone);
  }

  send(message: JSONRPCMessage): Promise<void> {
    const stdin = this.child.stdin;
    if (this.closed || !stdin || stdin.destroyed || stdin.writableEnded) return Promise.reject(new Error('the managed process is not running'));
    return new Promise((resolve, reject) => {
      const ok = stdin.write(`${JSON.stringify(message)}\n`, (error) => {
        if (error) reject(error);
      });
      if (ok) resolve();
      else stdin.once('drain', () => resolve());
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.child.stdout?.off('data', this.onData);
    this.child.off('exit', this.onGone);
    this.child.stdout?.off('close', this.onGone);
    this.buffer = undefined;
    if (this.child.exitCode === null && this.child.signalCode === null) this.onRelease();
    this.onclose?.();
  }

  private read(chunk: Buffer): void {
    let buffer = this.buffer ? Buffer.concat([this.buffer, chunk]) : chunk;
    let newline = buffer.indexOf(10);
    while (newline !== -1) {
      const line = buffer.toString('utf8', 0, newline).replace(/\r$/, '');
      buffer = buffer.subarray(newline + 1);
      if (line.trim() !== '') this.parse(line);
      newline = buffer.indexOf(10);
    }
    if (buffer.length > MAX_LINE_BYTES) {
      this.buffer = undefined;
      this.onerror?.(new Error(`the managed process wrote a line longer than ${MAX_LINE_BYTES} bytes`));
      void this.close();
      return;
    }
    this.buffer = buffer.length > 0 ? buffer : undefined;
  }

  private parse(line: string): void {
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch {
      this.onerror?.(new Error(`the managed process wrote a line that is not JSON: ${JSON.stringify(line.slice(0, 80))}`));
      return;
    }
    if (typeof message !== 'object' || message === null || (message as { jsonrpc?: unknown }).jsonrpc !== '2.0') {
      this.onerror?.(new Error('the managed process wrote something that is not a JSON-RPC 2.0 message'));
      return;
    }
    this.onmessage?.(message as JSONRPCMessage);
  }
}
