import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  EmptyResultSchema,
  ErrorCode,
  McpError,
  LoggingMessageNotificationSchema,
  ResourceUpdatedNotificationSchema,
  ToolListChangedNotificationSchema,
  type ClientCapabilities,
  type LoggingMessageNotification,
  type Progress,
} from '@modelcontextprotocol/sdk/types.js';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDataPlane, type DataPlane } from '../../../data-plane/app.js';
import { AuditShipper } from '../../../data-plane/audit/shipper.js';
import { MemoryAuditTransport } from '../../../data-plane/audit/transport.js';
import type { AuditEntry } from '../../../schema/audit/types.js';
import { DEFAULT_SESSION_STREAMS, SessionStreams, missedEvents } from '../../../data-plane/mcp/session-streams.js';
import { sessionTag } from '../../../data-plane/mcp/session-id.js';
import { acceptSnapshot } from '../../../data-plane/snapshot/compiled-snapshot.js';
import { InMemorySnapshotSource } from '../../../data-plane/snapshot/snapshot-source.js';
import { ACCESS_TOKEN, GATEWAY_SLUG, gatewaySnapshot } from '../../conformance/gateway-fixture.js';
import { startHttpFixture, type RunningServer } from '../../fixtures/mcp/spawn.js';
import { createConformanceServer } from '../../fixtures/mcp/conformance-server.js';

const SECRET = 'streaming-session-secret-0123456789abcdef';

let conformance: RunningServer;
let mutable: RunningServer;
let stateDir: string;
let slow: { url: string; server: Server; started: number; cancelled: number };
let plane: DataPlane;
let mcpUrl: string;
let snapshots: InMemorySnapshotSource;
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const open: { client: Client; transport: StreamableHTTPClientTransport }[] = [];

/** An in-process upstream whose one tool runs until the request is cancelled. */
async function startSlowUpstream(): Promise<typeof slow> {
  const state = { started: 0, cancelled: 0 };
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const server = createServer((req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const body = chunks.length > 0 ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown) : undefined;
      const id = req.headers['mcp-session-id'];
      let transport = typeof id === 'string' ? transports.get(id) : undefined;
      if (!transport) {
        const mcp = new McpServer({ name: 'slow', version: '1' });
        mcp.registerTool('wait', { description: 'Runs until cancelled' }, async (extra) => {
          state.started += 1;
          await new Promise<void>((resolve) => {
            if (extra.signal.aborted) return resolve();
            extra.signal.addEventListener('abort', () => resolve(), { once: true });
          });
          state.cancelled += 1;
          return { content: [{ type: 'text', text: 'cancelled' }] };
        });
        const created = new StreamableHTTPServerTransport({
          sessionIdGenerator: () => crypto.randomUUID(),
          onsessioninitialized: (sessionId) => void transports.set(sessionId, created),
        });
        await mcp.connect(created);
        transport = created;
      }
      await transport.handleRequest(req, res, body);
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const result = { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`, server, ...state };
  // Keep the counters live on the returned object.
  Object.defineProperties(result, { started: { get: () => state.started }, cancelled: { get: () => state.cancelled } });
  return result;
}

beforeAll(async () => {
  stateDir = mkdtempSync(join(tmpdir(), 'gatehouse-streaming-'));
  const stateFile = join(stateDir, 'description');
  writeFileSync(stateFile, 'Looks up a record by id');
  [conformance, mutable, slow] = await Promise.all([
    startHttpFixture('conformance-server'),
    startHttpFixture('mutable-server', { FIXTURE_STATE_FILE: stateFile }),
    startSlowUpstream(),
  ]);
  snapshots = new InMemorySnapshotSource();
  snapshots.offer(
    await gatewaySnapshot([
      { url: conformance.url, prefix: 'conf' },
      { url: mutable.url, prefix: 'mut' },
      { url: slow.url, prefix: 'slow' },
    ]),
  );
  plane = buildDataPlane({ port: 0, sessionSecret: SECRET, callTimeoutMs: 20_000 }, { snapshots });
  mcpUrl = `${(await plane.listen()).url}/mcp/${GATEWAY_SLUG}`;
}, 60_000);

afterAll(async () => {
  for (const { client, transport } of open) {
    await transport.terminateSession().catch(() => undefined);
    await client.close().catch(() => undefined);
  }
  await plane?.close();
  await Promise.all([conformance?.close(), mutable?.close()]);
  slow?.server.closeAllConnections();
  await new Promise((resolve) => slow?.server.close(resolve));
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

async function connect(capabilities: ClientCapabilities = {}, setup?: (client: Client) => void, fetch?: FetchLike): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { requestInit: { headers: { Authorization: `Bearer ${ACCESS_TOKEN}` } }, ...(fetch ? { fetch } : {}) });
  const client = new Client({ name: 'streaming-test', version: '1.0.0' }, { capabilities });
  setup?.(client);
  await client.connect(transport);
  open.push({ client, transport });
  return client;
}

const textOf = (result: unknown) => ((result as { content: { type: string; text?: string }[] }).content[0]?.text ?? '');

describe('SSE responses relay what the upstream sends during a call', () => {
  it('relays progress with the client token mapped through', async () => {
    const client = await connect();
    const seen: Progress[] = [];
    const result = await client.callTool({ name: 'conf__test_tool_with_progress', arguments: {} }, undefined, { onprogress: (p) => seen.push(p) });
    expect(textOf(result)).toBe('Progress tool completed');
    expect(seen.map((p) => p.progress)).toEqual([0, 50, 100]);
    expect(seen[0]).toMatchObject({ total: 100, message: 'step 1 of 3' });
  });

  it('relays logging notifications on the call stream', async () => {
    const logs: LoggingMessageNotification['params'][] = [];
    const client = await connect({}, (c) => c.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logs.push(n.params)));
    await client.setLoggingLevel('info');
    const result = await client.callTool({ name: 'conf__test_tool_with_logging', arguments: {} });
    expect(textOf(result)).toBe('Tool with logging executed successfully');
    expect(logs.map((l) => l.data)).toEqual(['Tool execution started', 'Tool processing data', 'Tool execution completed']);
  });

  it('drops relayed log messages below the level each session set, and refuses a level MCP does not define', async () => {
    const quiet: unknown[] = [];
    const chatty: unknown[] = [];
    const a = await connect({}, (c) => c.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void quiet.push(n.params.data)));
    const b = await connect({}, (c) => c.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void chatty.push(n.params.data)));
    await a.setLoggingLevel('warning');
    // The upstream session is shared by both: the level is the gateway's, per client session.
    await a.callTool({ name: 'conf__test_tool_with_logging', arguments: {} });
    await b.callTool({ name: 'conf__test_tool_with_logging', arguments: {} });
    expect(quiet).toEqual([]);
    expect(chatty).toHaveLength(3);
    await a.setLoggingLevel('info'); // the messages are info: relayed again
    await a.callTool({ name: 'conf__test_tool_with_logging', arguments: {} });
    expect(quiet).toEqual(['Tool execution started', 'Tool processing data', 'Tool execution completed']);
    const refused = a.request({ method: 'logging/setLevel', params: { level: 'loud' } }, EmptyResultSchema);
    await expect(refused).rejects.toMatchObject({ code: -32602, message: expect.stringContaining('params.level must be one of debug, info, notice, warning') });
  });

  it('answers JSON when the client does not take SSE or the call sends nothing before its result, and SSE when it streams', async () => {
    const init = await fetch(mcpUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${ACCESS_TOKEN}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
    });
    const session = init.headers.get('mcp-session-id')!;
    const call = (accept: string, name = 'conf__test_simple_text') =>
      fetch(mcpUrl, {
        method: 'POST',
        headers: { authorization: `Bearer ${ACCESS_TOKEN}`, 'content-type': 'application/json', accept, 'mcp-session-id': session },
        body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name, arguments: {} } }),
      });
    const json = await call('application/json');
    expect(json.headers.get('content-type')).toBe('application/json');
    expect(await json.json()).toMatchObject({ id: 2, result: { content: [{ text: 'This is a simple text response for testing.' }] } });
    // Nothing came before the result: one JSON answer (the server's choice under the spec).
    const quick = await call('application/json, text/event-stream');
    expect(quick.headers.get('content-type')).toBe('application/json');
    expect(quick.headers.get('content-length')).not.toBeNull();
    expect(await quick.json()).toMatchObject({ id: 2, result: { content: [{ text: 'This is a simple text response for testing.' }] } });
    // Log messages before the result: the answer becomes a stream carrying them, then the result.
    const sse = await call('application/json, text/event-stream', 'conf__test_tool_with_logging');
    expect(sse.headers.get('content-type')).toBe('text/event-stream');
    const [priming, ...events] = (await sse.text()).split('\n\n').filter((event) => event.includes('data: '));
    // It opens with a priming event (an id to resume from, a reconnection delay, no data: SEP-1699), and every event has an id.
    expect(priming).toMatch(/^id: p\.[\w]+\.0\nretry: \d+\ndata: $/);
    expect(events.length).toBeGreaterThan(1);
    expect(events.every((event) => /^id: p\.[\w]+\.\d+\n/.test(event))).toBe(true);
    expect(events.slice(0, -1).every((event) => event.includes('"method":"notifications/message"'))).toBe(true);
    expect(events.at(-1)).toContain('"id":2,"result"');
  });
});

describe('resource links in results', () => {
  it('renames links to the upstream\'s exposed resources to the URIs clients read them by, and reads them through the gateway', async () => {
    const client = await connect();
    const result = (await client.callTool({ name: 'conf__test_resource_links', arguments: {} })) as { content: Array<{ type: string; uri?: string; resource?: { uri: string } }> };
    const links = result.content.filter((block) => block.type === 'resource_link').map((block) => block.uri);
    // A listed resource and one matched by a template get the namespaced URI; a link elsewhere is left alone.
    expect(links).toEqual(['conf+test://static-text', 'conf+test://template/42/data', 'https://example.com/elsewhere']);
    expect(result.content.find((block) => block.type === 'resource')?.resource?.uri).toBe('conf+test://static-text');
    // Following a renamed link works through the gateway.
    const read = await client.readResource({ uri: links[0]! });
    expect(read.contents[0]).toMatchObject({ uri: 'conf+test://static-text', text: 'This is the content of the static text resource.' });
    const templated = await client.readResource({ uri: links[1]! });
    expect(templated.contents[0]?.uri).toBe('conf+test://template/42/data');
  });
});

describe('server-to-client requests during a call', () => {
  it('relays elicitation to the client and its answer back to the upstream', async () => {
    const asked: unknown[] = [];
    const client = await connect({ elicitation: {} }, (c) =>
      c.setRequestHandler(ElicitRequestSchema, async (request) => {
        asked.push(request.params);
        return { action: 'accept', content: { username: 'ada', email: 'ada@example.com' } };
      }),
    );
    const result = await client.callTool({ name: 'conf__test_elicitation', arguments: { message: 'Who are you?' } });
    expect(asked).toEqual([expect.objectContaining({ message: 'Who are you?' })]);
    expect(textOf(result)).toBe('Elicitation completed: action=accept, content={"username":"ada","email":"ada@example.com"}');
  });

  it('relays sampling to the client and its answer back to the upstream', async () => {
    const client = await connect({ sampling: {} }, (c) =>
      c.setRequestHandler(CreateMessageRequestSchema, async (request) => {
        const content = request.params.messages[0]?.content;
        const prompt = content && !Array.isArray(content) && content.type === 'text' ? content.text : '';
        return { model: 'test-model', role: 'assistant', content: { type: 'text', text: `you said ${prompt}` } };
      }),
    );
    const result = await client.callTool({ name: 'conf__test_sampling', arguments: { prompt: 'hello' } });
    expect(textOf(result)).toBe('LLM response: you said hello');
  });

  it('refuses to relay sampling to a client that did not declare it', async () => {
    const client = await connect();
    const result = (await client.callTool({ name: 'conf__test_sampling', arguments: { prompt: 'hello' } })) as { isError?: boolean };
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain('did not declare the "sampling" capability');
  });
});

describe('cancellation', () => {
  it('cancels the upstream request when the client cancels its call', async () => {
    const client = await connect();
    const controller = new AbortController();
    const call = client.callTool({ name: 'slow__wait', arguments: {} }, undefined, { signal: controller.signal });
    await expect.poll(() => slow.started, { timeout: 5_000 }).toBe(1);
    controller.abort('changed my mind');
    await expect(call).rejects.toThrow();
    await expect.poll(() => slow.cancelled, { timeout: 5_000 }).toBe(1);
  });

  it('gives up a relayed request when the client cancels the call, and the session keeps working', async () => {
    let asked = 0;
    const client = await connect({ elicitation: {} }, (c) =>
      c.setRequestHandler(ElicitRequestSchema, () => {
        asked += 1;
        return new Promise(() => undefined); // never answers
      }),
    );
    const controller = new AbortController();
    const call = client.callTool({ name: 'conf__test_elicitation', arguments: { message: 'never mind' } }, undefined, { signal: controller.signal });
    await expect.poll(() => asked, { timeout: 5_000 }).toBe(1);
    controller.abort('changed my mind');
    await expect(call).rejects.toThrow();
    expect(textOf(await client.callTool({ name: 'conf__test_simple_text', arguments: {} }))).toBe('This is a simple text response for testing.');
  });
});

describe('audit of server-to-client requests', () => {
  const transport = new MemoryAuditTransport();
  let audited: DataPlane;
  let url: string;

  beforeAll(async () => {
    const source = new InMemorySnapshotSource();
    source.offer(await gatewaySnapshot([{ url: conformance.url, prefix: 'conf' }], 1, { audit: { bodies: 'full', maxBodyBytes: 8192 } }));
    audited = buildDataPlane({ port: 0, sessionSecret: SECRET, callTimeoutMs: 20_000 }, { snapshots: source, audit: new AuditShipper({ transport, flushIntervalMs: 20 }) });
    url = `${(await audited.listen()).url}/mcp/${GATEWAY_SLUG}`;
  });
  afterAll(async () => {
    await audited?.close();
  });

  async function connectAudited(capabilities: ClientCapabilities, setup?: (client: Client) => void): Promise<Client> {
    const t = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${ACCESS_TOKEN}` } } });
    const client = new Client({ name: 'relay-audit-test', version: '1.0.0' }, { capabilities });
    setup?.(client);
    await client.connect(t);
    open.push({ client, transport: t });
    return client;
  }

  /** The entries of the one audited tools/call whose arguments carry `marker`, once its client response is in. */
  async function callEntries(marker: string): Promise<AuditEntry[]> {
    const find = () => {
      const request = transport.entries().find((e) => e.leg === 'client_request' && e.body?.includes(marker));
      const entries = request ? transport.entries().filter((e) => e.correlationId === request.correlationId) : [];
      return entries.some((e) => e.leg === 'client_response') ? entries : undefined;
    };
    await expect.poll(() => find() !== undefined, { timeout: 5_000 }).toBe(true);
    return find()!;
  }
  const legs = (entries: AuditEntry[]) => entries.map((e) => e.leg);
  /** `gatehouse_data_plane_relayed_requests_total` for a method and outcome (process-wide: compare before and after). */
  const relayedCount = async (method: string, outcome: string) => {
    const text = await (await fetch(`${new URL(url).origin}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`gatehouse_data_plane_relayed_requests_total{method="${method}",outcome="${outcome}"}`));
    return line === undefined ? 0 : Number(line.split(' ').at(-1));
  };
  const legOf = (entries: AuditEntry[], name: AuditEntry['leg']) => entries.find((e) => e.leg === name)!;

  it('records the elicitation a tool asked for and the answer that went back, on the call, with secrets scrubbed', async () => {
    const answeredBefore = await relayedCount('elicitation/create', 'answered');
    const client = await connectAudited({ elicitation: {} }, (c) =>
      c.setRequestHandler(ElicitRequestSchema, async () => {
        await new Promise((resolve) => setTimeout(resolve, 60)); // the person takes a moment
        return { action: 'accept', content: { username: 'ada', email: 'ada@example.com', password: 'hunter2-very-secret' } };
      }),
    );
    const result = await client.callTool({ name: 'conf__test_elicitation', arguments: { message: 'Who are you? audit-elicit-1' } });
    expect(textOf(result)).toContain('action=accept');
    const entries = await callEntries('audit-elicit-1');
    expect(legs(entries).sort()).toEqual(['client_request', 'client_response', 'relayed_request', 'relayed_response', 'upstream_request', 'upstream_response']);
    const asked = legOf(entries, 'relayed_request');
    const answered = legOf(entries, 'relayed_response');
    for (const entry of [asked, answered]) {
      // Its own method and id; the call's tool, server and correlation id.
      expect(entry).toMatchObject({ method: 'elicitation/create', jsonRpcId: expect.stringMatching(/^gatehouse-/), featureName: 'conf__test_elicitation', serverId: 'srv-0', assignmentId: 'asg-0', status: 'ok' });
    }
    expect(answered.jsonRpcId).toBe(asked.jsonRpcId);
    expect(legOf(entries, 'client_request')).toMatchObject({ method: 'tools/call', jsonRpcId: expect.not.stringMatching(/^gatehouse-/) });
    expect(JSON.parse(asked.body!)).toMatchObject({ method: 'elicitation/create', params: { message: 'Who are you? audit-elicit-1', requestedSchema: { type: 'object' } } });
    expect(asked.bytesOut).toBeGreaterThan(100);
    expect(JSON.parse(answered.body!)).toEqual({ action: 'accept', content: { username: 'ada', email: 'ada@example.com', password: '[SCRUBBED]' } });
    expect(answered.bytesIn).toBeGreaterThan(50);
    expect(answered.durationMs).toBeGreaterThanOrEqual(50);
    const at = (leg: AuditEntry['leg']) => Date.parse(legOf(entries, leg).occurredAt);
    expect(at('relayed_request')).toBeGreaterThanOrEqual(at('upstream_request'));
    expect(at('relayed_response') - at('relayed_request')).toBeGreaterThanOrEqual(50);
    expect(at('upstream_response')).toBeGreaterThanOrEqual(at('relayed_response'));
    expect(await relayedCount('elicitation/create', 'answered')).toBe(answeredBefore + 1);
  });

  it('records a relayed request the client refused, and one the gateway could not relay', async () => {
    const before = { clientError: await relayedCount('elicitation/create', 'client_error'), refused: await relayedCount('sampling/createMessage', 'refused') };
    const refusing = await connectAudited({ elicitation: {} }, (c) =>
      c.setRequestHandler(ElicitRequestSchema, () => {
        throw new McpError(ErrorCode.InvalidParams, 'not telling');
      }),
    );
    await refusing.callTool({ name: 'conf__test_elicitation', arguments: { message: 'audit-elicit-2' } });
    const refused = legOf(await callEntries('audit-elicit-2'), 'relayed_response');
    expect(refused).toMatchObject({ status: 'error', errorCode: ErrorCode.InvalidParams, errorMessage: expect.stringContaining('not telling'), bytesIn: null });

    const undeclared = await connectAudited({});
    await undeclared.callTool({ name: 'conf__test_sampling', arguments: { prompt: 'audit-sampling-3' } });
    const entries = await callEntries('audit-sampling-3');
    // Never sent to the client: no id it was asked under, and the upstream got the gateway's error.
    expect(legOf(entries, 'relayed_request')).toMatchObject({ method: 'sampling/createMessage', jsonRpcId: null, status: 'error', bytesOut: null, errorMessage: expect.stringContaining('did not declare the "sampling" capability') });
    expect(legOf(entries, 'relayed_response')).toMatchObject({ status: 'error', errorCode: ErrorCode.InvalidRequest, errorMessage: expect.stringContaining('did not declare') });
    expect(JSON.parse(legOf(entries, 'relayed_request').body!)).toMatchObject({ params: { messages: [expect.anything()] } });
    expect(await relayedCount('elicitation/create', 'client_error')).toBe(before.clientError + 1);
    expect(await relayedCount('sampling/createMessage', 'refused')).toBe(before.refused + 1);
  });

  it('records a relayed request left unanswered when the client cancelled its call', async () => {
    let asked = 0;
    const client = await connectAudited({ elicitation: {} }, (c) =>
      c.setRequestHandler(ElicitRequestSchema, () => {
        asked += 1;
        return new Promise(() => undefined);
      }),
    );
    const controller = new AbortController();
    const call = client.callTool({ name: 'conf__test_elicitation', arguments: { message: 'audit-elicit-4' } }, undefined, { signal: controller.signal });
    await expect.poll(() => asked, { timeout: 5_000 }).toBe(1);
    controller.abort('changed my mind');
    await expect(call).rejects.toThrow();
    const entries = await callEntries('audit-elicit-4');
    expect(legOf(entries, 'relayed_request')).toMatchObject({ status: 'ok', jsonRpcId: expect.stringMatching(/^gatehouse-/) });
    expect(legOf(entries, 'relayed_response')).toMatchObject({ status: 'error', errorMessage: expect.stringMatching(/ended before it answered|cancelled by the upstream server/) });
    expect(legOf(entries, 'client_response')).toMatchObject({ status: 'error', errorCode: -32800 });
  });
});

describe('the GET stream', () => {
  it('relays an upstream tools/list_changed as the gateway list_changed to a client GET stream', async () => {
    let changes = 0;
    const client = await connect({}, (c) => c.setNotificationHandler(ToolListChangedNotificationSchema, () => void (changes += 1)));
    expect(client.getServerCapabilities()?.tools).toEqual({ listChanged: true });
    // The upstream session (and its own GET stream) opens on first use.
    expect((await client.listTools()).tools.map((t) => t.name)).toContain('mut__lookup');
    await new Promise((resolve) => setTimeout(resolve, 300));
    writeFileSync(join(stateDir, 'description'), 'Looks up a record by id (changed)');
    await expect.poll(() => changes, { timeout: 5_000 }).toBeGreaterThanOrEqual(1);
    const tools = await client.listTools();
    expect(tools.tools.find((t) => t.name === 'mut__lookup')?.description).toBe('Looks up a record by id (changed)');
  });

  it('relays resources/updated for a subscribed resource with its URI namespaced', async () => {
    const updated: string[] = [];
    const client = await connect({}, (c) => c.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updated.push(n.params.uri)));
    await client.subscribeResource({ uri: 'conf+test://watched-resource' });
    await client.callTool({ name: 'conf__test_trigger_resource_update', arguments: {} });
    await expect.poll(() => updated, { timeout: 5_000 }).toEqual(['conf+test://watched-resource']);
    await client.unsubscribeResource({ uri: 'conf+test://watched-resource' });
    await client.callTool({ name: 'conf__test_trigger_resource_update', arguments: {} });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(updated).toHaveLength(1);
  });

  it('gives events ids and replays what a reconnecting client missed (Last-Event-ID)', async () => {
    const headers = { authorization: `Bearer ${ACCESS_TOKEN}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    const init = await fetch(mcpUrl, {
      method: 'POST',
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
    });
    const session = init.headers.get('mcp-session-id')!;
    const sessionHeaders = { ...headers, 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' };
    const get = (extra: Record<string, string> = {}) => fetch(mcpUrl, { headers: { ...sessionHeaders, accept: 'text/event-stream', ...extra } });

    // First stream: read the priming id, then a list_changed event, then drop the stream.
    const first = await get();
    expect(first.headers.get('content-type')).toBe('text/event-stream');
    expect((await get()).status).toBe(409);
    const reader = first.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    const readUntil = async (pattern: RegExp) => {
      while (!pattern.test(text)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before ${pattern}: ${text}`);
        text += decoder.decode(value);
      }
    };
    await readUntil(/^id: \S+\n/m);
    writeFileSync(join(stateDir, 'description'), 'Looks up a record by id (v2)');
    await readUntil(/notifications\/tools\/list_changed/);
    const ids = [...text.matchAll(/^id: (\S+)$/gm)].map((m) => m[1]!);
    const lastSeen = ids.at(-1)!;
    await reader.cancel();
    await new Promise((resolve) => setTimeout(resolve, 100));

    // Missed while disconnected, replayed on reconnection after the last id seen.
    writeFileSync(join(stateDir, 'description'), 'Looks up a record by id (v3)');
    await new Promise((resolve) => setTimeout(resolve, 600));
    const resumed = await get({ 'last-event-id': lastSeen });
    const resumedReader = resumed.body!.getReader();
    let replay = '';
    while (!/notifications\/tools\/list_changed/.test(replay)) {
      const { value, done } = await resumedReader.read();
      if (done) break;
      replay += decoder.decode(value);
    }
    await resumedReader.cancel();
    expect(replay).toContain('notifications/tools/list_changed');
    // The priming event echoes where the client resumed from; no event it saw comes again.
    expect(replay).toMatch(new RegExp(`^id: ${lastSeen}\\ndata: \\n\\n`));
    const replayedIds = [...replay.matchAll(/^id: (\S+)\nevent: message$/gm)].map((m) => m[1]!);
    expect(replayedIds).not.toContain(lastSeen);
    await fetch(mcpUrl, { method: 'DELETE', headers: sessionHeaders });
  });
});

describe('the GET-stream buffer', () => {
  /** A response that records what is written to it. */
  function fakeResponse(): ServerResponse & { text: string } {
    const res = Object.assign(new EventEmitter(), {
      text: '',
      destroyed: false,
      writeHead: () => res,
      flushHeaders: () => undefined,
      write: (chunk: string) => ((res.text += chunk), true),
      end: () => res.emit('close'),
    });
    return res as unknown as ServerResponse & { text: string };
  }

  /** `SessionStreams` alone over a snapshot of the mutable fixture, with a session's claims. */
  async function standaloneStreams(options: ConstructorParameters<typeof SessionStreams>[0]) {
    const compiled = acceptSnapshot(undefined, await gatewaySnapshot([{ url: mutable.url, prefix: 'mut' }]));
    return {
      streams: new SessionStreams(options, () => compiled),
      upstreamKey: compiled.gatewaysBySlug.get(GATEWAY_SLUG)!.entries[0]!.upstreamKey,
      claims: { workspaceId: 'ws-conf', gatewayId: 'gw-conf', connectionId: 'conn-conf', protocolVersion: '2025-11-25', issuedAt: Date.now() },
    };
  }

  it('keeps a bounded number of events and replays only what follows Last-Event-ID', async () => {
    const { streams, upstreamKey, claims } = await standaloneStreams({ bufferSize: 3, idleMs: 60_000, listChangedRepeatMs: 0 });
    const first = fakeResponse();
    expect(await streams.open('s1', claims, 3_600_000, first, undefined, Date.now())).toBe(true);
    for (let i = 0; i < 5; i += 1) streams.onUpstreamNotification(upstreamKey, { method: 'notifications/tools/list_changed' });
    streams.onUpstreamNotification('another-upstream', { method: 'notifications/tools/list_changed' });
    const ids = [...first.text.matchAll(/^id: (\S+)$/gm)].map((m) => m[1]!);
    expect(ids).toHaveLength(6); // priming + 5 (nothing for an upstream the gateway does not use)
    first.emit('close');

    const resumed = fakeResponse();
    await streams.open('s1', claims, 3_600_000, resumed, ids[3], Date.now());
    expect([...resumed.text.matchAll(/^id: (\S+)\nevent: message$/gm)].map((m) => m[1])).toEqual([ids[4], ids[5]]);
    resumed.emit('close');

    // An id from elsewhere (another replica): everything still held, at most bufferSize.
    const foreign = fakeResponse();
    await streams.open('s1', claims, 3_600_000, foreign, 'other-7', Date.now());
    expect([...foreign.text.matchAll(/^id: (\S+)\nevent: message$/gm)].map((m) => m[1])).toEqual([ids[3], ids[4], ids[5]]);
    streams.close();
  });

  it('tells every change its own upstreams report, and a burst relayed by other replicas once at once and once when the window ends', async () => {
    const { streams, upstreamKey, claims } = await standaloneStreams({ bufferSize: 16, idleMs: 60_000, listChangedRepeatMs: 150 });
    const res = fakeResponse();
    await streams.open('s1', claims, 3_600_000, res, undefined, Date.now());
    const told = () => [...res.text.matchAll(/"notifications\/tools\/list_changed"/g)].length;
    streams.onUpstreamNotification(upstreamKey, { method: 'notifications/tools/list_changed' });
    streams.onUpstreamNotification(upstreamKey, { method: 'notifications/tools/list_changed' });
    expect(told()).toBe(2); // this replica's own upstream: every time
    // The same change relayed by other replicas (three times), and this replica's own relay (ignored).
    for (let i = 0; i < 3; i += 1) streams.onSharedListChanged(['gw-conf'], 'notifications/tools/list_changed', 'another-replica');
    streams.onSharedListChanged(['gw-conf'], 'notifications/tools/list_changed', streams.replica);
    expect(told()).toBe(2);
    await expect.poll(told, { timeout: 2_000 }).toBe(3); // once, when the window ends
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(told()).toBe(3);
    // A relayed change after the window is told at once.
    streams.onSharedListChanged(['gw-conf'], 'notifications/tools/list_changed', 'another-replica');
    expect(told()).toBe(4);
    streams.close();
  });

  it('replays from a shared log what follows Last-Event-ID, each subject once where it last occurred, and what only this replica holds', () => {
    const event = (id: string, method: string, uri?: string) => ({ id, data: JSON.stringify({ jsonrpc: '2.0', method, ...(uri ? { params: { uri } } : {}) }) });
    const logged = [
      event('a-1', 'notifications/tools/list_changed'),
      event('a-2', 'notifications/resources/updated', 'x://one'),
      event('a-3', 'notifications/tools/list_changed'),
      event('b-1', 'notifications/tools/list_changed'), // the same change, logged by another replica
      event('a-4', 'notifications/resources/updated', 'x://two'),
      event('a-5', 'notifications/resources/updated', 'x://one'),
    ];
    const ids = (events: { id: string }[]) => events.map((e) => e.id);
    expect(ids(missedEvents(logged, 'a-2', []))).toEqual(['b-1', 'a-4', 'a-5']);
    expect(ids(missedEvents(logged, 'a-5', []))).toEqual([]);
    // An id the log no longer holds (trimmed, or never logged): everything it holds, once per subject.
    expect(ids(missedEvents(logged, 'gone-9', []))).toEqual(['b-1', 'a-4', 'a-5']);
    // This replica's events the log lacks (pushed while it was read, or while Redis was away) come last.
    const local = [logged[4]!, event('c-7', 'notifications/prompts/list_changed')];
    expect(ids(missedEvents(logged, 'a-4', local))).toEqual(['a-5', 'c-7']);
  });

  it('relays a list change to the other replicas even with no session of its own', async () => {
    const compiled = acceptSnapshot(undefined, await gatewaySnapshot([{ url: mutable.url, prefix: 'mut' }]));
    const published: unknown[] = [];
    const forwards = { publishForward: async (message: unknown) => void published.push(message), subscribeForwards: () => undefined };
    const streams = new SessionStreams(DEFAULT_SESSION_STREAMS, () => compiled, { forwards, unwatched: () => undefined });
    expect(streams.size).toBe(0);
    streams.onUpstreamNotification(compiled.gatewaysBySlug.get(GATEWAY_SLUG)!.entries[0]!.upstreamKey, { method: 'notifications/tools/list_changed' });
    expect(published).toEqual([{ kind: 'list-changed', gateways: ['gw-conf'], method: 'notifications/tools/list_changed', from: streams.replica }]);
    streams.close();
  });
});

describe('a client whose messages land on another replica than its call (Redis)', () => {
  const replicas: DataPlane[] = [];
  const urls: string[] = [];
  /** The client's fetch: requests and the initialize go to replica A, its cancellations and answers to replica B. */
  let split: FetchLike;
  const forwardedTo: string[] = [];

  beforeAll(async () => {
    for (let i = 0; i < 2; i++) {
      const replica = buildDataPlane({ port: 0, sessionSecret: SECRET, callTimeoutMs: 20_000, redisUrl: REDIS_URL }, { snapshots });
      replicas.push(replica);
      urls.push(`${(await replica.listen()).url}/mcp/${GATEWAY_SLUG}`);
    }
    split = async (input, init) => {
      const body = typeof init?.body === 'string' ? (JSON.parse(init.body) as { method?: string; id?: unknown }) : undefined;
      const toB = body !== undefined && (body.method === 'notifications/cancelled' || (body.method === undefined && body.id !== undefined));
      if (toB) forwardedTo.push(body.method ?? 'response');
      return fetch(toB ? urls[1]! : urls[0]!, init);
    };
  });

  afterAll(async () => {
    for (const replica of replicas) await replica.close();
  });

  /** A 2025-11-25 session opened with raw HTTP on one replica: the headers of its later requests. */
  async function rawSession(on: string): Promise<Record<string, string>> {
    const headers = { authorization: `Bearer ${ACCESS_TOKEN}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    const init = await fetch(on, {
      method: 'POST',
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
    });
    return { ...headers, 'mcp-session-id': init.headers.get('mcp-session-id')!, 'mcp-protocol-version': '2025-11-25' };
  }

  it('cancels the upstream request when the cancellation reaches the other replica', async () => {
    const client = await connect({}, undefined, split);
    const started = slow.started;
    const cancelled = slow.cancelled;
    const controller = new AbortController();
    const call = client.callTool({ name: 'slow__wait', arguments: {} }, undefined, { signal: controller.signal });
    await expect.poll(() => slow.started, { timeout: 5_000 }).toBe(started + 1);
    controller.abort('changed my mind');
    await expect(call).rejects.toThrow();
    await expect.poll(() => slow.cancelled, { timeout: 5_000 }).toBe(cancelled + 1);
    expect(forwardedTo).toContain('notifications/cancelled');
  });

  it('routes an answer to a relayed elicitation back through the replica holding the call', async () => {
    const client = await connect({ elicitation: {} }, (c) => c.setRequestHandler(ElicitRequestSchema, () => ({ action: 'accept', content: { username: 'ada', email: 'ada@example.com' } })), split);
    const before = forwardedTo.filter((m) => m === 'response').length;
    const result = await client.callTool({ name: 'conf__test_elicitation', arguments: { message: 'who are you?' } });
    expect(textOf(result)).toBe('Elicitation completed: action=accept, content={"username":"ada","email":"ada@example.com"}');
    expect(forwardedTo.filter((m) => m === 'response').length).toBe(before + 1);
  });

  it('resumes a call stream through the other replica: the SDK client polls replica B for a call replica A holds', async () => {
    const resumedOn: string[] = [];
    const pollOnB: FetchLike = async (input, init) => {
      const lastEventId = init?.headers instanceof Headers ? init.headers.get('last-event-id') : undefined;
      if (init?.method === 'GET' && lastEventId) {
        resumedOn.push(lastEventId);
        return fetch(urls[1]!, init);
      }
      return fetch(urls[0]!, init);
    };
    const client = await connect({}, undefined, pollOnB);
    expect(textOf(await client.callTool({ name: 'conf__test_reconnection', arguments: {} }))).toBe('Reconnection test completed successfully');
    expect(resumedOn).toEqual([expect.stringMatching(/^p\.[\w]+\.0$/)]);
  });

  it('carries the rest of a dropped stream and its answer from the replica holding the call to the one the client came back to', async () => {
    const session = await rawSession(urls[0]!);
    const post = await fetch(urls[0]!, { method: 'POST', headers: session, body: JSON.stringify({ jsonrpc: '2.0', id: 31, method: 'tools/call', params: { name: 'conf__test_tool_with_logging', arguments: {} } }) });
    const reader = post.body!.pipeThrough(new TextDecoderStream()).getReader();
    let seen = '';
    while (!seen.includes('Tool execution started')) seen += (await reader.read()).value ?? '';
    await reader.cancel();
    const lastId = [...seen.matchAll(/^id: (\S+)$/gm)].at(-1)![1]!;
    const resumed = await fetch(urls[1]!, { method: 'GET', headers: { ...session, accept: 'text/event-stream', 'last-event-id': lastId } });
    const rest = await resumed.text();
    const data = [...rest.matchAll(/^data: (.+)$/gm)].map((m) => m[1]!);
    expect(data.map((d) => (JSON.parse(d) as { params?: { data?: string } }).params?.data ?? 'answer')).toEqual(['Tool processing data', 'Tool execution completed', 'answer']);
    expect(data.at(-1)).toContain('"id":31,"result"');
    expect([...rest.matchAll(/^id: p\.[\w]+\.(\d+)$/gm)].map((m) => Number(m[1]))).toEqual([1, 2, 3, 4]); // the priming echo of the client's id, then 2, 3, 4
  });

  it('delivers a subscription made through replica A on the GET stream held by replica B, and an unsubscribe made through B stops it', async () => {
    const updated: string[] = [];
    const sentTo: string[] = [];
    // GET streams and unsubscribes go to replica B; everything else (subscribe, the tool that triggers the update) to A.
    const routed: FetchLike = async (input, init) => {
      const body = typeof init?.body === 'string' ? (JSON.parse(init.body) as { method?: string }) : undefined;
      const toB = init?.method === 'GET' || body?.method === 'resources/unsubscribe';
      sentTo.push(`${init?.method === 'GET' ? 'GET' : (body?.method ?? '?')}→${toB ? 'B' : 'A'}`);
      return fetch(toB ? urls[1]! : urls[0]!, init);
    };
    const client = await connect({}, (c) => c.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updated.push(n.params.uri)), routed);
    await expect.poll(() => sentTo.includes('GET→B'), { timeout: 5_000 }).toBe(true);
    await client.subscribeResource({ uri: 'conf+test://watched-resource' });
    await client.callTool({ name: 'conf__test_trigger_resource_update', arguments: {} });
    await expect.poll(() => updated, { timeout: 5_000 }).toEqual(['conf+test://watched-resource']);
    await client.unsubscribeResource({ uri: 'conf+test://watched-resource' });
    expect(sentTo).toContain('resources/unsubscribe→B');
    await client.callTool({ name: 'conf__test_trigger_resource_update', arguments: {} });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(updated).toHaveLength(1);
  });

  it("tells a session whose GET stream is on replica B of a list change only replica A's upstream session saw", async () => {
    let changes = 0;
    // GET streams go to B; everything else to A, so only A opens upstream sessions to the mutable server.
    const getOnB: FetchLike = async (input, init) => fetch(init?.method === 'GET' ? urls[1]! : urls[0]!, init);
    const client = await connect({}, (c) => c.setNotificationHandler(ToolListChangedNotificationSchema, () => void (changes += 1)), getOnB);
    expect((await client.listTools()).tools.map((t) => t.name)).toContain('mut__lookup');
    const mutableKey = snapshots.current()!.gatewaysBySlug.get(GATEWAY_SLUG)!.entries.find((e) => e.assignment.namespacePrefix === 'mut')!.upstreamKey;
    expect(replicas[1]!.pool.peek(mutableKey)).toBeUndefined(); // B has no session of its own to tell it
    await new Promise((resolve) => setTimeout(resolve, 300));
    writeFileSync(join(stateDir, 'description'), `Looks up a record by id (changed on A at ${Date.now()})`);
    await expect.poll(() => changes, { timeout: 5_000 }).toBeGreaterThanOrEqual(1);
  });

  it('replays through replica B what the GET stream on replica A missed while the client was away, then carries live events', async () => {
    const session = await rawSession(urls[0]!);
    const post = async (id: number, method: string, params: Record<string, unknown>) =>
      (await fetch(urls[0]!, { method: 'POST', headers: session, body: JSON.stringify({ jsonrpc: '2.0', id, method, params }) })).text();
    const get = (on: string, lastEventId?: string) =>
      fetch(on, { method: 'GET', headers: { ...session, accept: 'text/event-stream', ...(lastEventId ? { 'last-event-id': lastEventId } : {}) } });
    /** Reads a stream until `until` matches what was read, then stops reading it. */
    const readUntil = async (response: Response, until: (text: string) => boolean) => {
      const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
      let text = '';
      while (!until(text)) {
        const { value, done } = await reader.read();
        if (done) break;
        text += value;
      }
      await reader.cancel();
      return text;
    };
    // The resources/updated events of a stream. It may carry list changes too: other tests
    // change the mutable upstream's tools, and every session of the gateway is told.
    const updates = (text: string) =>
      [...text.matchAll(/^id: (\S+)\nevent: message\ndata: (.+)$/gm)]
        .map((m) => ({ id: m[1]!, message: JSON.parse(m[2]!) as { method: string; params: { uri: string } } }))
        .filter((event) => event.message.method === 'notifications/resources/updated');

    expect(await post(2, 'resources/subscribe', { uri: 'conf+test://watched-resource' })).toContain('"result"');
    const onA = await readUntil(await get(urls[0]!), (text) => /^id: \S+\n/m.test(text));
    const lastSeen = /^id: (\S+)$/m.exec(onA)![1]!;
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Two updates while no stream is open: A holds the subscription and logs them.
    await post(3, 'tools/call', { name: 'conf__test_trigger_resource_update', arguments: {} });
    await post(4, 'tools/call', { name: 'conf__test_trigger_resource_update', arguments: {} });
    await new Promise((resolve) => setTimeout(resolve, 200));

    // The client comes back through B: what it missed, once (both updates say "read it again").
    const resumed = await get(urls[1]!, lastSeen);
    expect(resumed.status).toBe(200);
    const reader = resumed.body!.pipeThrough(new TextDecoderStream()).getReader();
    let onB = '';
    while (updates(onB).length < 1) onB += (await reader.read()).value ?? '';
    expect(updates(onB).map((u) => [u.message.method, u.message.params.uri])).toEqual([['notifications/resources/updated', 'conf+test://watched-resource']]);
    // The stream on B goes on with live updates from A's subscription.
    await post(5, 'tools/call', { name: 'conf__test_trigger_resource_update', arguments: {} });
    while (updates(onB).length < 2) onB += (await reader.read()).value ?? '';
    await reader.cancel();
    const seen = updates(onB);
    expect(seen).toHaveLength(2);
    await new Promise((resolve) => setTimeout(resolve, 100));

    // Back to A with the last id seen on B: nothing is replayed twice.
    const stop = new AbortController();
    const again = await fetch(urls[0]!, { method: 'GET', headers: { ...session, accept: 'text/event-stream', 'last-event-id': seen.at(-1)!.id }, signal: stop.signal });
    const againReader = again.body!.pipeThrough(new TextDecoderStream()).getReader();
    setTimeout(() => stop.abort(), 500);
    let replayed = '';
    for (;;) {
      const next = await againReader.read().catch(() => ({ done: true, value: undefined }));
      if (next.done) break;
      replayed += next.value;
    }
    expect(replayed).toMatch(/^id: \S+\ndata: \n\n/);
    expect(updates(replayed)).toEqual([]);

    // Ending the session drops its log.
    const redis = new Redis(REDIS_URL);
    const logKey = `gatehouse:session-events:${sessionTag(session['mcp-session-id']!)}`;
    try {
      expect(await redis.llen(logKey)).toBeGreaterThan(0);
      expect((await fetch(urls[1]!, { method: 'DELETE', headers: session })).status).toBe(200);
      await expect.poll(() => redis.exists(logKey), { timeout: 2_000 }).toBe(0);
    } finally {
      redis.disconnect();
    }
  });

  it('the SDK client, its GET stream cut on replica A, reconnects through replica B and gets the update it missed', async () => {
    const updated: string[] = [];
    const resumedWith: (string | null)[] = [];
    let cut: (() => void) | undefined;
    // POSTs go to A; the first GET stream is A's, and can be cut as a network drop would; later GETs go to B.
    const routed: FetchLike = async (input, init) => {
      if (init?.method !== 'GET') return fetch(urls[0]!, init);
      if (cut !== undefined) {
        resumedWith.push(new Headers(init.headers).get('last-event-id'));
        return fetch(urls[1]!, init);
      }
      const response = await fetch(urls[0]!, init);
      const upstream = response.body!.getReader();
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          cut = () => {
            controller.error(new Error('network cut'));
            void upstream.cancel();
          };
        },
        async pull(controller) {
          const { value, done } = await upstream.read();
          try {
            if (done) controller.close();
            else controller.enqueue(value);
          } catch {
            // cut meanwhile
          }
        },
      });
      return new Response(body, { status: response.status, headers: response.headers });
    };
    const transport = new StreamableHTTPClientTransport(new URL(urls[0]!), {
      fetch: routed,
      requestInit: { headers: { Authorization: `Bearer ${ACCESS_TOKEN}` } },
      reconnectionOptions: { initialReconnectionDelay: 1_000, maxReconnectionDelay: 1_000, reconnectionDelayGrowFactor: 1, maxRetries: 3 },
    });
    const client = new Client({ name: 'streaming-test', version: '1.0.0' }, { capabilities: {} });
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updated.push(n.params.uri));
    await client.connect(transport);
    open.push({ client, transport });
    await expect.poll(() => cut !== undefined, { timeout: 5_000 }).toBe(true);
    await client.subscribeResource({ uri: 'conf+test://watched-resource' });
    await client.callTool({ name: 'conf__test_trigger_resource_update', arguments: {} });
    await expect.poll(() => updated.length, { timeout: 5_000 }).toBe(1); // live, on A's stream

    cut!();
    await new Promise((resolve) => setTimeout(resolve, 100));
    // While no replica holds the session's GET stream (the client waits a second to come back).
    await client.callTool({ name: 'conf__test_trigger_resource_update', arguments: {} });
    await expect.poll(() => updated.length, { timeout: 5_000 }).toBe(2);
    expect(resumedWith).toEqual([expect.stringMatching(/\S/)]);
    expect(updated).toEqual(['conf+test://watched-resource', 'conf+test://watched-resource']);
  });

  it('serves a GET whose stream no replica holds as the session stream, after a short wait', async () => {
    const session = { ...(await rawSession(urls[1]!)), accept: 'text/event-stream', 'last-event-id': 'p.nosuchstream.3' };
    const controller = new AbortController();
    const response = await fetch(urls[1]!, { method: 'GET', headers: session, signal: controller.signal });
    expect(response.status).toBe(200);
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    const first = (await reader.read()).value ?? '';
    controller.abort();
    expect(first).toMatch(/^id: (?!p\.)\S+\n/);
  });
});

/** The conformance fixture in this process, one server per session, and able to forget every session as a restarted server would. */
async function startForgetfulUpstream(): Promise<{ url: string; server: Server; initializes: () => number; forget: () => void }> {
  let transports = new Map<string, StreamableHTTPServerTransport>();
  let initializes = 0;
  const server = createServer((req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const body = chunks.length > 0 ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { method?: string }) : undefined;
      const id = req.headers['mcp-session-id'];
      let transport = typeof id === 'string' ? transports.get(id) : undefined;
      if (!transport && body?.method === 'initialize') {
        initializes += 1;
        const created = new StreamableHTTPServerTransport({ sessionIdGenerator: () => crypto.randomUUID(), onsessioninitialized: (sessionId) => void transports.set(sessionId, created) });
        await createConformanceServer().connect(created);
        transport = created;
      }
      if (!transport) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"Session not found"}}');
        return;
      }
      await transport.handleRequest(req, res, body);
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    server,
    initializes: () => initializes,
    forget: () => {
      for (const transport of transports.values()) void transport.close();
      transports = new Map();
    },
  };
}

describe('an upstream that forgets its session', () => {
  it('subscribes again on the new upstream session to what clients still watch, so their updates keep coming', async () => {
    const upstream = await startForgetfulUpstream();
    const source = new InMemorySnapshotSource();
    source.offer(await gatewaySnapshot([{ url: upstream.url, prefix: 'fg' }]));
    const replica = buildDataPlane({ port: 0, sessionSecret: SECRET, callTimeoutMs: 10_000 }, { snapshots: source });
    const url = `${(await replica.listen()).url}/mcp/${GATEWAY_SLUG}`;
    const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${ACCESS_TOKEN}` } } });
    const client = new Client({ name: 'forgetful-test', version: '1' });
    const updated: string[] = [];
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updated.push(n.params.uri));
    try {
      await client.connect(transport);
      await client.subscribeResource({ uri: 'fg+test://watched-resource' });
      const trigger = () => client.callTool({ name: 'fg__test_trigger_resource_update', arguments: {} });
      await trigger();
      await expect.poll(() => updated.length, { timeout: 5_000 }).toBe(1);

      const sessionsBefore = upstream.initializes(); // the gateway's, and the snapshot fixture's discovery
      upstream.forget(); // a restarted upstream: the gateway's next request gets 404 and re-initializes
      await trigger();
      expect(upstream.initializes()).toBe(sessionsBefore + 1);
      // The renewal runs beside the call that found the session gone: the next changes are seen.
      await expect
        .poll(async () => (await trigger(), updated.length), { timeout: 5_000, interval: 100 })
        .toBeGreaterThan(1);
      expect(updated.every((uri) => uri === 'fg+test://watched-resource')).toBe(true);
    } finally {
      await client.close().catch(() => undefined);
      await replica.close();
      upstream.server.closeAllConnections();
      await new Promise((resolve) => upstream.server.close(resolve));
    }
  });
});

describe('resumable call streams (Last-Event-ID, SEP-1699)', () => {
  const transport = new MemoryAuditTransport();
  let resumable: DataPlane;
  let url: string;

  beforeAll(async () => {
    const audit = new AuditShipper({ transport, flushIntervalMs: 20 });
    resumable = buildDataPlane({ port: 0, sessionSecret: SECRET, callTimeoutMs: 20_000, streamResumeGraceMs: 1_500, streamPrimeAfterMs: 40 }, { snapshots, audit });
    url = `${(await resumable.listen()).url}/mcp/${GATEWAY_SLUG}`;
  });
  afterAll(async () => {
    await resumable?.close();
  });

  const base = { authorization: `Bearer ${ACCESS_TOKEN}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

  async function session(protocolVersion = '2025-11-25'): Promise<Record<string, string>> {
    const init = await fetch(url, {
      method: 'POST',
      headers: base,
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion, capabilities: {}, clientInfo: { name: 'resumer', version: '1' } } }),
    });
    const headers = { ...base, 'mcp-session-id': init.headers.get('mcp-session-id')!, 'mcp-protocol-version': protocolVersion };
    await fetch(url, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) });
    return headers;
  }

  interface Event {
    readonly id: string | undefined;
    readonly data: string;
  }

  /** Reads SSE events from a response until `stop` says so (then drops the connection) or the stream ends. */
  async function readEvents(response: Response, stop: (event: Event) => boolean = () => false): Promise<Event[]> {
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    const events: Event[] = [];
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return events;
      buffer += value;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const lines = buffer.slice(0, end).split('\n');
        buffer = buffer.slice(end + 2);
        const id = lines.find((line) => line.startsWith('id: '))?.slice(4);
        const data = lines.find((line) => line.startsWith('data: '))?.slice(6);
        if (data === undefined) continue;
        const event = { id, data };
        events.push(event);
        if (stop(event)) {
          await reader.cancel();
          return events;
        }
      }
    }
  }

  const call = (headers: Record<string, string>, id: number, name: string, signal?: AbortSignal) =>
    fetch(url, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} } }), ...(signal ? { signal } : {}) });
  const resume = (headers: Record<string, string>, lastEventId: string) =>
    fetch(url, { method: 'GET', headers: { ...headers, accept: 'text/event-stream', 'last-event-id': lastEventId } });
  /** The audited answer of call `jsonRpcId` (the ids of this block are unique; only its data plane audits). */
  const auditedResponse = async (jsonRpcId: string) => {
    const find = () => transport.entries().find((e) => e.leg === 'client_response' && e.method === 'tools/call' && e.jsonRpcId === jsonRpcId);
    await expect.poll(() => find() !== undefined, { timeout: 5_000 }).toBe(true);
    return find()!;
  };

  it('lets a client that lost the stream mid-call resume it with Last-Event-ID: the rest, then the answer, and the call is not cancelled', async () => {
    const headers = await session();
    const post = await call(headers, 21, 'conf__test_tool_with_logging');
    expect(post.headers.get('content-type')).toBe('text/event-stream');
    // The connection drops after the first log message.
    const before = await readEvents(post, (event) => event.data.includes('Tool execution started'));
    expect(before[0]).toMatchObject({ id: expect.stringMatching(/^p\.[\w]+\.0$/), data: '' });
    const after = await readEvents(await resume(headers, before.at(-1)!.id!));
    const messages = [...before, ...after].filter((event) => event.data !== '');
    expect(messages.map((event) => (JSON.parse(event.data) as { params?: { data?: string } }).params?.data ?? 'answer')).toEqual([
      'Tool execution started',
      'Tool processing data',
      'Tool execution completed',
      'answer',
    ]);
    expect(JSON.parse(messages.at(-1)!.data)).toMatchObject({ id: 21, result: { content: [{ text: 'Tool with logging executed successfully' }] } });
    const seqs = messages.map((event) => Number(event.id!.split('.')[2]));
    expect(seqs).toEqual([1, 2, 3, 4]);
    // Audited as answered, not as a call the client went away from.
    expect(await auditedResponse('21')).toMatchObject({ status: 'ok', errorCode: null });
  });

  it('keeps an answer that came while the client was away for it to fetch', async () => {
    const headers = await session();
    const post = await call(headers, 22, 'conf__test_tool_with_logging');
    const before = await readEvents(post, (event) => event.data.includes('Tool execution started'));
    await new Promise((resolve) => setTimeout(resolve, 300)); // the call ends meanwhile
    const after = await readEvents(await resume(headers, before.at(-1)!.id!));
    expect(after.at(-1)!.data).toContain('"id":22,"result"');
    // Fetched once: a second resumption of the finished stream finds nothing to continue.
    const again = await readEvents(await resume(headers, before.at(-1)!.id!), () => true);
    expect(again[0]!.id).not.toMatch(/^p\./);
  });

  it('cancels the call upstream when its client does not come back within the grace period', async () => {
    const headers = await session();
    const started = slow.started;
    const cancelled = slow.cancelled;
    const post = await call(headers, 23, 'slow__wait');
    // Nothing comes before the answer: after streamPrimeAfterMs the stream opens with a priming event anyway.
    const priming = await readEvents(post, () => true);
    expect(priming).toEqual([{ id: expect.stringMatching(/^p\.[\w]+\.0$/), data: '' }]);
    await expect.poll(() => slow.started, { timeout: 5_000 }).toBe(started + 1);
    expect(slow.cancelled).toBe(cancelled); // the dropped connection alone cancels nothing
    await expect.poll(() => slow.cancelled, { timeout: 5_000 }).toBe(cancelled + 1);
    expect(await auditedResponse('23')).toMatchObject({ status: 'error', errorCode: -32800 });
  });

  it('passes on an upstream that closes its stream to be polled, to 2025-11-25 clients only; the SDK client polls and gets the answer', async () => {
    const sdk = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${ACCESS_TOKEN}` } } });
    const client = new Client({ name: 'poller', version: '1' });
    await client.connect(sdk);
    try {
      expect(textOf(await client.callTool({ name: 'conf__test_reconnection', arguments: {} }))).toBe('Reconnection test completed successfully');
    } finally {
      await sdk.terminateSession().catch(() => undefined);
      await client.close();
    }
    // Raw: the POST stream is primed and closed without the answer, which comes on the GET.
    const headers = await session();
    const post = await readEvents(await call(headers, 24, 'conf__test_reconnection'));
    expect(post).toEqual([{ id: expect.stringMatching(/^p\.[\w]+\.0$/), data: '' }]);
    const polled = await readEvents(await resume(headers, post[0]!.id!));
    expect(polled.at(-1)!.data).toContain('"id":24,"result"');
    // A 2025-06-18 session is not asked to poll: the gateway waits for the upstream and answers on the POST.
    const older = await session('2025-06-18');
    const answer = await call(older, 25, 'conf__test_reconnection');
    const body = answer.headers.get('content-type') === 'application/json' ? await answer.text() : (await readEvents(answer)).at(-1)!.data;
    expect(body).toContain('"id":25,"result"');
  });

  it('never resumes another session\'s stream', async () => {
    const owner = await session();
    const post = await call(owner, 26, 'conf__test_tool_with_logging');
    const before = await readEvents(post, (event) => event.data.includes('Tool execution started'));
    const intruder = await session();
    const theirs = await readEvents(await resume(intruder, before.at(-1)!.id!), () => true);
    // The intruder gets its own session stream (its priming event), nothing of the owner's call.
    expect(theirs[0]!.id).not.toMatch(/^p\./);
    const mine = await readEvents(await resume(owner, before.at(-1)!.id!));
    expect(mine.at(-1)!.data).toContain('"id":26,"result"');
  });
});
