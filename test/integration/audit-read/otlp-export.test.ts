import { createServer } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import type { AuditEntry } from '../../../schema/audit/types.js';
import { auditCall, insertAuditEntries } from '../../helpers/audit-rows.js';
import { createWorkspaceWithOwner, keyWithRole, ok, startTestControlPlane, type TestControlPlane } from '../../helpers/control-plane.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { startOtlpReceiver, type OtlpReceiver } from '../../helpers/otlp-receiver.js';
import { createAuditWorld, type AuditWorld } from './fixture.js';

let tdb: TestDatabase;
let cp: TestControlPlane;
let w: AuditWorld;
let receiver: OtlpReceiver;
let auditorKey: string;
let memberKey: string;
let other: { workspaceId: string; ownerKey: string };
const SECRET = 'otlp-secret-value-4f1c9e';

const FIELDS = `id name preset endpoint encoding headerNames includeBodies enabled batchSize status deliveredCount consecutiveFailures lastError lastSuccessAt nextAttemptAt exportedThrough`;
const CREATE = `mutation($input: CreateLogExporterInput!) { createLogExporter(input: $input) { __typename
  ... on CreateLogExporterSuccess { logExporter { ${FIELDS} } } ... on Error { code message } ... on ValidationError { field } ... on ForbiddenError { capability } } }`;

async function createExporter(input: Record<string, unknown>, key = cp.ownerKey) {
  const res = ok(await cp.gql(CREATE, { input }, key)).createLogExporter;
  if (res.__typename !== 'CreateLogExporterSuccess') throw new Error(JSON.stringify(res));
  return res.logExporter;
}
async function exporter(id: string, key = cp.ownerKey) {
  return ok(await cp.gql(`query($id: ID!) { logExporter(id: $id) { ${FIELDS} } }`, { id }, key)).logExporter;
}
async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
async function calls(n: number, extra: Partial<Parameters<typeof auditCall>[0]> = {}): Promise<AuditEntry[]> {
  const entries = Array.from({ length: n }, (_, i) =>
    auditCall({ workspaceId: cp.workspaceId, at: new Date(Date.now() - 60_000 + i), gatewayId: w.gateway.id, serverId: w.server.id, userId: w.alice.id, feature: `tool_${i}`, inputTokens: 11, outputTokens: 22, requestBody: '{"q":"hi"}', ...extra }),
  ).flat();
  await insertAuditEntries(tdb.database.db, entries);
  return entries;
}
/** An address nothing listens on. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

beforeAll(async () => {
  tdb = await createTestDatabase();
  cp = await startTestControlPlane(tdb.database);
  w = await createAuditWorld(cp);
  [auditorKey, memberKey] = [await keyWithRole(cp, 'Read-only auditor'), await keyWithRole(cp, 'Member')];
  other = await createWorkspaceWithOwner(tdb.database, 'other-otlp');
});
afterAll(async () => {
  await cp?.close();
  await tdb?.drop();
});

let exporterIds: string[] = [];
beforeAll(async () => {
  receiver = await startOtlpReceiver();
});
afterEach(async () => {
  // One exporter at a time: the next test starts from a clean collector.
  for (const id of exporterIds) await cp.gql(`mutation($id: ID!) { deleteLogExporter(id: $id) { __typename } }`, { id });
  exporterIds = [];
  receiver.requests.length = 0;
});
afterAll(() => receiver?.close());

describe('OTLP/HTTP log export', () => {
  it('delivers new entries as protobuf OTLP logs with the custom headers, and reports it', async () => {
    const created = await createExporter({ name: 'collector', endpoint: receiver.url, encoding: 'PROTOBUF', headers: [{ name: 'X-Api-Key', value: SECRET }], batchSize: 5 });
    exporterIds.push(created.id);
    expect(created).toMatchObject({ preset: 'COLLECTOR', encoding: 'PROTOBUF', headerNames: ['x-api-key'], status: 'IDLE', deliveredCount: 0, includeBodies: false });
    const entries = await calls(3); // 12 entries: batches of 5, 5, 2

    const done = await waitFor('delivery', async () => {
      const e = await exporter(created.id);
      return e.deliveredCount === 12 && e;
    });
    expect(done).toMatchObject({ status: 'OK', consecutiveFailures: 0, lastError: null });
    expect(done.lastSuccessAt).not.toBeNull();
    expect(receiver.requests.map((r) => r.records.length)).toEqual([5, 5, 2]);
    for (const r of receiver.requests) {
      expect(r.path).toBe('/v1/logs');
      expect(r.contentType).toBe('application/x-protobuf');
      expect(r.headers['x-api-key']).toBe(SECRET);
    }
    const records = receiver.accepted();
    expect(records.map((r) => r.attributes['gatehouse.entry_id']).sort()).toEqual(entries.map((e) => e.id).sort());
    const response = entries.find((e) => e.leg === 'client_response')!;
    const record = records.find((r) => r.attributes['gatehouse.entry_id'] === response.id)!;
    expect(record.resource).toEqual({ 'service.name': 'gatehouse', 'gatehouse.workspace.id': cp.workspaceId, 'gatehouse.workspace.name': expect.any(String) });
    expect(record.scope).toEqual({ name: 'gatehouse.audit', version: '1' });
    expect(record.severityText).toBe('INFO');
    expect(record.severityNumber).toBe(9);
    expect(record.traceId).toBe(response.correlationId.replaceAll('-', ''));
    expect(record.timeUnixNano).toBe(`${BigInt(Date.parse(response.occurredAt)) * 1_000_000n}`);
    expect(record.attributes).toMatchObject({
      'gatehouse.correlation_id': response.correlationId,
      'gatehouse.leg': 'client_response',
      'gatehouse.status': 'ok',
      'gatehouse.gateway.id': w.gateway.id,
      'gatehouse.server.id': w.server.id,
      'enduser.id': w.alice.id,
      'rpc.method': 'tools/call',
      'gatehouse.feature': response.featureName,
      'gatehouse.tokens.output': 22,
      'gatehouse.duration_ms': 20,
      'client.address': '127.0.0.1',
    });
    expect(record.attributes).not.toHaveProperty('gatehouse.body');
    expect(String(record.body)).toContain('tools/call');

    // The header value never leaves through the API, and is sealed at rest.
    const listed = await cp.gql(`{ logExporters { edges { node { ${FIELDS} } } } }`);
    expect(JSON.stringify(listed)).not.toContain(SECRET);
    const stored = await sql<{ headers: unknown }>`SELECT headers FROM log_exporters WHERE name = 'collector'`.execute(tdb.database.db);
    expect(JSON.stringify(stored.rows)).not.toContain(SECRET);
  });

  it('delivers OTLP JSON, with bodies when asked, and only the workspace’s own entries', async () => {
    const created = await createExporter({ name: 'json', endpoint: receiver.url.replace('/v1/logs', ''), encoding: 'JSON', includeBodies: true });
    exporterIds.push(created.id);
    expect(created.endpoint).toBe(receiver.url); // a bare origin gets the logs path
    await insertAuditEntries(tdb.database.db, auditCall({ workspaceId: other.workspaceId, at: new Date(), feature: 'theirs' }));
    const entries = await calls(1, { status: 'blocked', upstream: false, errorMessage: 'no deploys' });
    await waitFor('delivery', async () => (await exporter(created.id)).deliveredCount === entries.length);
    await new Promise((r) => setTimeout(r, 1200)); // another turn: nothing else arrives
    const records = receiver.accepted();
    expect(records).toHaveLength(entries.length);
    expect(receiver.requests[0]!.contentType).toBe('application/json');
    const request = records.find((r) => r.attributes['gatehouse.leg'] === 'client_request')!;
    expect(request.attributes['gatehouse.body']).toBe('{"q":"hi"}');
    const response = records.find((r) => r.attributes['gatehouse.leg'] === 'client_response')!;
    expect(response).toMatchObject({ severityText: 'WARN', severityNumber: 13 });
    expect(response.attributes['rpc.jsonrpc.error_message']).toBe('no deploys');
    expect(records.every((r) => r.resource['gatehouse.workspace.id'] === cp.workspaceId)).toBe(true);
  });

  it('retries a collector that answers 500, with backoff, and loses or repeats nothing', async () => {
    receiver.respondWith(500, 503);
    const created = await createExporter({ name: 'flaky', endpoint: receiver.url });
    exporterIds.push(created.id);
    const entries = await calls(2);
    const retrying = await waitFor('a retry', async () => {
      const e = await exporter(created.id);
      return e.status === 'RETRYING' && e;
    });
    expect(retrying.lastError).toMatch(/^HTTP 50[03]: .*test collector answered 50[03]/);
    expect(retrying.nextAttemptAt).not.toBeNull();
    const done = await waitFor('recovery', async () => {
      const e = await exporter(created.id);
      return e.status === 'OK' && e;
    });
    expect(done.deliveredCount).toBe(entries.length);
    expect(done.consecutiveFailures).toBe(0);
    expect(receiver.requests.map((r) => r.status)).toEqual([500, 503, 200]);
    const ids = receiver.accepted().map((r) => r.attributes['gatehouse.entry_id']);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.sort()).toEqual(entries.map((e) => e.id).sort());
  });

  it('keeps retrying a collector that is down, then delivers everything once it is reachable', async () => {
    const created = await createExporter({ name: 'down', endpoint: `http://127.0.0.1:${await closedPort()}/v1/logs` });
    exporterIds.push(created.id);
    const entries = await calls(1);
    const down = await waitFor('a failed attempt', async () => {
      const e = await exporter(created.id);
      return e.status === 'RETRYING' && e;
    });
    expect(down.lastError).toMatch(/could not reach the collector: ECONNREFUSED/);
    expect(down.deliveredCount).toBe(0);
    const updated = ok(
      await cp.gql(`mutation($id: ID!, $input: UpdateLogExporterInput!) { updateLogExporter(id: $id, input: $input) { __typename ... on UpdateLogExporterSuccess { logExporter { endpoint } } } }`, {
        id: created.id,
        input: { endpoint: receiver.url },
      }),
    ).updateLogExporter;
    expect(updated.logExporter.endpoint).toBe(receiver.url);
    await waitFor('delivery', async () => (await exporter(created.id)).deliveredCount === entries.length);
    expect(receiver.accepted().map((r) => r.attributes['gatehouse.entry_id']).sort()).toEqual(entries.map((e) => e.id).sort());
  });

  it('stops on a 4xx with the collector’s answer, and resumes from the same batch when retried', async () => {
    receiver.respondWith({ status: 400, body: '{"code":3,"message":"invalid logs: bad attribute"}' });
    const created = await createExporter({ name: 'refused', endpoint: receiver.url });
    exporterIds.push(created.id);
    const entries = await calls(1);
    const failed = await waitFor('the failure', async () => {
      const e = await exporter(created.id);
      return e.status === 'FAILED' && e;
    });
    expect(failed.lastError).toContain('HTTP 400');
    expect(failed.lastError).toContain('invalid logs: bad attribute');
    expect(failed.nextAttemptAt).toBeNull();
    await new Promise((r) => setTimeout(r, 2500)); // several turns: no retry
    expect(receiver.requests).toHaveLength(1);

    const retried = ok(await cp.gql(`mutation($id: ID!) { retryLogExporter(id: $id) { __typename ... on RetryLogExporterSuccess { logExporter { status } } } }`, { id: created.id })).retryLogExporter;
    expect(retried.logExporter.status).toBe('RETRYING');
    await waitFor('delivery', async () => (await exporter(created.id)).status === 'OK');
    expect(receiver.accepted().map((r) => r.attributes['gatehouse.entry_id']).sort()).toEqual(entries.map((e) => e.id).sort());
  });

  it('backfills from startFrom, and a disabled exporter sends nothing', async () => {
    const before = await calls(1);
    const disabled = await createExporter({ name: 'off', endpoint: receiver.url, enabled: false, startFrom: new Date(Date.now() - 3_600_000).toISOString() });
    exporterIds.push(disabled.id);
    await new Promise((r) => setTimeout(r, 1500));
    expect(receiver.requests).toHaveLength(0);
    ok(await cp.gql(`mutation($id: ID!) { updateLogExporter(id: $id, input: { enabled: true }) { __typename } }`, { id: disabled.id }));
    await waitFor('backfill', () => receiver.accepted().length >= before.length);
    const ids = new Set(receiver.accepted().map((r) => r.attributes['gatehouse.entry_id']));
    expect(before.every((e) => ids.has(e.id))).toBe(true);
  });

  it.runIf(!!process.env.DATABASE_URL)('never skips entries of an ingest transaction that commits late (Postgres)', async () => {
    const created = await createExporter({ name: 'late', endpoint: receiver.url, batchSize: 2 });
    exporterIds.push(created.id);
    const { default: pg } = await import('pg');
    const slow = new pg.Client({ connectionString: tdb.url });
    await slow.connect();
    try {
      // An ingest transaction that starts first (its rows carry the earlier ingested_at) and commits last.
      const late = auditCall({ workspaceId: cp.workspaceId, at: new Date(), feature: 'late' });
      await slow.query('BEGIN');
      await slow.query('SELECT now()');
      await new Promise((r) => setTimeout(r, 50));
      const early = await calls(1);
      for (const e of late) {
        await slow.query(
          `INSERT INTO audit_entries (id, occurred_at, workspace_id, correlation_id, leg, status, data_plane_instance, feature_name) VALUES ($1, $2, $3, $4, $5, $6, 'dp', 'late')`,
          [e.id, e.occurredAt, e.workspaceId, e.correlationId, e.leg, e.status],
        );
      }
      await new Promise((r) => setTimeout(r, 2500)); // turns run while it is open
      expect(receiver.accepted()).toHaveLength(0); // held back below the open transaction's start
      await slow.query('COMMIT');
      const all = [...early, ...late].map((e) => e.id).sort();
      await waitFor('everything', () => receiver.accepted().length >= all.length);
      await new Promise((r) => setTimeout(r, 1200));
      expect(receiver.accepted().map((r) => r.attributes['gatehouse.entry_id']).sort()).toEqual(all);
    } finally {
      await slow.end();
    }
  });

  it('sends a test record on request without moving the cursor', async () => {
    const created = await createExporter({ name: 'probe', endpoint: receiver.url, enabled: false });
    exporterIds.push(created.id);
    const res = ok(await cp.gql(`mutation($id: ID!) { testLogExporter(id: $id) { __typename ... on TestLogExporterSuccess { result { ok httpStatus error } } } }`, { id: created.id })).testLogExporter;
    expect(res.result).toEqual({ ok: true, httpStatus: 200, error: null });
    expect(receiver.accepted()[0]!.attributes['rpc.method']).toBe('gatehouse/test');
    receiver.respondWith(401);
    const refused = ok(await cp.gql(`mutation($id: ID!) { testLogExporter(id: $id) { ... on TestLogExporterSuccess { result { ok httpStatus error } } } }`, { id: created.id })).testLogExporter;
    expect(refused.result).toMatchObject({ ok: false, httpStatus: 401 });
    expect((await exporter(created.id)).deliveredCount).toBe(0);
  });
});

describe('log exporter configuration', () => {
  it('presets fill endpoints and require their headers', async () => {
    const presets = ok(await cp.gql(`{ logExporterPresets { preset defaultEndpoint requiredHeaders encodings } }`, {}, auditorKey)).logExporterPresets;
    expect(presets.map((p: any) => p.preset).sort()).toEqual(['COLLECTOR', 'DATADOG', 'GRAFANA_CLOUD', 'HONEYCOMB', 'NEW_RELIC']);
    expect(presets.find((p: any) => p.preset === 'HONEYCOMB')).toEqual({ preset: 'HONEYCOMB', defaultEndpoint: 'https://api.honeycomb.io/v1/logs', requiredHeaders: ['x-honeycomb-team'], encodings: ['PROTOBUF', 'JSON'] });

    const honeycomb = await createExporter({ name: 'hc', preset: 'HONEYCOMB', headers: [{ name: 'x-honeycomb-team', value: 'k' }], enabled: false });
    exporterIds.push(honeycomb.id);
    expect(honeycomb).toMatchObject({ endpoint: 'https://api.honeycomb.io/v1/logs', encoding: 'PROTOBUF' });
    const grafana = await createExporter({ name: 'gc', preset: 'GRAFANA_CLOUD', endpoint: 'https://otlp-gateway-prod-eu-west-2.grafana.net/otlp', headers: [{ name: 'Authorization', value: 'Basic eDp5' }], enabled: false });
    exporterIds.push(grafana.id);
    expect(grafana.endpoint).toBe('https://otlp-gateway-prod-eu-west-2.grafana.net/otlp/v1/logs');

    const invalid: [Record<string, unknown>, string][] = [
      [{ name: 'a', preset: 'HONEYCOMB' }, 'input.headers'],
      [{ name: 'b', preset: 'GRAFANA_CLOUD', headers: [{ name: 'authorization', value: 'x' }] }, 'input.endpoint'],
      [{ name: 'c', preset: 'DATADOG', encoding: 'JSON', headers: [{ name: 'dd-api-key', value: 'x' }] }, 'input.encoding'],
      [{ name: 'd', endpoint: 'ftp://collector/v1/logs' }, 'input.endpoint'],
      [{ name: 'e', endpoint: 'https://user:pw@collector/v1/logs' }, 'input.endpoint'],
      [{ name: 'f', endpoint: receiver.url, headers: [{ name: 'content-type', value: 'x' }] }, 'input.headers.0.name'],
      [{ name: 'g', endpoint: receiver.url, headers: [{ name: 'x-a', value: 'line\r\nbreak' }] }, 'input.headers.0.value'],
      [{ name: 'h', endpoint: receiver.url, headers: [{ name: 'x-a' }] }, 'input.headers.0.value'],
      [{ name: 'i', endpoint: receiver.url, batchSize: 0 }, 'input.batchSize'],
    ];
    for (const [input, field] of invalid) {
      expect(ok(await cp.gql(CREATE, { input })).createLogExporter, JSON.stringify(input)).toMatchObject({ __typename: 'ValidationError', field });
    }
    expect(ok(await cp.gql(CREATE, { input: { name: 'HC', preset: 'HONEYCOMB', headers: [{ name: 'x-honeycomb-team', value: 'k' }] } })).createLogExporter).toMatchObject({ __typename: 'ConflictError' });
  });

  it('updates keep a header’s sealed value when it is given without one', async () => {
    const created = await createExporter({ name: 'keep', endpoint: receiver.url, headers: [{ name: 'x-a', value: 'first' }, { name: 'x-b', value: 'second' }], enabled: false });
    exporterIds.push(created.id);
    const updated = ok(
      await cp.gql(`mutation($id: ID!, $input: UpdateLogExporterInput!) { updateLogExporter(id: $id, input: $input) { ... on UpdateLogExporterSuccess { logExporter { headerNames } } } }`, {
        id: created.id,
        input: { headers: [{ name: 'x-a' }, { name: 'x-c', value: 'third' }] },
      }),
    ).updateLogExporter;
    expect(updated.logExporter.headerNames).toEqual(['x-a', 'x-c']);
    ok(await cp.gql(`mutation($id: ID!) { testLogExporter(id: $id) { __typename } }`, { id: created.id }));
    expect(receiver.requests[0]!.headers).toMatchObject({ 'x-a': 'first', 'x-c': 'third' });
    expect(receiver.requests[0]!.headers['x-b']).toBeUndefined();
  });

  it('is read with integrations.view and changed with integrations.manage', async () => {
    expect((await cp.gql(`{ logExporters { edges { node { id } } } }`, {}, memberKey)).errors?.[0]?.extensions).toMatchObject({ code: 'FORBIDDEN', capability: 'integrations.view' });
    ok(await cp.gql(`{ logExporters { edges { node { id status lastError } } } }`, {}, auditorKey));
    expect(ok(await cp.gql(CREATE, { input: { name: 'x', endpoint: receiver.url } }, auditorKey)).createLogExporter).toMatchObject({ __typename: 'ForbiddenError', capability: 'integrations.manage' });
    // Another workspace neither sees nor changes this one's exporters.
    const mine = await createExporter({ name: 'mine', endpoint: receiver.url, enabled: false });
    exporterIds.push(mine.id);
    expect(ok(await cp.gql(`query($id: ID!) { logExporter(id: $id) { id } }`, { id: mine.id }, other.ownerKey)).logExporter).toBeNull();
    expect(ok(await cp.gql(`mutation($id: ID!) { deleteLogExporter(id: $id) { __typename } }`, { id: mine.id }, other.ownerKey)).deleteLogExporter.__typename).toBe('NotFoundError');
  });
});
