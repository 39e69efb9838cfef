import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../../../schema/audit/types.js';
import { auditEntry, insertAuditEntries } from '../../helpers/audit-rows.js';
import { createWorkspaceWithOwner, keyWithRole, ok, startTestControlPlane, type TestControlPlane } from '../../helpers/control-plane.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { createAuditWorld, type AuditWorld } from './fixture.js';

let tdb: TestDatabase;
let cp: TestControlPlane;
let w: AuditWorld;
let auditorKey: string;
let memberKey: string;
let other: { workspaceId: string; ownerKey: string };
let entries: AuditEntry[];
const INGESTED = new Date('2025-05-02T00:00:00.000Z');

const HEADER =
  'id,correlationId,leg,occurredAt,ingestedAt,status,durationMs,gatewayMs,upstreamMs,workspaceId,gatewayId,serverId,assignmentId,hostId,connectionId,tokenId,userId,clientName,clientVersion,sessionRef,method,featureName,jsonRpcId,errorCode,errorMessage,policyActions,bodyTruncated,inputTokens,outputTokens,bytesIn,bytesOut,originIp,userAgent,dataPlaneId,dataPlaneInstance,snapshotVersion';

const get = (path: string, key?: string | null, init: RequestInit = {}) =>
  fetch(`${cp.url}${path}`, { ...init, headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(init.headers as Record<string, string>) } });

beforeAll(async () => {
  tdb = await createTestDatabase();
  cp = await startTestControlPlane(tdb.database);
  w = await createAuditWorld(cp);
  [auditorKey, memberKey] = [await keyWithRole(cp, 'Read-only auditor'), await keyWithRole(cp, 'Member')];
  const ws = cp.workspaceId;
  entries = [
    auditEntry({
      workspaceId: ws,
      occurredAt: '2025-05-01T10:00:00.000Z',
      leg: 'client_response',
      status: 'error',
      gatewayId: w.gateway.id,
      serverId: w.server.id,
      userId: w.alice.id,
      featureName: 'echo',
      errorCode: -32603,
      errorMessage: 'bad "input", line1\nline2',
      durationMs: 12.5,
      policyActions: [{ ruleId: 'r1', ruleName: 'mask, then log', action: 'mask', findings: ['EMAIL'], alert: false }],
    }),
    auditEntry({
      workspaceId: ws,
      occurredAt: '2025-05-01T10:00:01.000Z',
      leg: 'client_request',
      clientName: '=HYPERLINK("http://evil")',
      jsonRpcId: '-1',
      gatewayId: w.gateway.id,
      featureName: 'search',
      durationMs: null,
      gatewayMs: null,
      upstreamMs: null,
      inputTokens: 42,
      body: '{"q":"héllo ✓"}',
      headers: { 'user-agent': 'curl/8' },
    }),
    auditEntry({ workspaceId: ws, occurredAt: '2025-05-01T10:00:02.000Z', leg: 'upstream_request', gatewayId: w.otherGateway.id, featureName: 'search', snapshotVersion: 12 }),
  ];
  await insertAuditEntries(tdb.database.db, entries, { ingestedAt: INGESTED });
  other = await createWorkspaceWithOwner(tdb.database, 'other-export');
  await insertAuditEntries(tdb.database.db, [auditEntry({ workspaceId: other.workspaceId, occurredAt: '2025-05-01T10:00:00.500Z' })]);
});

afterAll(async () => {
  await cp?.close();
  await tdb?.drop();
});

/** The CSV row of an entry, written out by hand: RFC 4180 quoting, formula text neutralised. */
function expectedRow(e: AuditEntry, fields: Partial<Record<string, string>> = {}): string {
  const cell = (v: unknown) => (v === null || v === undefined ? '' : String(v));
  const values: Record<string, string> = {
    id: e.id,
    correlationId: e.correlationId,
    leg: e.leg,
    occurredAt: e.occurredAt,
    ingestedAt: INGESTED.toISOString(),
    status: e.status,
    durationMs: cell(e.durationMs),
    gatewayMs: cell(e.gatewayMs),
    upstreamMs: cell(e.upstreamMs),
    workspaceId: e.workspaceId,
    gatewayId: cell(e.gatewayId),
    serverId: cell(e.serverId),
    assignmentId: '',
    hostId: '',
    connectionId: '',
    tokenId: '',
    userId: cell(e.userId),
    clientName: cell(e.clientName),
    clientVersion: cell(e.clientVersion),
    sessionRef: cell(e.sessionRef),
    method: cell(e.method),
    featureName: cell(e.featureName),
    jsonRpcId: cell(e.jsonRpcId),
    errorCode: cell(e.errorCode),
    errorMessage: cell(e.errorMessage),
    policyActions: '[]',
    bodyTruncated: 'false',
    inputTokens: cell(e.inputTokens),
    outputTokens: cell(e.outputTokens),
    bytesIn: cell(e.bytesIn),
    bytesOut: cell(e.bytesOut),
    originIp: cell(e.originIp),
    userAgent: cell(e.userAgent),
    dataPlaneId: '',
    dataPlaneInstance: e.dataPlaneInstance,
    snapshotVersion: cell(e.snapshotVersion),
    ...fields,
  };
  return HEADER.split(',')
    .map((c) => values[c])
    .join(',');
}

describe('GET /export/audit', () => {
  it('streams CSV, oldest first, with RFC 4180 quoting and neutralised formulas', async () => {
    const res = await get('/export/audit?format=csv&from=2025-05-01T00:00:00Z&to=2025-05-02T00:00:00Z', cp.ownerKey);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(res.headers.get('content-disposition')).toMatch(/^attachment; filename="gatehouse-audit-\d{8}T\d{6}Z\.csv"$/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const [e1, e2, e3] = entries as [AuditEntry, AuditEntry, AuditEntry];
    const expected = [
      HEADER,
      expectedRow(e1, {
        errorMessage: '"bad ""input"", line1\nline2"',
        // jsonb keeps object keys in its own order (shorter keys first).
        policyActions: '"[{""alert"":false,""action"":""mask"",""ruleId"":""r1"",""findings"":[""EMAIL""],""ruleName"":""mask, then log""}]"',
      }),
      expectedRow(e2, { clientName: `"'=HYPERLINK(""http://evil"")"` }),
      expectedRow(e3),
      '',
    ].join('\r\n');
    expect(await res.text()).toBe(expected);
  });

  it('streams JSON as one array and NDJSON as lines, the same entries', async () => {
    const json = await get('/export/audit?format=json&from=2025-05-01T00:00:00Z&to=2025-05-02T00:00:00Z', cp.ownerKey);
    expect(json.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const array = JSON.parse(await json.text());
    expect(array).toHaveLength(3);
    const { body: _b, headers: _h, ...metadata } = entries[0]!;
    expect(array[0]).toEqual({
      ...metadata,
      ingestedAt: INGESTED.toISOString(),
      assignmentId: null,
      hostId: null,
      connectionId: null,
      tokenId: null,
      dataPlaneId: null,
    });
    expect(array[0]).not.toHaveProperty('body');
    expect(array.map((e: any) => e.id)).toEqual(entries.map((e) => e.id));

    const nd = await get('/export/audit?format=ndjson&from=2025-05-01T00:00:00Z&to=2025-05-02T00:00:00Z', cp.ownerKey);
    expect(nd.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8');
    const lines = (await nd.text()).split('\n');
    expect(lines.at(-1)).toBe('');
    expect(lines.slice(0, -1).map((l) => JSON.parse(l))).toEqual(array);

    const empty = await get('/export/audit?format=json&from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z', cp.ownerKey);
    expect(JSON.parse(await empty.text())).toEqual([]);
  });

  it('applies the filter and includes bodies only when asked by someone who may see them', async () => {
    const res = await get(`/export/audit?format=json&gatewayId=${w.gateway.gid}&leg=client_request,client_response&includeBodies=true`, cp.ownerKey);
    const rows = JSON.parse(await res.text());
    expect(rows.map((r: any) => r.id)).toEqual([entries[0]!.id, entries[1]!.id]);
    expect(rows[1]).toMatchObject({ body: '{"q":"héllo ✓"}', headers: { 'user-agent': 'curl/8' } });
    const csv = await (await get(`/export/audit?format=csv&featureName=x`.replace('featureName=x', 'feature=search&includeBodies=1'), cp.ownerKey)).text();
    expect(csv.split('\r\n')[0]).toBe(`${HEADER},body,headers`);
    expect(csv).toContain('"{""q"":""héllo ✓""}","{""user-agent"":""curl/8""}"');
  });

  it('refuses what it should, with a status and a reason', async () => {
    const cases: [string, string | null, number, Record<string, unknown>][] = [
      ['/export/audit?format=csv', null, 401, { error: 'unauthenticated' }],
      ['/export/audit?format=csv', 'gh_admin_unknownkeyunknownkeyunknownkey00', 401, { error: 'unauthenticated' }],
      ['/export/audit?format=csv', memberKey, 403, { error: 'forbidden', capability: 'logging.export' }],
      ['/export/audit?format=csv&includeBodies=true', auditorKey, 403, { error: 'forbidden', capability: 'logging.view_bodies' }],
      ['/export/audit?format=xml', cp.ownerKey, 400, { error: 'invalid', field: 'format' }],
      ['/export/audit?gatewayId=nope', cp.ownerKey, 400, { error: 'invalid', field: 'gatewayId' }],
      ['/export/audit?from=2025-05-02T00:00:00Z&to=2025-05-01T00:00:00Z', cp.ownerKey, 400, { error: 'invalid', field: 'to' }],
      ['/export/audit?status=fine', cp.ownerKey, 400, { error: 'invalid', field: 'status.0' }],
      ['/export/audit?limit=10', cp.ownerKey, 400, { error: 'invalid', field: 'limit' }],
    ];
    for (const [path, key, status, body] of cases) {
      const res = await get(path, key);
      expect(res.status, path).toBe(status);
      expect(await res.json(), path).toMatchObject(body);
    }
    const post = await get('/export/audit', cp.ownerKey, { method: 'POST' });
    expect(post.status).toBe(405);
  });

  it('an auditor exports metadata; another workspace’s entries never appear', async () => {
    const mine = JSON.parse(await (await get('/export/audit?format=json', auditorKey)).text());
    expect(mine.map((r: any) => r.id)).toEqual(entries.map((e) => e.id));
    const theirs = JSON.parse(await (await get('/export/audit?format=json', other.ownerKey)).text());
    expect(theirs).toHaveLength(1);
    expect(theirs[0].workspaceId).toBe(other.workspaceId);
  });
});

describe('auditExportUrl', () => {
  const LINK = `query($f: AuditLogFilter, $fmt: AuditExportFormat!, $b: Boolean) { auditExportUrl(filter: $f, format: $fmt, includeBodies: $b) { url expiresAt format } }`;

  it('hands out a short-lived link that downloads without a header', async () => {
    const link = ok(await cp.gql(LINK, { f: { gatewayId: w.gateway.gid }, fmt: 'CSV' }, auditorKey)).auditExportUrl;
    expect(link.url.startsWith(`${cp.url}/export/audit?token=`)).toBe(true);
    expect(link.format).toBe('CSV');
    expect(Date.parse(link.expiresAt) - Date.now()).toBeGreaterThan(9 * 60_000);
    const viaLink = await fetch(link.url);
    expect(viaLink.status).toBe(200);
    const viaHeader = await get(`/export/audit?format=csv&gatewayId=${w.gateway.gid}`, auditorKey);
    const [a, b] = [await viaLink.text(), await viaHeader.text()];
    expect(a).toBe(b);
    expect(a.split('\r\n')).toHaveLength(4); // header, two rows, final CRLF
  });

  it('refuses an altered, expired or revoked link, and extra parameters', async () => {
    const link = ok(await cp.gql(LINK, { fmt: 'JSON' })).auditExportUrl;
    const token = new URL(link.url).searchParams.get('token')!;
    const altered = token.slice(0, 40) + (token[40] === 'A' ? 'B' : 'A') + token.slice(41);
    expect((await get(`/export/audit?token=${altered}`)).status).toBe(401);
    expect((await get(`/export/audit?token=${token}&format=csv`)).status).toBe(400);
    await expect(cp.app.services.auditExport.redeemLink(token, Date.now() + 11 * 60_000)).rejects.toThrow(/expired/);

    const key = await keyWithRole(cp, 'Read-only auditor');
    const own = ok(await cp.gql(LINK, { fmt: 'JSON' }, key)).auditExportUrl;
    expect((await fetch(own.url)).status).toBe(200);
    const keyId = ok(await cp.gql(`{ apiKeys(first: 1) { edges { node { id name } } } }`)).apiKeys.edges[0].node.id; // newest first
    ok(await cp.gql(`mutation($id: ID!) { revokeApiKey(id: $id) { __typename } }`, { id: keyId }));
    const revoked = await fetch(own.url);
    expect(revoked.status).toBe(401);
    expect((await revoked.json()).message).toMatch(/revoked/);
  });

  it('needs logging.export, and logging.view_bodies for bodies', async () => {
    expect((await cp.gql(LINK, { fmt: 'CSV' }, memberKey)).errors?.[0]?.extensions).toMatchObject({ code: 'FORBIDDEN', capability: 'logging.export' });
    expect((await cp.gql(LINK, { fmt: 'CSV', b: true }, auditorKey)).errors?.[0]?.extensions).toMatchObject({ code: 'FORBIDDEN', capability: 'logging.view_bodies' });
    expect((await cp.gql(LINK, { fmt: 'CSV', f: { from: '2025-05-02T00:00:00Z', to: '2025-05-01T00:00:00Z' } })).errors?.[0]?.extensions).toMatchObject({ code: 'VALIDATION', field: 'filter.to' });
  });
});
