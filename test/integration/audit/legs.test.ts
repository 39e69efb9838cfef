import { createHash } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runQuickstart, type QuickstartResult } from '../../../control-plane/cli/quickstart.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { ok, startTestControlPlane, type TestControlPlane } from '../../helpers/control-plane.js';
import { rawId, registerTestDataPlane, startAuditedDataPlane, waitForToken, type AuditedTestDataPlane, type RegisteredTestDataPlane } from '../../helpers/audit.js';

let tdb: TestDatabase;
let cp: TestControlPlane;
let registered: RegisteredTestDataPlane;
let gateway: QuickstartResult;
let dp: AuditedTestDataPlane;
let client: Client;
let transport: StreamableHTTPClientTransport;

interface Row {
  id: string;
  correlation_id: string;
  leg: string;
  status: string;
  occurred_at: Date;
  duration_ms: number | null;
  gateway_ms: number | null;
  upstream_ms: number | null;
  [column: string]: unknown;
}

async function rowsOf(where: ReturnType<typeof sql>): Promise<Row[]> {
  return (await sql<Row>`SELECT * FROM audit_entries WHERE ${where} ORDER BY occurred_at, leg`.execute(tdb.database.db)).rows;
}

beforeAll(async () => {
  tdb = await createTestDatabase();
  cp = await startTestControlPlane(tdb.database);
  registered = await registerTestDataPlane(cp, 'edge-legs');
  gateway = await runQuickstart({ url: cp.url, apiKey: cp.ownerKey, dataPlaneWaitMs: 0 });
  dp = await startAuditedDataPlane(() => cp.url, registered.token);
  const mcpUrl = `${dp.url}/mcp/quickstart`;
  await waitForToken(mcpUrl, gateway.token);
  transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { requestInit: { headers: { Authorization: `Bearer ${gateway.token}` } } });
  client = new Client({ name: 'legs-test', version: '0.9.1' });
  await client.connect(transport);
}, 90_000);

afterAll(async () => {
  await transport?.terminateSession().catch(() => undefined);
  await client?.close().catch(() => undefined);
  await dp?.close();
  await cp?.close();
  await tdb?.drop();
});

describe('audit legs from a real data plane stored by a real control plane', () => {
  it('stores every tools/call as four legs with one correlation id, the ids of everything involved and consistent durations', async () => {
    const sessionRef = createHash('sha256').update(transport.sessionId!).digest('hex').slice(0, 16);
    for (let i = 0; i < 3; i++) {
      expect(await client.callTool({ name: 'echo', arguments: { message: `audited ${i}` } })).toMatchObject({ content: [{ text: `Echo: audited ${i}` }] });
    }
    await expect.poll(async () => (await rowsOf(sql`session_ref = ${sessionRef} AND method = 'tools/call'`)).length, { timeout: 10_000 }).toBe(12);
    const rows = await rowsOf(sql`session_ref = ${sessionRef} AND method = 'tools/call'`);
    const calls = new Map<string, Row[]>();
    for (const row of rows) calls.set(row.correlation_id, [...(calls.get(row.correlation_id) ?? []), row]);
    expect(calls.size).toBe(3);
    expect(new Set(rows.map((row) => row.id)).size).toBe(12);
    const expectedIds = {
      workspace_id: cp.workspaceId,
      gateway_id: rawId(gateway.gatewayId),
      server_id: rawId(gateway.serverId),
      host_id: rawId(gateway.hostId),
      connection_id: rawId(gateway.connectionId),
      user_id: null,
      data_plane_id: registered.id,
      client_name: 'legs-test',
      client_version: '0.9.1',
      feature_name: 'echo',
      status: 'ok',
    };
    for (const legs of calls.values()) {
      expect(legs.map((row) => row.leg).sort()).toEqual(['client_request', 'client_response', 'upstream_request', 'upstream_response']);
      for (const row of legs) {
        expect(row).toMatchObject(expectedIds);
        expect(row.token_id).toEqual(expect.any(String));
        expect(row.assignment_id).toEqual(expect.any(String));
        expect(Number(row.snapshot_version)).toBe(dp.snapshots.current()!.version);
        expect(row.body).toBeNull(); // metadata only, the default
      }
      const by = Object.fromEntries(legs.map((row) => [row.leg, row]));
      const order = ['client_request', 'upstream_request', 'upstream_response', 'client_response'].map((leg) => new Date(by[leg]!.occurred_at).getTime());
      expect([...order].sort((a, b) => a - b)).toEqual(order);
      const response = by.client_response!;
      const upstream = by.upstream_response!;
      expect(upstream.duration_ms).toBeGreaterThan(0);
      expect(response.upstream_ms).toBeCloseTo(upstream.duration_ms!, 6);
      expect(response.duration_ms!).toBeGreaterThanOrEqual(response.upstream_ms!);
      expect(response.gateway_ms!).toBeCloseTo(response.duration_ms! - response.upstream_ms!, 6);
      // The whole call took about as long as its client legs are apart (timestamps have ms resolution).
      expect(Math.abs(new Date(response.occurred_at).getTime() - new Date(by.client_request!.occurred_at).getTime() - response.duration_ms!)).toBeLessThanOrEqual(1.5);
      expect(by.client_request!.input_tokens).toBeGreaterThan(0);
      expect(by.client_request!.bytes_in).toBeGreaterThan(0);
      expect(response.output_tokens).toBeGreaterThan(0);
      expect(response.bytes_out).toBeGreaterThan(0);
      expect(by.client_request!.headers).toMatchObject({ authorization: '[SCRUBBED]' });
    }
  });

  it('stores initialize, a list fan-out with its upstream legs, and a refusal with its stage', async () => {
    const sessionRef = createHash('sha256').update(transport.sessionId!).digest('hex').slice(0, 16);
    await client.listTools();
    await expect(client.callTool({ name: 'not-a-tool', arguments: {} })).rejects.toThrow(/not-a-tool/);
    await expect.poll(async () => (await rowsOf(sql`session_ref = ${sessionRef} AND (method = 'tools/list' OR feature_name = 'not-a-tool')`)).length, { timeout: 10_000 }).toBe(7);
    const list = await rowsOf(sql`session_ref = ${sessionRef} AND method = 'tools/list'`);
    expect(list.map((row) => row.leg).sort()).toEqual(['client_request', 'client_response', 'upstream_request', 'upstream_response']);
    // One upstream (the quickstart's server): its legs name it; the client legs of the
    // gateway's merged list name none; the upstream time is its answer's.
    const listed = Object.fromEntries(list.map((row) => [row.leg, row]));
    expect(list.map((row) => [row.leg, row.server_id])).toEqual(
      expect.arrayContaining([
        ['upstream_request', rawId(gateway.serverId)],
        ['upstream_response', rawId(gateway.serverId)],
        ['client_request', null],
        ['client_response', null],
      ]),
    );
    expect(listed.upstream_response).toMatchObject({ status: 'ok', error_code: null });
    expect(listed.upstream_response!.output_tokens).toBeNull();
    expect(listed.upstream_response!.bytes_in).toBeGreaterThan(0);
    expect(listed.client_response!.output_tokens).toBeGreaterThan(0);
    expect(listed.client_response!.upstream_ms).toBeCloseTo(listed.upstream_response!.duration_ms!, 6);
    const refused = await rowsOf(sql`session_ref = ${sessionRef} AND feature_name = 'not-a-tool'`);
    expect(refused.map((row) => row.leg).sort()).toEqual(['client_request', 'client_response', 'policy_action']);
    expect(refused.find((row) => row.leg === 'client_response')).toMatchObject({ status: 'blocked', error_code: -32602, policy_actions: [{ ruleId: 'stage:provisioning', action: 'refuse' }] });
    const init = await rowsOf(sql`session_ref = ${sessionRef} AND method = 'initialize'`);
    expect(init.map((row) => row.leg).sort()).toEqual(['client_request', 'client_response']);
    expect(dp.shipper.stats).toMatchObject({ dropped: 0 });
  });

  it('stores an elicitation the upstream asked during a call as a relayed pair, filterable by leg and shown on the call', async () => {
    const t = new StreamableHTTPClientTransport(new URL(`${dp.url}/mcp/quickstart`), { requestInit: { headers: { Authorization: `Bearer ${gateway.token}` } } });
    const asking = new Client({ name: 'legs-elicitation', version: '1' }, { capabilities: { elicitation: {} } });
    asking.setRequestHandler(ElicitRequestSchema, () => ({ action: 'decline' }));
    await asking.connect(t);
    try {
      const result = await asking.callTool({ name: 'trigger-elicitation-request', arguments: {} });
      expect(JSON.stringify(result)).toContain('decline');
      const sessionRef = createHash('sha256').update(t.sessionId!).digest('hex').slice(0, 16);
      await expect.poll(async () => (await rowsOf(sql`session_ref = ${sessionRef} AND leg LIKE 'relayed_%'`)).length, { timeout: 10_000 }).toBe(2);
      const [asked, answered] = await rowsOf(sql`session_ref = ${sessionRef} AND leg LIKE 'relayed_%'`);
      expect(asked).toMatchObject({ leg: 'relayed_request', method: 'elicitation/create', feature_name: 'trigger-elicitation-request', server_id: rawId(gateway.serverId), status: 'ok' });
      expect(answered).toMatchObject({ leg: 'relayed_response', method: 'elicitation/create', json_rpc_id: asked!.json_rpc_id, correlation_id: asked!.correlation_id, status: 'ok' });
      expect(answered!.bytes_in).toBeGreaterThan(0);

      const read = ok(
        await cp.gql(
          `query($id: String!) { auditCall(correlationId: $id) { status entries { leg } relayedRequests { method jsonRpcId status } relayedResponses { leg durationMs } } }`,
          { id: asked!.correlation_id },
        ),
      ).auditCall;
      expect(read.status).toBe('OK');
      expect(read.entries.map((e: { leg: string }) => e.leg)).toEqual(['CLIENT_REQUEST', 'UPSTREAM_REQUEST', 'RELAYED_REQUEST', 'RELAYED_RESPONSE', 'UPSTREAM_RESPONSE', 'CLIENT_RESPONSE']);
      expect(read.relayedRequests).toEqual([{ method: 'elicitation/create', jsonRpcId: asked!.json_rpc_id, status: 'OK' }]);
      expect(read.relayedResponses).toEqual([{ leg: 'RELAYED_RESPONSE', durationMs: expect.any(Number) }]);
      const filtered = ok(await cp.gql(`query($f: AuditLogFilter) { auditLogs(first: 10, filter: $f) { edges { node { leg correlationId } } } }`, { f: { leg: ['RELAYED_REQUEST'] } })).auditLogs.edges;
      expect(filtered.map((e: { node: { correlationId: string } }) => e.node.correlationId)).toContain(asked!.correlation_id);
      expect(filtered.every((e: { node: { leg: string } }) => e.node.leg === 'RELAYED_REQUEST')).toBe(true);
    } finally {
      await t.terminateSession().catch(() => undefined);
      await asking.close().catch(() => undefined);
    }
  });
});
