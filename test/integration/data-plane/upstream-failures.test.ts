import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDataPlane, type DataPlane } from '../../../data-plane/app.js';
import { InMemorySnapshotSource } from '../../../data-plane/snapshot/snapshot-source.js';
import { connectClient, proxySnapshot, textOf } from './proxy-helpers.js';

/**
 * A remote upstream that misbehaves on purpose, one way per tool, behind a real data
 * plane and called with the SDK's real client: each failure gets the JSON-RPC error a
 * person can act on, within the call timeout, and the client's session (and the shared
 * upstream session) keeps working afterwards. Requests go through the direct path
 * (`upstream/direct-calls.ts`), so this is also its failure contract.
 */

const SECRET = 'upstream-failures-session-secret-0123456789abcdef';
const CALL_TIMEOUT_MS = 600;
const TOOLS = ['ok', 'hang', 'fail', 'not_object', 'cut', 'garbage', 'http500', 'progress'];

interface Upstream {
  readonly server: Server;
  readonly url: string;
  /** `notifications/cancelled` the upstream received, by request id. */
  readonly cancelled: Map<string | number, string>;
  /** Ids of the tools/call requests the upstream received, by tool. */
  readonly callIds: Map<string, (string | number)[]>;
  /** Responses still held open (the `hang` tool). */
  readonly held: Set<ServerResponse>;
}

function startUpstream(): Promise<Upstream> {
  const cancelled = new Map<string | number, string>();
  const callIds = new Map<string, (string | number)[]>();
  const held = new Set<ServerResponse>();
  const session = 'failing-upstream-session';
  const json = (res: ServerResponse, body: unknown) => res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': session }).end(JSON.stringify(body));
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'POST') return void res.writeHead(405).end();
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const message = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id?: string | number; method?: string; params?: Record<string, unknown> };
      if (message.id === undefined) {
        if (message.method === 'notifications/cancelled') cancelled.set(message.params!.requestId as string | number, String(message.params!.reason ?? ''));
        return void res.writeHead(202).end();
      }
      const ok = (result: unknown) => json(res, { jsonrpc: '2.0', id: message.id, result });
      switch (message.method) {
        case 'initialize':
          return ok({ protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'failing', version: '1' } });
        case 'tools/list':
          return ok({ tools: TOOLS.map((name) => ({ name, inputSchema: { type: 'object' } })) });
        case 'tools/call': {
          const name = String(message.params?.name);
          callIds.set(name, [...(callIds.get(name) ?? []), message.id]);
          switch (name) {
            case 'ok':
              return ok({ content: [{ type: 'text', text: 'fine' }] });
            case 'hang':
              held.add(res);
              res.on('close', () => held.delete(res));
              return; // never answers
            case 'fail':
              return json(res, { jsonrpc: '2.0', id: message.id, error: { code: -32001, message: 'the record is locked', data: { record: 7 } } });
            case 'not_object':
              return ok(42);
            case 'cut':
              // An event stream that ends before the response (no event ids, so nothing to resume).
              res.writeHead(200, { 'content-type': 'text/event-stream', 'mcp-session-id': session });
              res.write('event: message\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"starting"}}\n\n');
              return void res.end();
            case 'garbage':
              return void res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': session }).end('this is not JSON {');
            case 'http500':
              return void res.writeHead(500, { 'content-type': 'text/plain' }).end('database on fire');
            case 'progress': {
              // Progress with the token the gateway chose, then the result, on one stream.
              const token = (message.params?._meta as { progressToken?: unknown } | undefined)?.progressToken;
              res.writeHead(200, { 'content-type': 'text/event-stream', 'mcp-session-id': session });
              for (const step of [1, 2]) {
                res.write(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: token, progress: step, total: 2 } })}\n\n`);
              }
              res.write(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: message.id, result: { content: [{ type: 'text', text: `token:${typeof token}` }] } })}\n\n`);
              return void res.end();
            }
          }
          return ok({ content: [] });
        }
        default:
          return json(res, { jsonrpc: '2.0', id: message.id, error: { code: -32601, message: 'no such method' } });
      }
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`, cancelled, callIds, held })),
  );
}

let upstream: Upstream;
let plane: DataPlane;
let baseUrl: string;
let session: Awaited<ReturnType<typeof connectClient>>;

beforeAll(async () => {
  upstream = await startUpstream();
  const snapshots = new InMemorySnapshotSource();
  snapshots.offer(proxySnapshot({ 'srv-http': { upstream: { kind: 'remote', url: upstream.url, transport: 'streamable-http', allowInsecure: false }, tools: TOOLS } }));
  // A high failure threshold: these tests are about each error, not the breaker.
  plane = buildDataPlane({ port: 0, sessionSecret: SECRET, callTimeoutMs: CALL_TIMEOUT_MS, circuitBreaker: { failureThreshold: 100, coolDownMs: 1_000 } }, { snapshots });
  baseUrl = (await plane.listen()).url;
  session = await connectClient(baseUrl);
}, 30_000);

afterAll(async () => {
  await session?.close();
  await plane?.close();
  for (const res of upstream?.held ?? []) res.destroy();
  upstream?.server.closeAllConnections();
  await new Promise((resolve) => upstream?.server.close(resolve));
});

async function callError(name: string): Promise<McpError> {
  const error = await session.client.callTool({ name: `web__${name}`, arguments: {} }).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(McpError);
  return error as McpError;
}

async function stillWorks(): Promise<void> {
  expect(textOf(await session.client.callTool({ name: 'web__ok', arguments: {} }))).toBe('fine');
}

describe('a misbehaving upstream behind the gateway', () => {
  it('times out a call the upstream never answers, tells the upstream to stop, and keeps the session', async () => {
    const started = performance.now();
    const error = await callError('hang');
    const elapsed = performance.now() - started;
    expect(error.code).toBe(-32061);
    expect(error.message).toContain(`server "Everything (HTTP)" did not answer tools/call within ${CALL_TIMEOUT_MS} ms`);
    expect(error.data).toMatchObject({ code: 'UPSTREAM_TIMEOUT', server: 'Everything (HTTP)' });
    expect(elapsed).toBeGreaterThanOrEqual(CALL_TIMEOUT_MS - 50);
    const [id] = upstream.callIds.get('hang')!;
    await expect.poll(() => upstream.cancelled.get(id!)).toContain('timed out');
    await stillWorks();
  });

  it("relays the upstream's own JSON-RPC error with its code, message and data", async () => {
    const error = await callError('fail');
    expect(error.code).toBe(-32001);
    expect(error.message).toBe('MCP error -32001: the record is locked');
    expect(error.data).toEqual({ record: 7 });
    await stillWorks();
  });

  it('refuses a result that is not an object', async () => {
    const error = await callError('not_object');
    expect(error.code).toBe(-32603);
    expect(error.message).toContain('the upstream answered with a result that is not an object');
    await stillWorks();
  });

  it('fails a call whose response stream ends before the answer, at once rather than at the timeout', async () => {
    const started = performance.now();
    const error = await callError('cut');
    expect(performance.now() - started).toBeLessThan(CALL_TIMEOUT_MS);
    expect(error.code).toBe(-32060);
    expect(error.message).toContain('the connection to server "Everything (HTTP)" closed during tools/call');
    await stillWorks();
  });

  it('names invalid JSON and HTTP errors from the upstream', async () => {
    const garbage = await callError('garbage');
    expect(garbage.code).toBe(-32060);
    expect(garbage.message).toContain('the upstream answered with invalid JSON');
    const http = await callError('http500');
    expect(http.code).toBe(-32060);
    expect(http.message).toContain('HTTP 500');
    expect(http.message).toContain('database on fire');
    await stillWorks();
  });

  it("relays progress sent under the gateway's own token back under the client's", async () => {
    const seen: { progress: number; total?: number }[] = [];
    const result = await session.client.callTool({ name: 'web__progress', arguments: {} }, undefined, { onprogress: (p) => seen.push(p) });
    expect(textOf(result)).toBe('token:string');
    expect(seen).toEqual([
      { progress: 1, total: 2 },
      { progress: 2, total: 2 },
    ]);
  });

  it('leaves no call in flight on the upstream connection', async () => {
    const [connection] = plane.pool.all();
    expect(connection).toBeDefined();
    expect(connection!.callsInFlight).toBe(0);
    expect(connection!.initializations).toBe(1);
  });
});
