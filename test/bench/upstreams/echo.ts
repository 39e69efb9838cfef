/**
 * The benchmark's upstream: a minimal MCP server with an `echo` tool, written without
 * the SDK so its own cost per call stays small and constant (a few microseconds) and the
 * benchmark measures the path in front of it, not it.
 *
 *   node --import tsx test/bench/upstreams/echo.ts                 # stdio (newline-delimited JSON-RPC)
 *   node --import tsx test/bench/upstreams/echo.ts --http 0        # Streamable HTTP at /mcp, prints LISTENING <url>
 *   … --tools 20 --delay-list-ms 5                                 # extra tools; a fixed delay on tools/list
 *
 * HTTP mode answers every request with `application/json` (the spec lets a server choose
 * JSON over SSE), issues an `Mcp-Session-Id` on initialize and checks it afterwards.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';

export interface EchoOptions {
  /** Tools listed besides `echo` (`tool_1` … `tool_n`, all echoing). */
  readonly extraTools: number;
  /** Delay added to `tools/list`, to model a slower upstream in the fan-out scenario. */
  readonly listDelayMs: number;
}

type Message = { jsonrpc: '2.0'; id?: string | number; method?: string; params?: Record<string, unknown> };

const SUPPORTED = new Set(['2025-11-25', '2025-06-18', '2025-03-26']);

export function echoHandler(options: EchoOptions) {
  const tools = [
    { name: 'echo', description: 'Returns the text it is given', inputSchema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] } },
    ...Array.from({ length: options.extraTools }, (_, i) => ({
      name: `tool_${i + 1}`,
      description: `Echo number ${i + 1}`,
      inputSchema: { type: 'object', properties: { text: { type: 'string' } } },
    })),
  ];
  /** The answer to one request, or undefined for a notification. */
  return async function handle(message: Message): Promise<object | undefined> {
    if (message.id === undefined) return undefined;
    const ok = (result: object) => ({ jsonrpc: '2.0', id: message.id, result });
    switch (message.method) {
      case 'initialize': {
        const requested = String(message.params?.protocolVersion ?? '');
        return ok({
          protocolVersion: SUPPORTED.has(requested) ? requested : '2025-06-18',
          capabilities: { tools: { listChanged: false } },
          serverInfo: { name: 'gatehouse-bench-echo', version: '1.0.0' },
        });
      }
      case 'ping':
        return ok({});
      case 'tools/list':
        if (options.listDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, options.listDelayMs));
        return ok({ tools });
      case 'tools/call': {
        const args = (message.params?.arguments ?? {}) as { text?: unknown };
        return ok({ content: [{ type: 'text', text: typeof args.text === 'string' ? args.text : '' }] });
      }
      default:
        return { jsonrpc: '2.0', id: message.id, error: { code: -32601, message: `method ${message.method} not found` } };
    }
  };
}

function optionsFromArgs(argv: readonly string[]): EchoOptions & { httpPort: number | undefined } {
  const value = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const http = value('--http');
  return { httpPort: http === undefined ? undefined : Number(http), extraTools: Number(value('--tools') ?? 0), listDelayMs: Number(value('--delay-list-ms') ?? 0) };
}

export function serveEchoHttp(options: EchoOptions, port: number, host = '127.0.0.1'): Promise<{ url: string; close(): Promise<void> }> {
  const handle = echoHandler(options);
  const sessions = new Set<string>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url !== '/mcp') return void res.writeHead(404).end();
    const session = req.headers['mcp-session-id'];
    if (req.method === 'DELETE') {
      if (typeof session === 'string') sessions.delete(session);
      return void res.writeHead(200).end();
    }
    if (req.method !== 'POST') return void res.writeHead(405, { allow: 'POST, DELETE' }).end();
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      let message: Message;
      try {
        message = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Message;
      } catch {
        return void res.writeHead(400, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}');
      }
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (message.method === 'initialize') {
        const id = randomUUID();
        sessions.add(id);
        headers['mcp-session-id'] = id;
      } else if (typeof session !== 'string' || !sessions.has(session)) {
        return void res.writeHead(404, headers).end(JSON.stringify({ jsonrpc: '2.0', id: message.id ?? null, error: { code: -32001, message: 'session not found' } }));
      }
      void handle(message).then((answer) => {
        if (answer === undefined) return void res.writeHead(202).end();
        const body = JSON.stringify(answer);
        headers['content-length'] = String(Buffer.byteLength(body));
        res.writeHead(200, headers).end(body);
      });
    });
  });
  server.keepAliveTimeout = 60_000;
  return new Promise((resolve) => {
    server.listen(port, host, () => {
      const { port: actual } = server.address() as AddressInfo;
      resolve({
        url: `http://${host}:${actual}/mcp`,
        close: () => new Promise<void>((done) => { server.closeAllConnections(); server.close(() => done()); }),
      });
    });
  });
}

function serveEchoStdio(options: EchoOptions): void {
  const handle = echoHandler(options);
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    if (line.trim() === '') return;
    let message: Message;
    try {
      message = JSON.parse(line) as Message;
    } catch {
      process.stdout.write('{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}\n');
      return;
    }
    void handle(message).then((answer) => {
      if (answer !== undefined) process.stdout.write(`${JSON.stringify(answer)}\n`);
    });
  });
  lines.on('close', () => process.exit(0));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const options = optionsFromArgs(process.argv.slice(2));
  if (options.httpPort === undefined) serveEchoStdio(options);
  else {
    const { url } = await serveEchoHttp(options, options.httpPort);
    process.stdout.write(`LISTENING ${url}\n`);
  }
}
