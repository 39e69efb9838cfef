import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDataPlane, type DataPlane } from '../../../data-plane/app.js';
import { InMemorySnapshotSource } from '../../../data-plane/snapshot/snapshot-source.js';
import { startHttpFixture, type RunningServer } from '../../fixtures/mcp/spawn.js';
import { postMcp, proxySnapshot, rawSession } from './proxy-helpers.js';

const SECRET = 'batches-session-secret-0123456789abcdef';

let echo: RunningServer;
let plane: DataPlane;
let baseUrl: string;

beforeAll(async () => {
  echo = await startHttpFixture('echo-server');
  const snapshots = new InMemorySnapshotSource();
  snapshots.offer(proxySnapshot({ 'srv-http': { upstream: { kind: 'remote', url: echo.url, transport: 'streamable-http', allowInsecure: false }, tools: ['echo'] } }));
  plane = buildDataPlane({ port: 0, sessionSecret: SECRET }, { snapshots });
  baseUrl = (await plane.listen()).url;
}, 60_000);

afterAll(async () => {
  await plane?.close();
  await echo?.close();
});

const call = (id: number, text: string) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'web__echo', arguments: { text } } });

describe('JSON-RPC batches', () => {
  it('answers a 2025-03-26 batch with an array of responses in order; notifications and responses add none', async () => {
    const session = await rawSession(baseUrl, '2025-03-26');
    const batch = [
      { jsonrpc: '2.0', id: 1, method: 'ping' },
      { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 99, reason: 'not running' } },
      call(2, 'first'),
      { jsonrpc: '2.0', id: 'gatehouse-unknown', result: {} },
      { jsonrpc: '2.0', id: 3, method: 'tools/list' },
      { jsonrpc: '2.0', id: 4, method: 'made/up' },
      call(5, 'second'),
    ];
    const response = await postMcp(baseUrl, batch, { 'mcp-session-id': session, 'mcp-protocol-version': '2025-03-26' });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json');
    const answers = (await response.json()) as { id: unknown; result?: Record<string, unknown>; error?: { code: number } }[];
    expect(answers.map((answer) => answer.id)).toEqual([1, 2, 3, 4, 5]);
    expect(answers[0]).toEqual({ jsonrpc: '2.0', id: 1, result: {} });
    expect(answers[1]!.result).toMatchObject({ content: [{ type: 'text', text: 'first' }] });
    expect((answers[2]!.result!.tools as { name: string }[]).map((tool) => tool.name)).toEqual(['web__echo']);
    expect(answers[3]!.error?.code).toBe(-32601);
    expect(answers[4]!.result).toMatchObject({ content: [{ type: 'text', text: 'second' }] });
  });

  it('answers 202 to a batch of notifications only', async () => {
    const session = await rawSession(baseUrl, '2025-03-26');
    const response = await postMcp(baseUrl, [{ jsonrpc: '2.0', method: 'notifications/initialized' }, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1 } }], {
      'mcp-session-id': session,
    });
    expect(response.status).toBe(202);
    expect(await response.text()).toBe('');
  });

  it('reports each element that is not a valid message inside the array', async () => {
    const session = await rawSession(baseUrl, '2025-03-26');
    const response = await postMcp(baseUrl, [{ jsonrpc: '2.0', id: 1, method: 'ping' }, { jsonrpc: '1.0', id: 2, method: 'ping' }, 42], { 'mcp-session-id': session });
    const answers = (await response.json()) as { id: unknown; error?: { code: number } }[];
    expect(answers).toEqual([
      { jsonrpc: '2.0', id: 1, result: {} },
      expect.objectContaining({ id: 2, error: expect.objectContaining({ code: -32600 }) }),
      expect.objectContaining({ id: null, error: expect.objectContaining({ code: -32600 }) }),
    ]);
  });

  it('refuses batches for sessions of 2025-06-18 and 2025-11-25, where the protocol removed them', async () => {
    for (const version of ['2025-06-18', '2025-11-25']) {
      const session = await rawSession(baseUrl, version);
      const response = await postMcp(baseUrl, [{ jsonrpc: '2.0', id: 1, method: 'ping' }], { 'mcp-session-id': session, 'mcp-protocol-version': version });
      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({
        jsonrpc: '2.0',
        id: null,
        error: { code: -32600, message: `JSON-RPC batches are not supported by protocol version ${version} (only 2025-03-26 allows them); send one message per request` },
      });
    }
  });

  it('refuses initialize in a batch, an empty batch and an oversized one', async () => {
    const init = await postMcp(baseUrl, [{ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-03-26', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }]);
    expect(init.status).toBe(400);
    expect(((await init.json()) as { error: { message: string } }).error.message).toBe('initialize must not be part of a JSON-RPC batch; send it alone');

    const session = await rawSession(baseUrl, '2025-03-26');
    const empty = await postMcp(baseUrl, [], { 'mcp-session-id': session });
    expect(empty.status).toBe(400);
    const many = await postMcp(baseUrl, Array.from({ length: 101 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'ping' })), { 'mcp-session-id': session });
    expect(many.status).toBe(400);
    expect(((await many.json()) as { error: { message: string } }).error.message).toContain('at most 100 messages');
  });

  it('needs a session like any message', async () => {
    const response = await postMcp(baseUrl, [{ jsonrpc: '2.0', id: 1, method: 'ping' }], { 'mcp-session-id': 'v1.unknown.session' });
    expect(response.status).toBe(404);
  });
});
