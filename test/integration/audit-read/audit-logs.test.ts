import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../../../schema/audit/types.js';
import { auditCall, auditEntry, insertAuditEntries } from '../../helpers/audit-rows.js';
import { createWorkspaceWithOwner, keyWithRole, ok, startTestControlPlane, type TestControlPlane } from '../../helpers/control-plane.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { createAuditWorld, type AuditWorld } from './fixture.js';

let tdb: TestDatabase;
let cp: TestControlPlane;
let world: AuditWorld;
let auditorKey: string;
let memberKey: string;
let adminKey: string;
let other: { workspaceId: string; ownerKey: string };
let otherCorrelation: string;

const T0 = Date.parse('2025-03-10T12:00:00.000Z');
const at = (minutes: number) => new Date(T0 + minutes * 60_000);

/** Every call of the dataset, in the order written: 12 calls, 50+ legs. */
const calls: AuditEntry[][] = [];

const LIST = `query($filter: AuditLogFilter, $first: Int, $after: String, $last: Int, $before: String) {
  auditLogs(filter: $filter, first: $first, after: $after, last: $last, before: $before) {
    edges { cursor node { id correlationId leg status occurredAt featureName method userId gatewayId serverId } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  } }`;

async function list(filter: Record<string, unknown>, key = cp.ownerKey, page: Record<string, unknown> = { first: 100 }) {
  return ok(await cp.gql(LIST, { filter, ...page }, key)).auditLogs;
}
const ids = (conn: any) => conn.edges.map((e: any) => e.node.id);

beforeAll(async () => {
  tdb = await createTestDatabase();
  cp = await startTestControlPlane(tdb.database);
  world = await createAuditWorld(cp);
  [auditorKey, memberKey, adminKey] = [await keyWithRole(cp, 'Read-only auditor'), await keyWithRole(cp, 'Member'), await keyWithRole(cp, 'Admin')];
  const ws = cp.workspaceId;
  const base = { workspaceId: ws, gatewayId: world.gateway.id, serverId: world.server.id, hostId: world.host.id, connectionId: world.connection.id };
  calls.push(
    auditCall({ ...base, at: at(0), userId: world.alice.id, feature: 'echo', inputTokens: 10, outputTokens: 20, requestBody: '{"text":"hello secret-sauce"}' }),
    auditCall({ ...base, at: at(1), userId: world.alice.id, feature: 'search_docs', inputTokens: 5, outputTokens: 50 }),
    auditCall({ ...base, at: at(2), userId: world.bob.id, feature: 'echo', status: 'error', errorMessage: 'upstream timed out after 30s' }),
    auditCall({ ...base, at: at(3), userId: world.carol.id, feature: 'deploy', status: 'blocked', errorMessage: 'blocked by rule no-deploys', policyActions: [{ ruleId: 'r-1', ruleName: 'no deploys', action: 'block', findings: ['deploy'], alert: true }] }),
    auditCall({ ...base, at: at(4), gatewayId: world.otherGateway.id, serverId: world.otherServer.id, hostId: null, connectionId: null, userId: null, feature: 'read_file' }),
    auditCall({ ...base, at: at(5), userId: world.alice.id, method: 'resources/read', feature: 'file:///etc/motd' }),
    auditCall({ ...base, at: at(60), userId: world.bob.id, feature: 'echo' }),
    auditCall({ ...base, at: at(61), userId: world.carol.id, feature: 'echo', method: 'prompts/get' }),
    auditCall({ ...base, at: at(120), userId: world.alice.id, feature: 'echo' }),
    auditCall({ ...base, at: at(121), userId: world.bob.id, feature: 'search_docs', status: 'error' }),
    auditCall({ ...base, at: at(180), userId: world.alice.id, feature: 'echo' }),
    auditCall({ ...base, at: at(181), userId: null, hostId: world.host.id, feature: 'echo' }),
  );
  // Five legs sharing one timestamp: the page boundary must fall between them without loss.
  const tie = new Date(T0 + 240 * 60_000).toISOString();
  calls.push(Array.from({ length: 5 }, () => auditEntry({ ...base, occurredAt: tie, leg: 'client_response', featureName: 'tie', userId: world.alice.id })));
  await insertAuditEntries(tdb.database.db, calls.flat());

  other = await createWorkspaceWithOwner(tdb.database, 'other-audit');
  const theirs = auditCall({ workspaceId: other.workspaceId, at: at(10), feature: 'echo', requestBody: '{"text":"hello secret-sauce"}' });
  otherCorrelation = theirs[0]!.correlationId;
  await insertAuditEntries(tdb.database.db, theirs);
});

afterAll(async () => {
  await cp?.close();
  await tdb?.drop();
});

const all = () => calls.flat();
const newestFirst = (entries: AuditEntry[]) => [...entries].sort((a, b) => b.occurredAt.localeCompare(a.occurredAt) || b.id.localeCompare(a.id));

describe('auditLogs', () => {
  it('lists the workspace’s legs newest first, and pages through all of them exactly once', async () => {
    const expected = newestFirst(all()).map((e) => e.id);
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    for (;;) {
      const page: any = await list({}, cp.ownerKey, { first: 7, after });
      seen.push(...ids(page));
      pages++;
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(seen).toEqual(expected);
    expect(pages).toBe(Math.ceil(expected.length / 7));
  });

  it('pages backwards with last/before to the same entries', async () => {
    const first = await list({}, cp.ownerKey, { first: 10 });
    const second = await list({}, cp.ownerKey, { first: 10, after: first.pageInfo.endCursor });
    const back = await list({}, cp.ownerKey, { last: 10, before: second.pageInfo.startCursor });
    expect(ids(back)).toEqual(ids(first));
    expect(back.pageInfo.hasPreviousPage).toBe(false);
    expect(back.pageInfo.hasNextPage).toBe(true);
  });

  it('filters by every dimension', async () => {
    const only = (pred: (e: AuditEntry) => boolean) => newestFirst(all().filter(pred)).map((e) => e.id);
    const cases: [Record<string, unknown>, (e: AuditEntry) => boolean][] = [
      [{ from: at(60).toISOString(), to: at(121).toISOString() }, (e) => e.occurredAt >= at(60).toISOString() && e.occurredAt < at(121).toISOString()],
      [{ gatewayId: world.otherGateway.gid }, (e) => e.gatewayId === world.otherGateway.id],
      [{ serverId: world.server.gid }, (e) => e.serverId === world.server.id],
      [{ connectionId: world.connection.gid }, (e) => e.connectionId === world.connection.id],
      [{ hostId: world.host.gid }, (e) => e.hostId === world.host.id],
      [{ userId: world.carol.gid }, (e) => e.userId === world.carol.id],
      [{ teamId: world.team.gid }, (e) => e.userId === world.alice.id || e.userId === world.bob.id],
      [{ feature: 'search_docs' }, (e) => e.featureName === 'search_docs'],
      [{ method: 'prompts/get' }, (e) => e.method === 'prompts/get'],
      [{ status: ['ERROR', 'BLOCKED'] }, (e) => e.status !== 'ok'],
      [{ leg: ['CLIENT_RESPONSE'], userId: world.alice.gid }, (e) => e.leg === 'client_response' && e.userId === world.alice.id],
      [{ leg: ['POLICY_ACTION'] }, (e) => e.leg === 'policy_action'],
      [{ correlationId: calls[2]![0]!.correlationId }, (e) => e.correlationId === calls[2]![0]!.correlationId],
      [{ search: 'TIMED OUT', from: at(-60).toISOString(), to: at(300).toISOString() }, (e) => (e.errorMessage ?? '').includes('timed out')],
      [{ search: 'search_', from: at(-60).toISOString(), to: at(300).toISOString() }, (e) => (e.featureName ?? '').includes('search_')],
      [{ search: '100%', from: at(-60).toISOString(), to: at(300).toISOString() }, () => false],
    ];
    for (const [filter, pred] of cases) {
      const got = ids(await list(filter));
      expect(got, JSON.stringify(filter)).toEqual(only(pred));
      expect(got.length > 0 || JSON.stringify(filter).includes('100%'), JSON.stringify(filter)).toBe(true);
    }
  });

  it('searches bodies only for viewers who may see them', async () => {
    const filter = { search: 'secret-sauce', from: at(-60).toISOString(), to: at(300).toISOString() };
    const owner = ids(await list(filter));
    expect(owner.length).toBe(2); // the client request and upstream request legs of the first call
    expect(ids(await list(filter, auditorKey))).toEqual([]);
  });

  it('refuses bad input with a typed error naming the field', async () => {
    const bad: [Record<string, unknown>, Record<string, unknown>, string][] = [
      [{ from: at(10).toISOString(), to: at(5).toISOString() }, { first: 10 }, 'filter.to'],
      [{ from: at(10).toISOString(), to: at(10).toISOString() }, { first: 10 }, 'filter.to'],
      [{ gatewayId: 'not-an-id' }, { first: 10 }, 'filter.gatewayId'],
      [{ gatewayId: world.server.gid }, { first: 10 }, 'filter.gatewayId'],
      [{ correlationId: 'abc' }, { first: 10 }, 'filter.correlationId'],
      [{ search: 'x', from: at(-60 * 24 * 40).toISOString(), to: at(0).toISOString() }, { first: 10 }, 'filter.search'],
      [{ search: 'x'.repeat(201) }, { first: 10 }, 'filter.search'],
      [{}, { first: 500 }, 'first'],
      [{}, { first: 0 }, 'first'],
      [{}, { first: 5, after: 'bm90LWEtY3Vyc29y' }, 'after'],
      [{}, { first: 5, last: 5 }, 'last'],
    ];
    for (const [filter, page, field] of bad) {
      const res = await cp.gql(LIST, { filter, ...page });
      expect(res.data, JSON.stringify(filter)).toBeNull();
      expect(res.errors?.[0]?.extensions, JSON.stringify({ filter, page })).toMatchObject({ code: 'VALIDATION', field });
    }
    const invalidDate = await cp.gql(LIST, { filter: { from: 'yesterday' }, first: 5 });
    expect(invalidDate.errors?.[0]?.message).toMatch(/DateTime/);
  });

  it('shows bodies and headers only with logging.view_bodies', async () => {
    const query = `query($f: AuditLogFilter) { auditLogs(filter: $f, first: 5) { edges { node { leg featureName body headers } } } }`;
    const filter = { correlationId: calls[0]![0]!.correlationId, leg: ['CLIENT_REQUEST'] };
    const owner = ok(await cp.gql(query, { f: filter }));
    expect(owner.auditLogs.edges[0].node.body).toBe('{"text":"hello secret-sauce"}');

    const auditor = await cp.gql(query, { f: filter }, auditorKey);
    expect(auditor.data.auditLogs.edges[0].node).toMatchObject({ leg: 'CLIENT_REQUEST', featureName: 'echo', body: null, headers: null });
    expect(auditor.errors?.map((e) => e.extensions)).toEqual([
      expect.objectContaining({ code: 'FORBIDDEN', capability: 'logging.view_bodies' }),
      expect.objectContaining({ code: 'FORBIDDEN', capability: 'logging.view_bodies' }),
    ]);
    // Without selecting them the auditor reads cleanly.
    expect(ok(await cp.gql(`{ auditLogs(first: 3) { edges { node { id policyActions { ruleId } } } } }`, {}, auditorKey)).auditLogs.edges).toHaveLength(3);
  });

  it('is refused without logging.view', async () => {
    const res = await cp.gql(`{ auditLogs(first: 1) { edges { node { id } } } }`, {}, memberKey);
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'FORBIDDEN', capability: 'logging.view' });
  });

  it('never shows another workspace’s entries', async () => {
    const mine = ids(await list({}, cp.ownerKey, { first: 100 }));
    const theirs = ids(await list({}, other.ownerKey, { first: 100 }));
    expect(theirs).toHaveLength(4);
    expect(mine.some((id: string) => theirs.includes(id))).toBe(false);
    // Their owner filtering by our gateway sees nothing of ours.
    expect(ids(await list({ gatewayId: world.gateway.gid }, other.ownerKey))).toEqual([]);
    expect(ok(await cp.gql(`query($c: String!) { auditCall(correlationId: $c) { correlationId } }`, { c: otherCorrelation })).auditCall).toBeNull();
  });
});

describe('auditCall', () => {
  it('puts one call’s legs side by side', async () => {
    const blocked = calls[3]!;
    const res = ok(
      await cp.gql(
        `query($c: String!) { auditCall(correlationId: $c) {
          correlationId status durationMs startedAt
          clientRequest { leg } upstreamRequests { leg } upstreamResponses { leg } clientResponse { leg errorMessage durationMs }
          policyActions { leg policyActions { ruleId ruleName action findings alert } }
          entries { leg } } }`,
        { c: blocked[0]!.correlationId },
        auditorKey,
      ),
    ).auditCall;
    expect(res).toEqual({
      correlationId: blocked[0]!.correlationId,
      status: 'BLOCKED',
      durationMs: 20,
      startedAt: at(3).toISOString(),
      clientRequest: { leg: 'CLIENT_REQUEST' },
      upstreamRequests: [],
      upstreamResponses: [],
      clientResponse: { leg: 'CLIENT_RESPONSE', errorMessage: 'blocked by rule no-deploys', durationMs: 20 },
      policyActions: [{ leg: 'POLICY_ACTION', policyActions: [{ ruleId: 'r-1', ruleName: 'no deploys', action: 'block', findings: ['deploy'], alert: true }] }],
      entries: [{ leg: 'CLIENT_REQUEST' }, { leg: 'POLICY_ACTION' }, { leg: 'CLIENT_RESPONSE' }],
    });
    const full = ok(await cp.gql(`query($c: String!) { auditCall(correlationId: $c) { upstreamRequests { leg } upstreamResponses { leg status } entries { leg } } }`, { c: calls[2]![0]!.correlationId }));
    expect(full.auditCall.entries.map((e: any) => e.leg)).toEqual(['CLIENT_REQUEST', 'UPSTREAM_REQUEST', 'UPSTREAM_RESPONSE', 'CLIENT_RESPONSE']);
    expect(full.auditCall.upstreamResponses).toEqual([{ leg: 'UPSTREAM_RESPONSE', status: 'ERROR' }]);
  });

  it('answers null for an unknown call and VALIDATION for a malformed id', async () => {
    expect(ok(await cp.gql(`query($c: String!) { auditCall(correlationId: $c) { status } }`, { c: randomUUID() })).auditCall).toBeNull();
    const res = await cp.gql(`{ auditCall(correlationId: "nope") { status } }`);
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'VALIDATION', field: 'correlationId' });
  });
});

describe('scoped audit logs', () => {
  it('on servers, gateways, connections and hosts', async () => {
    const count = (pred: (e: AuditEntry) => boolean) => all().filter(pred).length;
    const res = ok(
      await cp.gql(
        `query($s: ID!, $g: ID!, $h: ID!) {
          server(id: $s) { auditLogs(first: 100) { edges { node { serverId } } } }
          gateway(id: $g) { auditLogs(first: 100, filter: { status: [ERROR] }) { edges { node { gatewayId status } } } }
          host(id: $h) { auditLogs(first: 100) { edges { node { hostId } } }
            connections { edges { node { auditLogs(first: 100, filter: { userId: null, feature: "echo" }) { edges { node { connectionId featureName } } } } } } } }`,
        { s: world.otherServer.gid, g: world.gateway.gid, h: world.host.gid },
        auditorKey,
      ),
    );
    expect(res.server.auditLogs.edges).toHaveLength(count((e) => e.serverId === world.otherServer.id));
    expect(res.server.auditLogs.edges.every((e: any) => e.node.serverId === world.otherServer.gid)).toBe(true);
    expect(res.gateway.auditLogs.edges).toHaveLength(count((e) => e.gatewayId === world.gateway.id && e.status === 'error'));
    expect(res.host.auditLogs.edges).toHaveLength(count((e) => e.hostId === world.host.id));
    const conn = res.host.connections.edges[0].node.auditLogs.edges;
    expect(conn).toHaveLength(count((e) => e.connectionId === world.connection.id && e.featureName === 'echo'));
  });

  it('the scope wins over a conflicting filter', async () => {
    const res = ok(await cp.gql(`query($s: ID!, $o: ID!) { server(id: $s) { auditLogs(first: 100, filter: { serverId: $o }) { edges { node { serverId } } } } }`, { s: world.otherServer.gid, o: world.server.gid }));
    expect(res.server.auditLogs.edges.every((e: any) => e.node.serverId === world.otherServer.gid)).toBe(true);
  });

  it('need logging.view on top of the type’s own capability', async () => {
    const roleRes = ok(
      await cp.gql(`mutation { createRole(input: { name: "server viewer", capabilities: ["servers.view"] }) { ... on CreateRoleSuccess { role { id } } } }`),
    ).createRole;
    const key = ok(
      await cp.gql(`mutation($r: ID!) { createApiKey(input: { name: "sv", roleId: $r }) { ... on CreateApiKeySuccess { created { secret } } } }`, { r: roleRes.role.id }),
    ).createApiKey.created.secret;
    const res = await cp.gql(`query($s: ID!) { server(id: $s) { name auditLogs(first: 1) { edges { node { id } } } } }`, { s: world.server.gid }, key);
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'FORBIDDEN', capability: 'logging.view' });
  });
});

describe('audit retention', () => {
  const UPDATE = `mutation($d: Int!) { updateAuditSettings(input: { retentionDays: $d }) { __typename
    ... on UpdateAuditSettingsSuccess { settings { retentionDays } } ... on ValidationError { field } ... on ForbiddenError { capability } } }`;

  it('is read on the workspace and changed by owners only', async () => {
    expect(ok(await cp.gql(`{ workspace { auditRetentionDays } }`)).workspace.auditRetentionDays).toBe(90);
    expect(ok(await cp.gql(UPDATE, { d: 30 })).updateAuditSettings).toEqual({ __typename: 'UpdateAuditSettingsSuccess', settings: { retentionDays: 30 } });
    expect(ok(await cp.gql(`{ workspace { auditRetentionDays } }`, {}, auditorKey)).workspace.auditRetentionDays).toBe(30);
    expect(ok(await cp.gql(UPDATE, { d: 45 }, adminKey)).updateAuditSettings).toEqual({ __typename: 'ForbiddenError', capability: 'workspace.manage_settings' });
    expect(ok(await cp.gql(UPDATE, { d: 0 })).updateAuditSettings).toEqual({ __typename: 'ValidationError', field: 'input.retentionDays' });
    expect(ok(await cp.gql(UPDATE, { d: 4000 })).updateAuditSettings).toEqual({ __typename: 'ValidationError', field: 'input.retentionDays' });
    const events = ok(await cp.gql(`{ workspaceEvents(first: 5) { edges { node { type details } } } }`)).workspaceEvents.edges.map((e: any) => e.node);
    expect(events.find((e: any) => e.type === 'workspace.audit_settings_updated')?.details).toEqual({ retentionDays: 30, previousRetentionDays: 90 });
    // The other workspace keeps its own setting.
    expect(ok(await cp.gql(`{ workspace { auditRetentionDays } }`, {}, other.ownerKey)).workspace.auditRetentionDays).toBe(90);
  });
});
