import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { McpError, ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { Agent } from 'undici';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import * as z from 'zod';
import { UndiciStreamableHttpTransport } from '../../../data-plane/upstream/http-transport.js';
import { eventually, textOf } from './proxy-helpers.js';

/**
 * The undici transport against real SDK Streamable HTTP servers in this process (SSE and
 * JSON answers), and against hand-written servers for the edge cases (an upstream that
 * forgets sessions, ends a stream early, or makes the client resume it).
 */

interface SdkUpstream {
  readonly url: URL;
  readonly server: Server;
  /** TCP connections accepted so far. */
  connections: number;
  initializes: number;
  deletes: string[];
  /** SSE responses still open. */
  openStreams: number;
  cancelledCalls: number;
  /** Forgets every session, as a restarted server would. */
  forget(): void;
  notifyToolsChanged(): void;
}

const servers: Server[] = [];
const agent = new Agent({ connections: 16, pipelining: 1 });
const clients: Client[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) await client.close().catch(() => undefined);
});

afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  await agent.close();
});

async function listen(server: Server): Promise<URL> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`);
}

async function startSdkUpstream(options: { json?: boolean } = {}): Promise<SdkUpstream> {
  let transports = new Map<string, StreamableHTTPServerTransport>();
  const mcps = new Set<McpServer>();
  const state = { connections: 0, initializes: 0, deletes: [] as string[], openStreams: 0, cancelledCalls: 0 };
  const server = createServer((req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const body = chunks.length > 0 ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { method?: string }) : undefined;
      if (req.method === 'DELETE') state.deletes.push(String(req.headers['mcp-session-id']));
      if (body?.method === 'initialize') state.initializes += 1;
      if ((res.getHeader('content-type') ?? '') === '' && req.method !== 'DELETE') {
        const writeHead = res.writeHead.bind(res);
        res.writeHead = ((status: number, ...rest: unknown[]) => {
          const headers = rest.find((item) => typeof item === 'object' && item !== null) as Record<string, string> | undefined;
          if (headers?.['Content-Type'] === 'text/event-stream' || headers?.['content-type'] === 'text/event-stream') {
            state.openStreams += 1;
            res.once('close', () => (state.openStreams -= 1));
          }
          return (writeHead as (...args: unknown[]) => ServerResponse)(status, ...rest);
        }) as ServerResponse['writeHead'];
      }
      const id = req.headers['mcp-session-id'];
      let transport = typeof id === 'string' ? transports.get(id) : undefined;
      if (!transport && body?.method === 'initialize') {
        const mcp = new McpServer({ name: 'sdk-upstream', version: '1' }, { capabilities: { tools: { listChanged: true } } });
        mcp.registerTool('echo', { description: 'Echo', inputSchema: { text: z.string() } }, async ({ text }) => ({ content: [{ type: 'text', text }] }));
        mcp.registerTool('wait', { description: 'Runs until cancelled' }, async (extra) => {
          await new Promise<void>((resolve) => extra.signal.addEventListener('abort', () => resolve(), { once: true }));
          state.cancelledCalls += 1;
          return { content: [{ type: 'text', text: 'cancelled' }] };
        });
        const created = new StreamableHTTPServerTransport({
          sessionIdGenerator: () => crypto.randomUUID(),
          enableJsonResponse: options.json ?? false,
          onsessioninitialized: (sessionId) => void transports.set(sessionId, created),
        });
        await mcp.connect(created);
        mcps.add(mcp);
        transport = created;
      }
      if (!transport) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"Session not found"}}');
        return;
      }
      await transport.handleRequest(req, res, body);
    })();
  });
  server.on('connection', () => (state.connections += 1));
  const url = await listen(server);
  const upstream: SdkUpstream = Object.assign(state, {
    url,
    server,
    forget: () => {
      transports = new Map();
    },
    notifyToolsChanged: () => {
      for (const mcp of mcps) if (mcp.isConnected()) mcp.sendToolListChanged();
    },
  });
  return upstream;
}

async function connect(url: URL, onReinitialized?: () => void): Promise<{ client: Client; transport: UndiciStreamableHttpTransport }> {
  const transport = new UndiciStreamableHttpTransport({ url, dispatcher: agent, headers: { 'x-test': 'yes' }, ...(onReinitialized ? { onReinitialized } : {}) });
  const client = new Client({ name: 'undici-transport-test', version: '1' });
  await client.connect(transport);
  clients.push(client);
  return { client, transport };
}

describe('undici Streamable HTTP transport against the SDK server', () => {
  it('answers over SSE and reuses keep-alive connections across calls', async () => {
    const upstream = await startSdkUpstream();
    const { client } = await connect(upstream.url);
    for (let i = 0; i < 50; i += 1) {
      expect(textOf(await client.callTool({ name: 'echo', arguments: { text: `call ${i}` } }))).toBe(`call ${i}`);
    }
    // One connection for the calls, one held by the GET stream: not one per call.
    expect(upstream.connections).toBeLessThanOrEqual(3);
  });

  it('answers JSON when the upstream replies with JSON', async () => {
    const upstream = await startSdkUpstream({ json: true });
    const { client } = await connect(upstream.url);
    expect(textOf(await client.callTool({ name: 'echo', arguments: { text: 'json' } }))).toBe('json');
    expect((await client.listTools()).tools.map((tool) => tool.name)).toEqual(['echo', 'wait']);
  });

  it('carries server-to-client notifications on the GET stream', async () => {
    const upstream = await startSdkUpstream();
    const { client } = await connect(upstream.url);
    const changed = new Promise<void>((resolve) => client.setNotificationHandler(ToolListChangedNotificationSchema, () => resolve()));
    await eventually(async () => expect(upstream.openStreams).toBeGreaterThanOrEqual(1));
    upstream.notifyToolsChanged();
    await changed;
  });

  it('re-initializes once when the upstream forgot the session (404), sharing the attempt between concurrent calls', async () => {
    const upstream = await startSdkUpstream();
    let reinitialized = 0;
    const { client, transport } = await connect(upstream.url, () => (reinitialized += 1));
    const firstSession = transport.sessionId;
    upstream.forget();
    const answers = await Promise.all(Array.from({ length: 5 }, (_, i) => client.callTool({ name: 'echo', arguments: { text: `after ${i}` } })));
    expect(answers.map(textOf)).toEqual(['after 0', 'after 1', 'after 2', 'after 3', 'after 4']);
    expect(reinitialized).toBe(1);
    expect(upstream.initializes).toBe(2);
    expect(transport.sessionId).not.toBe(firstSession);
  });

  it('sends DELETE with the session id on close', async () => {
    const upstream = await startSdkUpstream();
    const { client, transport } = await connect(upstream.url);
    const session = transport.sessionId!;
    await client.close();
    expect(upstream.deletes).toEqual([session]);
  });

  it('releases the stream of a cancelled call (the upstream sees the cancellation)', async () => {
    const upstream = await startSdkUpstream();
    const { client } = await connect(upstream.url);
    await eventually(async () => expect(upstream.openStreams).toBe(1)); // the GET stream
    const controller = new AbortController();
    const waiting = client.callTool({ name: 'wait', arguments: {} }, undefined, { signal: controller.signal }).catch((error: unknown) => error);
    await eventually(async () => expect(upstream.openStreams).toBe(2));
    controller.abort('user pressed stop');
    await waiting;
    await eventually(async () => {
      expect(upstream.cancelledCalls).toBe(1);
      expect(upstream.openStreams).toBe(1);
    });
  });
});

/** A hand-written upstream: answers initialize and notifications, and `tools/call` as `onCall` says. */
async function startRawUpstream(onCall: (req: IncomingMessage, res: ServerResponse, id: number) => void, onGet?: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: URL; initializes: () => number }> {
  let initializes = 0;
  const server = createServer((req, res) => {
    void (async () => {
      if (req.method === 'GET') {
        if (onGet) return onGet(req, res);
        res.writeHead(405).end();
        return;
      }
      if (req.method === 'DELETE') return void res.writeHead(200).end();
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const message = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id?: number; method?: string };
      if (message.method === 'initialize') {
        initializes += 1;
        res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': `raw-${initializes}` });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: message.id, result: { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'raw', version: '1' } } }));
        return;
      }
      if (message.id === undefined) return void res.writeHead(202).end();
      onCall(req, res, message.id);
    })();
  });
  return { url: await listen(server), initializes: () => initializes };
}

describe('undici Streamable HTTP transport against misbehaving upstreams', () => {
  it('fails a call at once when its response stream ends without an answer', async () => {
    const upstream = await startRawUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(': nothing to see\n\n');
    });
    const { client } = await connect(upstream.url);
    const started = performance.now();
    const error = await client.callTool({ name: 'x', arguments: {} }, undefined, { timeout: 10_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(McpError);
    expect((error as McpError).message).toContain('the upstream closed the response stream before answering');
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('resumes a response stream that carried an event id with GET and Last-Event-ID', async () => {
    let resumedWith: string | undefined;
    let pendingId = 0;
    const upstream = await startRawUpstream(
      (_req, res, id) => {
        pendingId = id;
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end('id: evt-1\nretry: 10\ndata: \n\n');
      },
      (req, res) => {
        resumedWith = String(req.headers['last-event-id']);
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        if (req.headers['last-event-id'] === undefined) return; // the standalone stream: stay open
        res.end(`id: evt-2\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: pendingId, result: { content: [{ type: 'text', text: 'resumed' }] } })}\n\n`);
      },
    );
    const { client } = await connect(upstream.url);
    expect(textOf(await client.callTool({ name: 'x', arguments: {} }))).toBe('resumed');
    expect(resumedWith).toBe('evt-1');
  });

  it('re-initializes only once: an upstream that keeps answering 404 fails the call', async () => {
    const upstream = await startRawUpstream((_req, res) => {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('no such session');
    });
    const { client } = await connect(upstream.url);
    const error = await client.callTool({ name: 'x', arguments: {} }).catch((e: unknown) => e as Error);
    expect((error as Error).message).toContain('HTTP 404');
    expect(upstream.initializes()).toBe(2);
  });
});
