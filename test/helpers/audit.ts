import { randomUUID } from 'node:crypto';
import type { AuditBatch, AuditEntry, AuditLeg } from '../../schema/audit/types.js';

/** A well-formed audit entry of `workspaceId` with realistic metadata-only values; `overrides` win. */
export function sampleAuditEntry(workspaceId: string, overrides: Partial<AuditEntry> = {}): AuditEntry {
  return {
    id: randomUUID(),
    correlationId: randomUUID(),
    leg: 'client_response',
    occurredAt: new Date().toISOString(),
    durationMs: 2.41,
    gatewayMs: 0.32,
    upstreamMs: 2.09,
    workspaceId,
    gatewayId: '6f1c2a8e-4c1d-4a55-9a51-0f7c8a1f2b3c',
    serverId: '1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9',
    assignmentId: '2c3d4e5f-6071-4829-93a4-b5c6d7e8f9a0',
    hostId: '3d4e5f60-7182-493a-a4b5-c6d7e8f9a0b1',
    connectionId: '4e5f6071-8293-4a4b-b5c6-d7e8f9a0b1c2',
    tokenId: '5f607182-93a4-4b5c-86d7-e8f9a0b1c2d3',
    userId: null,
    clientName: 'claude-code',
    clientVersion: '2.0.14',
    sessionRef: 'a3f9c2d1e4b5a6c7',
    method: 'tools/call',
    featureName: 'github__create_issue',
    jsonRpcId: '42',
    status: 'ok',
    errorCode: null,
    errorMessage: null,
    policyActions: [],
    body: null,
    bodyTruncated: false,
    headers: { 'content-type': 'application/json', 'user-agent': 'claude-code/2.0.14', authorization: '[SCRUBBED]' },
    inputTokens: 38,
    outputTokens: 212,
    bytesIn: 164,
    bytesOut: 933,
    originIp: '10.1.2.3',
    userAgent: 'claude-code/2.0.14',
    dataPlaneId: null,
    dataPlaneInstance: 'test-host/1234/abc123',
    snapshotVersion: 7,
    ...overrides,
  };
}

/** The four legs of one call (one correlation id), `at` the client request time. */
export function sampleCall(workspaceId: string, at = new Date(), overrides: Partial<AuditEntry> = {}): AuditEntry[] {
  const correlationId = randomUUID();
  const legs: AuditLeg[] = ['client_request', 'upstream_request', 'upstream_response', 'client_response'];
  return legs.map((leg, i) => sampleAuditEntry(workspaceId, { correlationId, leg, occurredAt: new Date(at.getTime() + i).toISOString(), ...overrides }));
}

export function sampleBatch(workspaceId: string, calls: number, at = new Date()): AuditBatch {
  const entries: AuditEntry[] = [];
  for (let i = 0; i < calls; i++) entries.push(...sampleCall(workspaceId, at));
  return { formatVersion: 1, entries };
}

/** A registered data plane: its global id, raw id and token. */
export interface RegisteredTestDataPlane {
  readonly globalId: string;
  readonly id: string;
  readonly token: string;
}

/** The uuid inside a global id (`base64url("Type:uuid")`). */
export const rawId = (globalId: string): string => Buffer.from(globalId, 'base64url').toString().split(':')[1]!;

/** Registers a data plane through GraphQL with the given key (default the owner's). */
export async function registerTestDataPlane(
  cp: { gql(query: string, variables?: Record<string, unknown>, key?: string | null): Promise<{ data: any; errors?: unknown }> },
  name: string,
  key?: string,
): Promise<RegisteredTestDataPlane> {
  const res = await cp.gql(
    `mutation($input: RegisterDataPlaneInput!) { registerDataPlane(input: $input) { __typename ... on RegisterDataPlaneSuccess { registered { token dataPlane { id } } } ... on Error { message } } }`,
    { input: { name } },
    key,
  );
  const payload = res.data?.registerDataPlane;
  if (payload?.__typename !== 'RegisterDataPlaneSuccess') throw new Error(`registerDataPlane: ${JSON.stringify(res)}`);
  const globalId = payload.registered.dataPlane.id as string;
  return { globalId, id: rawId(globalId), token: payload.registered.token as string };
}

/** POSTs a body to the control plane's ingest endpoint; answers status and parsed JSON. */
export async function postIngest(baseUrl: string, body: unknown, token: string | undefined, headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const response = await fetch(`${baseUrl}/ingest/audit`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = text;
  }
  return { status: response.status, body: parsed, headers: response.headers };
}

/** A data plane wired as the launch paths wire it: push client + HTTP audit shipper, against a control plane. */
export interface AuditedTestDataPlane {
  readonly plane: import('../../data-plane/app.js').DataPlane;
  readonly url: string;
  readonly shipper: import('../../data-plane/audit/shipper.js').AuditShipper;
  readonly snapshots: import('../../data-plane/snapshot/push-client.js').PushSnapshotSource;
  close(): Promise<void>;
}

/**
 * Builds and starts a data plane fed by `controlPlaneUrl()` (read per connection and per
 * batch, so a restarted control plane on another address is found), rate limits off,
 * shipping audit batches every 50 ms with entries built on a worker thread as in production;
 * waits for the first snapshot.
 */
export async function startAuditedDataPlane(controlPlaneUrl: () => string, token: string): Promise<AuditedTestDataPlane> {
  const { buildDataPlane } = await import('../../data-plane/app.js');
  const { AuditShipper } = await import('../../data-plane/audit/shipper.js');
  const { httpAuditTransport } = await import('../../data-plane/audit/transport.js');
  const { PushSnapshotSource } = await import('../../data-plane/snapshot/push-client.js');
  const snapshots = new PushSnapshotSource({ url: controlPlaneUrl, token, initialRetryDelayMs: 50, maxRetryDelayMs: 400 });
  const shipper = new AuditShipper({
    transport: httpAuditTransport({ url: controlPlaneUrl, token, timeoutMs: 5_000 }),
    flushIntervalMs: 50,
    initialRetryDelayMs: 50,
    maxRetryDelayMs: 500,
    closeTimeoutMs: 10_000,
    buildOn: 'worker', // as `gatehouse data-plane` builds entries
  });
  const plane = buildDataPlane(
    { port: 0, sessionSecret: 'audit-test-session-secret-0123456789abcdef', callTimeoutMs: 20_000, rateLimit: { perIp: { capacity: 0 }, perToken: { capacity: 0 } } },
    { snapshots, audit: shipper },
  );
  const { url } = await plane.listen();
  snapshots.start();
  await snapshots.ready(20_000);
  return {
    plane,
    url,
    shipper,
    snapshots,
    async close() {
      await plane.close();
      await snapshots.close();
    },
  };
}

/** Polls `initialize` on a gateway until the data plane accepts the token (the snapshot carrying it arrived). */
export async function waitForToken(mcpUrl: string, token: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await fetch(mcpUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}` },
      body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'wait', version: '0' } } }),
    });
    await response.body?.cancel();
    if (response.status === 200) return;
    if (Date.now() > deadline) throw new Error(`the data plane still answers ${response.status} to the new token`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Makes `total` `tools/call echo` calls through a gateway with `workers` SDK clients in
 * parallel; `onCall` runs after each successful call. Resolves with the number of calls
 * answered; a failed call rejects.
 */
export async function echoLoad(mcpUrl: string, token: string, total: number, workers: number, onCall: () => void = () => undefined): Promise<number> {
  const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
  const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
  let next = 0;
  let done = 0;
  await Promise.all(
    Array.from({ length: workers }, async (_, worker) => {
      const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
      const client = new Client({ name: `load-${worker}`, version: '1' });
      await client.connect(transport);
      try {
        while (next < total) {
          const n = next++;
          const result = await client.callTool({ name: 'echo', arguments: { message: `call ${n}` } });
          if ((result.content as { text?: string }[])[0]?.text !== `Echo: call ${n}`) throw new Error(`call ${n} got ${JSON.stringify(result)}`);
          done++;
          onCall();
        }
      } finally {
        await transport.terminateSession().catch(() => undefined);
        await client.close().catch(() => undefined);
      }
    }),
  );
  return done;
}

/** What the store holds of a connection's tool calls: rows, distinct ids and calls, client responses, calls without exactly four legs. */
export async function storedCalls(database: import('../../control-plane/db/database.js').Database, connectionId: string) {
  const { sql } = await import('kysely');
  const totals = await sql<{ rows: string; ids: string; calls: string; responses: string }>`
    SELECT count(*)::text AS rows, count(DISTINCT id)::text AS ids, count(DISTINCT correlation_id)::text AS calls,
           count(*) FILTER (WHERE leg = 'client_response')::text AS responses
    FROM audit_entries WHERE connection_id = ${connectionId} AND method = 'tools/call'`.execute(database.db);
  const incomplete = await sql<{ correlation_id: string }>`
    SELECT correlation_id FROM audit_entries WHERE connection_id = ${connectionId} AND method = 'tools/call'
    GROUP BY correlation_id HAVING count(*) <> 4 OR count(DISTINCT leg) <> 4`.execute(database.db);
  const row = totals.rows[0]!;
  return { rows: Number(row.rows), ids: Number(row.ids), calls: Number(row.calls), responses: Number(row.responses), incomplete: incomplete.rows.length };
}
