import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDataPlane, type DataPlane } from '../../../data-plane/app.js';
import { InMemorySnapshotSource } from '../../../data-plane/snapshot/snapshot-source.js';
import { hashFeatureDefinition, type SnapshotUpstream } from '../../../schema/snapshot/index.js';
import { everythingStdioCommand, freePort, startEverythingHttp, type RunningServer } from '../../fixtures/mcp/spawn.js';
import { TOKENS, fixtureSnapshot } from '../../unit/data-plane/fixtures.js';

const SECRET = 'integration-session-secret-0123456789abcdef';

let everything: RunningServer;
let snapshots: InMemorySnapshotSource;
let plane: DataPlane;
let twin: DataPlane;
let baseUrl: string;
let twinUrl: string;
const clients: { client: Client; transport: StreamableHTTPClientTransport }[] = [];

beforeAll(async () => {
  everything = await startEverythingHttp();
  // What discovery would have recorded: the live definition hash of echo.
  const probe = new Client({ name: 'probe', version: '1' });
  await probe.connect(new StreamableHTTPClientTransport(new URL(everything.url)));
  const echo = (await probe.listTools()).tools.find((tool) => tool.name === 'echo')!;
  await probe.close();

  const stdio = everythingStdioCommand();
  const stdioUpstream: SnapshotUpstream = { kind: 'managed-stdio', command: stdio.command, args: stdio.args, env: {}, secretEnv: {}, cwd: null };
  const deadPort = await freePort();
  snapshots = new InMemorySnapshotSource();
  snapshots.offer(
    fixtureSnapshot({
      httpUpstream: { kind: 'remote', url: everything.url, transport: 'streamable-http', allowInsecure: false },
      stdioUpstream,
      deadUpstream: { kind: 'remote', url: `http://127.0.0.1:${deadPort}/mcp`, transport: 'streamable-http', allowInsecure: false },
      liveHashes: { 'tools:echo': hashFeatureDefinition('tools', echo as Record<string, unknown>) },
    }),
  );
  plane = buildDataPlane({ port: 0, sessionSecret: SECRET, listTimeoutMs: 5_000, callTimeoutMs: 10_000, maxBodyBytes: 64 * 1024 }, { snapshots });
  baseUrl = (await plane.listen()).url;
  twin = buildDataPlane({ port: 0, sessionSecret: SECRET }, { snapshots });
  twinUrl = (await twin.listen()).url;
}, 60_000);

afterAll(async () => {
  for (const { client, transport } of clients) {
    await transport.terminateSession().catch(() => undefined);
    await client.close().catch(() => undefined);
  }
  await plane?.close();
  await twin?.close();
  await everything?.close();
});

async function connect(token: string, slug = 'eng'): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL(`${baseUrl}/mcp/${slug}`), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  const client = new Client({ name: 'gatehouse-test', version: '1.0.0' });
  await client.connect(transport);
  clients.push({ client, transport });
  return client;
}

async function rpcError(promise: Promise<unknown>): Promise<McpError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof McpError) return error;
    throw error;
  }
  throw new Error('expected a JSON-RPC error');
}

const JSON_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

function post(url: string, body: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { ...JSON_HEADERS, authorization: `Bearer ${TOKENS.eng}`, ...headers }, body });
}

const initializeBody = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
});

async function rawSession(url = baseUrl): Promise<string> {
  const response = await post(`${url}/mcp/eng`, initializeBody);
  expect(response.status).toBe(200);
  return response.headers.get('mcp-session-id')!;
}

describe('data plane with the SDK client', () => {
  it('answers initialize itself, naming the gateway and merging capabilities', async () => {
    const client = await connect(TOKENS.eng);
    expect(client.getServerVersion()).toMatchObject({ name: 'gatehouse/eng', title: 'Engineering' });
    expect(client.getServerCapabilities()).toEqual({
      tools: { listChanged: true },
      prompts: { listChanged: true },
      resources: { subscribe: true, listChanged: true },
      completions: {},
      logging: {},
    });
    await client.ping();
  });

  it('lists only provisioned, served tools, namespaced, with overrides applied; a dead upstream is named in _meta', async () => {
    const client = await connect(TOKENS.eng);
    const result = await client.listTools();
    expect(result.tools.map((tool) => tool.name).sort()).toEqual(['local__echo', 'web__echo']);
    const webEcho = result.tools.find((tool) => tool.name === 'web__echo')!;
    expect(webEcho.description).toBe('Echoes a message (through Gatehouse)');
    expect(webEcho.annotations).toBeUndefined();
    expect(result._meta?.['gatehouse/unavailable']).toEqual([expect.objectContaining({ server: 'Dead server', code: 'UPSTREAM_UNREACHABLE' })]);
  });

  it('calls echo through the gateway over Streamable HTTP and over managed stdio', async () => {
    const client = await connect(TOKENS.eng);
    expect(await client.callTool({ name: 'web__echo', arguments: { message: 'hello' } })).toMatchObject({ content: [{ type: 'text', text: 'Echo: hello' }] });
    expect(await client.callTool({ name: 'local__echo', arguments: { message: 'stdio' } })).toMatchObject({ content: [{ type: 'text', text: 'Echo: stdio' }] });
  });

  it('routes prompts/get and resources/read (by exact URI and by template) with names translated back', async () => {
    const client = await connect(TOKENS.eng);
    const prompt = await client.getPrompt({ name: 'local__simple-prompt' });
    expect(prompt.messages.length).toBeGreaterThan(0);
    const templates = await client.listResourceTemplates();
    expect(templates.resourceTemplates.map((t) => t.uriTemplate)).toEqual(['web+demo://resource/dynamic/text/{resourceId}']);
    const read = await client.readResource({ uri: 'web+demo://resource/dynamic/text/3' });
    expect(read.contents[0]?.uri).toBe('web+demo://resource/dynamic/text/3');
    const resources = await client.listResources();
    expect(resources.resources.map((r) => r.uri)).toEqual(['web+demo://resource/static/document/architecture.md']);
    const doc = await client.readResource({ uri: 'web+demo://resource/static/document/architecture.md' });
    expect(doc.contents[0]?.uri).toBe('web+demo://resource/static/document/architecture.md');
  });

  it('refuses an unprovisioned tool and a withheld one, naming why', async () => {
    const client = await connect(TOKENS.eng);
    const unprovisioned = await rpcError(client.callTool({ name: 'web__get-env', arguments: {} }));
    expect(unprovisioned.code).toBe(-32602);
    expect(unprovisioned.message).toContain('tool "web__get-env" is not provisioned on gateway "eng"');
    const withheld = await rpcError(client.callTool({ name: 'web__get-sum', arguments: { a: 1, b: 2 } }));
    expect(withheld.message).toContain('tool "web__get-sum" is withheld on gateway "eng": its definition changed since it was pinned');
    expect(withheld.data).toEqual({ code: 'WITHHELD', reason: 'PIN_MISMATCH' });
  });

  it('gives a clean error naming a dead upstream while other assignments keep working', async () => {
    const client = await connect(TOKENS.eng);
    const dead = await rpcError(client.callTool({ name: 'dead__echo', arguments: { message: 'x' } }));
    expect(dead.code).toBe(-32060);
    expect(dead.message).toContain('server "Dead server" is unreachable');
    expect(await client.callTool({ name: 'web__echo', arguments: { message: 'still' } })).toMatchObject({ content: [{ text: 'Echo: still' }] });
  });

  it('initializes each upstream once and reuses it across sessions and calls', async () => {
    const a = await connect(TOKENS.eng);
    const b = await connect(TOKENS.machine);
    for (let i = 0; i < 3; i += 1) {
      await a.callTool({ name: 'web__echo', arguments: { message: `a${i}` } });
      await b.callTool({ name: 'local__echo', arguments: { message: `b${i}` } });
    }
    const eng = snapshots.current()!.gatewaysBySlug.get('eng')!;
    for (const id of ['asg-http', 'asg-stdio']) {
      const entry = eng.entries.find((e) => e.assignment.id === id)!;
      expect(plane.pool.peek(entry.upstreamKey)?.initializations).toBe(1);
    }
  });
});

describe('data plane edge cases over raw HTTP', () => {
  it('answers 401 with a Bearer challenge to a missing or unknown token', async () => {
    const missing = await fetch(`${baseUrl}/mcp/eng`, { method: 'POST', headers: JSON_HEADERS, body: initializeBody });
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer realm="gatehouse"');
    const bad = await post(`${baseUrl}/mcp/eng`, initializeBody, { authorization: 'Bearer gh_at_not-a-real-token' });
    expect(bad.status).toBe(401);
    expect(bad.headers.get('www-authenticate')).toContain('error="invalid_token"');
    expect(((await bad.json()) as { error: { code: number } }).error.code).toBe(-32051);
  });

  it('refuses a switched-off connection with 403 naming it, and the SDK client sees it too', async () => {
    const response = await post(`${baseUrl}/mcp/eng`, initializeBody, { authorization: `Bearer ${TOKENS.off}` });
    expect(response.status).toBe(403);
    const body = (await response.json()) as { error: { message: string; data: { code: string; level: string } } };
    expect(body.error.message).toBe('connection conn-off is switched off by an admin');
    expect(body.error.data).toEqual({ code: 'DISABLED', level: 'connection' });
    await expect(connect(TOKENS.off)).rejects.toThrow();
  });

  it('refuses a token on another gateway with 403', async () => {
    const response = await post(`${baseUrl}/mcp/eng`, initializeBody, { authorization: `Bearer ${TOKENS.ops}` });
    expect(response.status).toBe(403);
  });

  it('answers spec errors: -32700, -32600, -32601, 415, 406, 413, 400 without session, 404 for unknown session', async () => {
    const url = `${baseUrl}/mcp/eng`;
    const session = await rawSession();
    const withSession = { 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' };

    const malformed = await post(url, '{"jsonrpc":', withSession);
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as { error: { code: number } }).error.code).toBe(-32700);

    const invalid = await post(url, JSON.stringify({ jsonrpc: '1.0', id: 3, method: 'ping' }), withSession);
    expect(invalid.status).toBe(400);
    expect(await invalid.json()).toMatchObject({ id: 3, error: { code: -32600 } });

    const unknownMethod = await post(url, JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'tools/explode' }), withSession);
    expect(await unknownMethod.json()).toMatchObject({ id: 4, error: { code: -32601 } });

    expect((await post(url, initializeBody, { 'content-type': 'text/plain' })).status).toBe(415);
    expect((await post(url, initializeBody, { accept: 'text/html' })).status).toBe(406);
    expect((await post(url, JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'ping', params: { pad: 'x'.repeat(70_000) } }), withSession)).status).toBe(413);

    const noSession = await post(url, JSON.stringify({ jsonrpc: '2.0', id: 6, method: 'ping' }));
    expect(noSession.status).toBe(400);
    const unknownSession = await post(url, JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'ping' }), { 'mcp-session-id': 'v1.e30.AAAA' });
    expect(unknownSession.status).toBe(404);
    const badVersion = await post(url, JSON.stringify({ jsonrpc: '2.0', id: 8, method: 'ping' }), { ...withSession, 'mcp-protocol-version': '1999-01-01' });
    expect(badVersion.status).toBe(400);

    const notification = await post(url, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), withSession);
    expect(notification.status).toBe(202);
    expect((await fetch(url, { headers: { authorization: `Bearer ${TOKENS.eng}` } })).status).toBe(405);
  });

  it('negotiates the protocol version', async () => {
    const answer = async (protocolVersion: string) =>
      ((await (
        await post(`${baseUrl}/mcp/eng`, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion, capabilities: {}, clientInfo: { name: 'x', version: '1' } } }))
      ).json()) as { result: { protocolVersion: string } }).result.protocolVersion;
    expect(await answer('2025-03-26')).toBe('2025-03-26');
    expect(await answer('2025-11-25')).toBe('2025-11-25');
    expect(await answer('2024-01-01')).toBe('2025-11-25');
  });

  it('binds a session to its connection, and DELETE ends it', async () => {
    const url = `${baseUrl}/mcp/eng`;
    const session = await rawSession();
    const ping = JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'ping' });
    expect((await post(url, ping, { 'mcp-session-id': session, authorization: `Bearer ${TOKENS.machine}` })).status).toBe(404);
    expect((await post(url, ping, { 'mcp-session-id': session })).status).toBe(200);
    const ended = await fetch(url, { method: 'DELETE', headers: { authorization: `Bearer ${TOKENS.eng}`, 'mcp-session-id': session } });
    expect(ended.status).toBe(200);
    expect((await post(url, ping, { 'mcp-session-id': session })).status).toBe(404);
  });

  it('accepts a session issued by another replica holding the same key (stateless sessions)', async () => {
    const session = await rawSession(baseUrl);
    const response = await post(`${twinUrl}/mcp/eng`, JSON.stringify({ jsonrpc: '2.0', id: 10, method: 'tools/list' }), { 'mcp-session-id': session });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { result: { tools: { name: string }[] } };
    expect(body.result.tools.map((tool) => tool.name).sort()).toEqual(['local__echo', 'web__echo']);
    const foreign = buildDataPlane({ port: 0, sessionSecret: `${SECRET}-other` }, { snapshots });
    const foreignUrl = (await foreign.listen()).url;
    try {
      expect((await post(`${foreignUrl}/mcp/eng`, JSON.stringify({ jsonrpc: '2.0', id: 11, method: 'ping' }), { 'mcp-session-id': session })).status).toBe(404);
    } finally {
      await foreign.close();
    }
  });

  it('reports readiness with the snapshot version, and fails closed with 503 without a snapshot', async () => {
    expect(await (await fetch(`${baseUrl}/readyz`)).json()).toMatchObject({ status: 'ready', snapshotVersion: 1, workspaceId: 'ws-acme' });
    expect((await fetch(`${baseUrl}/healthz`)).status).toBe(200);
    const empty = buildDataPlane({ port: 0, sessionSecret: SECRET }, { snapshots: new InMemorySnapshotSource() });
    const emptyUrl = (await empty.listen()).url;
    try {
      expect((await fetch(`${emptyUrl}/readyz`)).status).toBe(503);
      const refused = await post(`${emptyUrl}/mcp/eng`, initializeBody);
      expect(refused.status).toBe(503);
      expect(((await refused.json()) as { error: { message: string } }).error.message).toContain('has not received a gateway snapshot');
    } finally {
      await empty.close();
    }
  });
});
