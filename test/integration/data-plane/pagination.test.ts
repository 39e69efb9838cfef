import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDataPlane, type DataPlane } from '../../../data-plane/app.js';
import { InMemorySnapshotSource } from '../../../data-plane/snapshot/snapshot-source.js';
import { startHttpFixture, type RunningServer } from '../../fixtures/mcp/spawn.js';
import { connectClient, postMcp, proxySnapshot, rawSession, type ServerSetup } from './proxy-helpers.js';

const SECRET = 'pagination-session-secret-0123456789abcdef';
const TOOLS = ['tool_1', 'tool_2', 'tool_3', 'tool_4', 'tool_5'];

let paged: RunningServer;
let setup: ServerSetup;
let snapshots: InMemorySnapshotSource;
let plane: DataPlane;
let twin: DataPlane;
let baseUrl: string;
let twinUrl: string;

beforeAll(async () => {
  // An upstream whose tools/list has five pages of one tool each.
  paged = await startHttpFixture('misbehaving-server', { FIXTURE_MODE: 'many-pages', FIXTURE_PAGES: '5' });
  setup = { upstream: { kind: 'remote', url: paged.url, transport: 'streamable-http', allowInsecure: false }, tools: TOOLS };
  snapshots = new InMemorySnapshotSource();
  snapshots.offer(proxySnapshot({ 'srv-http': setup }));
  plane = buildDataPlane({ port: 0, sessionSecret: SECRET, listPageSize: 2 }, { snapshots });
  baseUrl = (await plane.listen()).url;
  // Another replica with the same secret: cursors are stateless.
  twin = buildDataPlane({ port: 0, sessionSecret: SECRET, listPageSize: 2 }, { snapshots });
  twinUrl = (await twin.listen()).url;
}, 60_000);

afterAll(async () => {
  await plane?.close();
  await twin?.close();
  await paged?.close();
});

async function rpcError(promise: Promise<unknown>): Promise<McpError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof McpError) return error;
    throw error;
  }
  throw new Error('expected a JSON-RPC error');
}

describe('gateway-side pagination of merged lists', () => {
  it('reads every page of the upstream and serves the merged list in pages of the configured size', async () => {
    const { client, close } = await connectClient(baseUrl);
    try {
      const first = await client.listTools();
      expect(first.tools.map((tool) => tool.name)).toEqual(['web__tool_1', 'web__tool_2']);
      expect(first.nextCursor).toEqual(expect.any(String));
      const second = await client.listTools({ cursor: first.nextCursor! });
      expect(second.tools.map((tool) => tool.name)).toEqual(['web__tool_3', 'web__tool_4']);
      const last = await client.listTools({ cursor: second.nextCursor! });
      expect(last.tools.map((tool) => tool.name)).toEqual(['web__tool_5']);
      expect(last.nextCursor).toBeUndefined();
    } finally {
      await close();
    }
  });

  it('accepts a cursor on another replica holding the same secret', async () => {
    const { client, close } = await connectClient(baseUrl);
    const other = await connectClient(twinUrl);
    try {
      const first = await client.listTools();
      const second = await other.client.listTools({ cursor: first.nextCursor! });
      expect(second.tools.map((tool) => tool.name)).toEqual(['web__tool_3', 'web__tool_4']);
    } finally {
      await close();
      await other.close();
    }
  });

  it('refuses forged, tampered, foreign and stale cursors with -32602', async () => {
    const { client, close } = await connectClient(baseUrl);
    try {
      const { nextCursor } = await client.listTools();
      const cursor = nextCursor!;
      const forged = await rpcError(client.listTools({ cursor: 'not-a-cursor' }));
      expect(forged.code).toBe(-32602);
      const at = cursor.length - 3;
      const tampered = cursor.slice(0, at) + (cursor[at] === 'A' ? 'B' : 'A') + cursor.slice(at + 1);
      expect((await rpcError(client.listTools({ cursor: tampered }))).code).toBe(-32602);
      const foreign = await rpcError(client.listPrompts({ cursor }));
      expect(foreign.code).toBe(-32602);
      expect(foreign.message).toContain("not a cursor of this gateway's prompts/list");

      // A new snapshot (even with the same content) makes earlier cursors stale.
      snapshots.offer(proxySnapshot({ 'srv-http': setup }, 2));
      const stale = await rpcError(client.listTools({ cursor }));
      expect(stale.code).toBe(-32602);
      expect(stale.message).toBe('MCP error -32602: the list changed since this cursor was issued; call tools/list again without a cursor');
      expect(stale.data).toEqual({ code: 'INVALID_CURSOR' });
    } finally {
      await close();
    }
  });

  it('refuses a cursor that is not a string', async () => {
    const session = await rawSession(baseUrl);
    const response = await postMcp(baseUrl, { jsonrpc: '2.0', id: 2, method: 'tools/list', params: { cursor: 7 } }, { 'mcp-session-id': session });
    expect(await response.json()).toMatchObject({ id: 2, error: { code: -32602, message: 'params.cursor must be a string' } });
  });
});

describe('next pages from the list the replica kept', () => {
  it('serves a client paging through a list one consistent list, without asking the upstreams again', async () => {
    const gone = await startHttpFixture('misbehaving-server', { FIXTURE_MODE: 'many-pages', FIXTURE_PAGES: '5' });
    const source = new InMemorySnapshotSource();
    source.offer(proxySnapshot({ 'srv-http': { ...setup, upstream: { kind: 'remote', url: gone.url, transport: 'streamable-http', allowInsecure: false } } }));
    const keeper = buildDataPlane({ port: 0, sessionSecret: SECRET, listPageSize: 2 }, { snapshots: source });
    const other = buildDataPlane({ port: 0, sessionSecret: SECRET, listPageSize: 2 }, { snapshots: source });
    const here = await connectClient((await keeper.listen()).url);
    const there = await connectClient((await other.listen()).url);
    try {
      const first = await here.client.listTools();
      expect(first.tools.map((tool) => tool.name)).toEqual(['web__tool_1', 'web__tool_2']);
      // The upstream goes away: listing again could no longer give the same list.
      await gone.close();
      const second = await here.client.listTools({ cursor: first.nextCursor! });
      expect(second.tools.map((tool) => tool.name)).toEqual(['web__tool_3', 'web__tool_4']);
      const last = await here.client.listTools({ cursor: second.nextCursor! });
      expect(last.tools.map((tool) => tool.name)).toEqual(['web__tool_5']);
      // Another replica has no kept list: it lists again, and the list changed.
      const elsewhere = await rpcError(there.client.listTools({ cursor: first.nextCursor! }));
      expect(elsewhere.code).toBe(-32602);
      expect(elsewhere.message).toContain('the list changed since this cursor was issued');
      // A first page always lists again.
      const fresh = await here.client.listTools();
      expect(fresh.tools).toEqual([]);
      expect(fresh._meta?.['gatehouse/unavailable']).toEqual([expect.objectContaining({ server: expect.any(String) })]);
    } finally {
      await here.close();
      await there.close();
      await keeper.close();
      await other.close();
    }
  });
});

