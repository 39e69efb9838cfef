import { randomUUID } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createClient, type Client as WsClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { buildDataPlane, type DataPlane } from '../../../data-plane/app.js';
import { PushSnapshotSource } from '../../../data-plane/snapshot/push-client.js';
import { encodeGlobalId } from '../../../control-plane/graphql/global-id.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { keyWithRole, ok, roleIds, startTestControlPlane, type TestControlPlane } from '../../helpers/control-plane.js';

const SECRET = 'access-requests-session-secret-0123456789abcdef';
const ERRORS = `... on Error { __typename code message } ... on ValidationError { field } ... on ForbiddenError { capability } ... on ConflictError { field }`;
const REQUEST = `id state reason userId gatewayId teamId requestedBy decidedBy decidedAt decisionNote team { name }`;

let tdb: TestDatabase;
let cp: TestControlPlane;
let snapshots: PushSnapshotSource;
let plane: DataPlane;
let planeUrl: string;
let ws: WsClient;
const ids = {} as { ada: string; grace: string; engTeam: string; salesTeam: string; gateway: string };
let adaToken: string;
/** An integration's key: people.view only (sees users, files requests for them). */
let portalKey: string;
let memberKey: string;
let auditorKey: string;
const alertEvents: any[] = [];

async function mutate(field: string, args: string, vars: Record<string, unknown>, selection: string, key = cp.ownerKey) {
  const res = ok(await cp.gql(`mutation${args ? `(${args})` : ''} { ${field} { __typename ${selection} ${ERRORS} } }`, vars, key));
  return res[Object.keys(res)[0]!];
}
async function must(field: string, args: string, vars: Record<string, unknown>, selection: string, key = cp.ownerKey) {
  const payload = await mutate(field, args, vars, selection, key);
  if (!payload.__typename.endsWith('Success')) throw new Error(`${field}: ${JSON.stringify(payload)}`);
  return payload;
}

const requestAccess = (userId: string, gatewayId: string, reason: string | undefined, key = portalKey) =>
  mutate('requestGatewayAccess(input: $input)', '$input: RequestGatewayAccessInput!', { input: { userId, gatewayId, reason } }, `... on RequestGatewayAccessSuccess { request { ${REQUEST} } }`, key);
const approve = (id: string, teamId: string, key = cp.ownerKey, note?: string) =>
  mutate('approveGatewayAccessRequest(id: $id, teamId: $team, note: $note)', '$id: ID!, $team: ID!, $note: String', { id, team: teamId, note }, `... on ApproveGatewayAccessRequestSuccess { request { ${REQUEST} } }`, key);
const deny = (id: string, note?: string, key = cp.ownerKey) =>
  mutate('denyGatewayAccessRequest(id: $id, note: $note)', '$id: ID!, $note: String', { id, note }, `... on DenyGatewayAccessRequestSuccess { request { ${REQUEST} } }`, key);

async function createUser(email: string): Promise<string> {
  const roles = await roleIds(cp);
  const user = await must('inviteUser(input: $input)', '$input: InviteUserInput!', { input: { email, roleId: roles.Member } }, '... on InviteUserSuccess { user { id } }');
  await must('activateUser(id: $id)', '$id: ID!', { id: user.user.id }, '');
  return user.user.id;
}
const createTeam = async (name: string) => (await must('createTeam(input: $input)', '$input: CreateTeamInput!', { input: { name } }, '... on CreateTeamSuccess { team { id } }')).team.id as string;

/** POSTs `initialize` as Ada's agent; the status says what the data plane enforces for her. */
async function initializeStatus(): Promise<number> {
  const response = await fetch(`${planeUrl}/mcp/eng`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${adaToken}` },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } }),
  });
  await response.body?.cancel();
  return response.status;
}

beforeAll(async () => {
  tdb = await createTestDatabase();
  cp = await startTestControlPlane(tdb.database);
  [memberKey, auditorKey] = [await keyWithRole(cp, 'Member'), await keyWithRole(cp, 'Read-only auditor')];
  const portalRole = (await must('createRole(input: $input)', '$input: CreateRoleInput!', { input: { name: 'Access portal', capabilities: ['people.view'] } }, '... on CreateRoleSuccess { role { id } }')).role.id;
  portalKey = (await must('createApiKey(input: $input)', '$input: CreateApiKeyInput!', { input: { name: 'portal', roleId: portalRole } }, '... on CreateApiKeySuccess { created { secret } }')).created.secret;

  ids.ada = await createUser('ada@example.com');
  ids.grace = await createUser('grace@example.com');
  ids.engTeam = await createTeam('Engineering');
  ids.salesTeam = await createTeam('Sales');
  ids.gateway = (await must('createGateway(input: $input)', '$input: CreateGatewayInput!', { input: { name: 'Engineering', slug: 'eng', teamIds: [ids.engTeam] } }, '... on CreateGatewaySuccess { gateway { id } }')).gateway.id;
  const host = await must('createHost(input: $input)', '$input: CreateHostInput!', { input: { name: 'ada-laptop-agent' } }, '... on CreateHostSuccess { host { id } }');
  const connection = await must(
    'createConnection(input: $input)',
    '$input: CreateConnectionInput!',
    { input: { hostId: host.host.id, gatewayId: ids.gateway, name: 'ada', userId: ids.ada } },
    '... on CreateConnectionSuccess { connection { id } }',
  );
  adaToken = (await must('createAccessToken(input: $input)', '$input: CreateAccessTokenInput!', { input: { connectionId: connection.connection.id, name: 'ada' } }, '... on CreateAccessTokenSuccess { created { secret } }')).created.secret;

  // A real data plane fed by the control plane's push channel.
  const registered = await must('registerDataPlane(input: $input)', '$input: RegisterDataPlaneInput!', { input: { name: 'edge-1' } }, '... on RegisterDataPlaneSuccess { registered { token } }');
  snapshots = new PushSnapshotSource({ url: () => cp.url, token: registered.registered.token, initialRetryDelayMs: 50, maxRetryDelayMs: 400 });
  plane = buildDataPlane({ port: 0, sessionSecret: SECRET }, { snapshots });
  planeUrl = (await plane.listen()).url;
  snapshots.start();
  await snapshots.ready(10_000);

  // An admin dashboard watching access-request alerts.
  ws = createClient({ url: cp.wsUrl, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${cp.ownerKey}` }, retryAttempts: 0 });
  ws.subscribe(
    { query: `subscription { alerts(types: [GATEWAY_ACCESS_REQUEST]) { change alert { id type state subject details } } }` },
    { next: (m) => void (m.data && alertEvents.push((m.data as any).alerts)), error: () => undefined, complete: () => undefined },
  );
  for (let i = 0; i < 250 && cp.app.services.alerts.subscriberCount < 1; i++) await new Promise((r) => setTimeout(r, 20));
}, 60_000);

afterAll(async () => {
  await ws?.dispose();
  await plane?.close();
  await snapshots?.close();
  await cp?.close();
  await tdb?.drop();
});

describe('gateway access requests, end to end', () => {
  let requestId: string;

  it('a user outside the gateway’s teams is refused by the data plane', async () => {
    await expect.poll(initializeStatus, { timeout: 5_000 }).toBe(403);
  });

  it('a request on the user’s behalf is PENDING, alerts the admins live, and a duplicate is a CONFLICT', async () => {
    const filed = await requestAccess(ids.ada, ids.gateway, 'I am on call for the platform this week');
    expect(filed.__typename).toBe('RequestGatewayAccessSuccess');
    expect(filed.request).toMatchObject({
      state: 'PENDING',
      reason: 'I am on call for the platform this week',
      userId: ids.ada,
      gatewayId: ids.gateway,
      teamId: null,
      decidedAt: null,
      requestedBy: expect.stringMatching(/^api_key:/),
    });
    requestId = filed.request.id;

    await expect.poll(() => alertEvents.length, { timeout: 5_000 }).toBeGreaterThan(0);
    expect(alertEvents[0]).toMatchObject({
      change: 'RAISED',
      alert: { type: 'GATEWAY_ACCESS_REQUEST', state: 'OPEN', subject: 'ada@example.com asks for access to gateway eng', details: { reason: 'I am on call for the platform this week', gatewaySlug: 'eng' } },
    });

    const again = await requestAccess(ids.ada, ids.gateway, 'please');
    expect(again).toMatchObject({ __typename: 'ConflictError', code: 'CONFLICT', field: 'input.gatewayId' });
    expect(again.message).toContain('pending request');
  });

  it('refuses what the caller may not do, and bad input, with typed errors', async () => {
    expect(await requestAccess(ids.grace, ids.gateway, 'x', memberKey)).toMatchObject({ __typename: 'ForbiddenError', capability: 'people.view' });
    expect(await approve(requestId, ids.engTeam, auditorKey)).toMatchObject({ __typename: 'ForbiddenError', capability: 'gateways.manage_access' });
    expect(await deny(requestId, 'no', portalKey)).toMatchObject({ __typename: 'ForbiddenError', capability: 'gateways.manage_access' });
    expect(await requestAccess(ids.grace, encodeGlobalId('Gateway', randomUUID()), 'x')).toMatchObject({ __typename: 'NotFoundError' });
    expect(await requestAccess(ids.grace, ids.gateway, 'x'.repeat(1001))).toMatchObject({ __typename: 'ValidationError', field: 'input.reason' });
    expect(await requestAccess(ids.grace, ids.engTeam, 'x')).toMatchObject({ __typename: 'ValidationError', field: 'input.gatewayId' });

    // The team must have the gateway.
    const wrongTeam = await approve(requestId, ids.salesTeam);
    expect(wrongTeam).toMatchObject({ __typename: 'ValidationError', field: 'teamId' });
    expect(wrongTeam.message).toContain('Sales');
    const state = ok(await cp.gql(`query($id: ID!) { gatewayAccessRequest(id: $id) { state } }`, { id: requestId }, portalKey));
    expect(state.gatewayAccessRequest.state).toBe('PENDING');
  });

  it('approval adds the user to the team, reaches the data plane, tells the user and resolves the alert', async () => {
    const approved = await approve(requestId, ids.engTeam, cp.ownerKey, 'Welcome aboard');
    expect(approved.request).toMatchObject({
      state: 'APPROVED',
      teamId: ids.engTeam,
      team: { name: 'Engineering' },
      decidedBy: expect.stringMatching(/^api_key:/),
      decidedAt: expect.any(String),
      decisionNote: 'Welcome aboard',
    });

    // The compiled snapshot now grants her the gateway, and a real MCP client gets through.
    await expect.poll(initializeStatus, { timeout: 5_000, interval: 25 }).toBe(200);
    const raw = (id: string) => Buffer.from(id, 'base64url').toString().split(':')[1]!;
    const held = snapshots.current()!;
    expect(held.snapshot.access.users[raw(ids.ada)]!.teamIds).toContain(raw(ids.engTeam));
    expect(held.gatewaysByUser.get(raw(ids.ada))?.has(raw(ids.gateway))).toBe(true);
    const transport = new StreamableHTTPClientTransport(new URL(`${planeUrl}/mcp/eng`), { requestInit: { headers: { Authorization: `Bearer ${adaToken}` } } });
    const mcp = new Client({ name: 'ada', version: '1' });
    await mcp.connect(transport);
    await mcp.ping();
    await transport.terminateSession().catch(() => undefined);
    await mcp.close();

    // What the user (through the integration that filed it) reads: the request, on her user record, and in the change log.
    const mine = ok(
      await cp.gql(`query($id: ID!) { user(id: $id) { teams { edges { node { name } } } gatewayAccessRequests { edges { node { state decisionNote } } } } }`, { id: ids.ada }, portalKey),
    );
    expect(mine.user.teams.edges.map((e: any) => e.node.name)).toEqual(['Engineering']);
    expect(mine.user.gatewayAccessRequests.edges).toEqual([{ node: { state: 'APPROVED', decisionNote: 'Welcome aboard' } }]);
    const log = ok(await cp.gql(`{ workspaceEvents(first: 10) { edges { node { type subjectType details } } } }`));
    const types = log.workspaceEvents.edges.map((e: any) => e.node.type);
    expect(types).toEqual(expect.arrayContaining(['gateway_access_request.approved', 'team.members_added', 'alert.resolved']));

    await expect.poll(() => alertEvents.some((e) => e.change === 'RESOLVED'), { timeout: 5_000 }).toBe(true);
    const alert = ok(await cp.gql(`{ alerts(filter: { types: [GATEWAY_ACCESS_REQUEST] }) { edges { node { state resolvedBy } } } }`)).alerts.edges[0].node;
    expect(alert).toMatchObject({ state: 'RESOLVED', resolvedBy: expect.stringMatching(/^api_key:/) });

    expect(await approve(requestId, ids.engTeam)).toMatchObject({ __typename: 'ConflictError', message: 'the request was already approved' });
    // She reaches the gateway now, so asking again is a conflict too.
    expect(await requestAccess(ids.ada, ids.gateway, 'again')).toMatchObject({ __typename: 'ConflictError', message: expect.stringContaining('already reaches gateway eng through team Engineering') });
  });

  it('denial records the note the user reads and grants nothing', async () => {
    const filed = await requestAccess(ids.grace, ids.gateway, 'curious');
    const denied = await deny(filed.request.id, 'Ask your manager first');
    expect(denied.request).toMatchObject({ state: 'DENIED', teamId: null, decisionNote: 'Ask your manager first' });
    expect(await deny(filed.request.id)).toMatchObject({ __typename: 'ConflictError' });
    const list = ok(await cp.gql(`query($u: ID!) { gatewayAccessRequests(filter: { userId: $u }) { edges { node { state decisionNote } } } }`, { u: ids.grace }, portalKey));
    expect(list.gatewayAccessRequests.edges).toEqual([{ node: { state: 'DENIED', decisionNote: 'Ask your manager first' } }]);
    const teams = ok(await cp.gql(`query($id: ID!) { user(id: $id) { teams { edges { node { name } } } } }`, { id: ids.grace }));
    expect(teams.user.teams.edges).toEqual([]);
    // After a denial she may ask again.
    expect((await requestAccess(ids.grace, ids.gateway, 'my manager agreed')).request.state).toBe('PENDING');
  });

  it('a deactivated user cannot ask, and a member key cannot read requests', async () => {
    const id = await createUser('gone@example.com');
    await must('deactivateUser(id: $id)', '$id: ID!', { id }, '');
    expect(await requestAccess(id, ids.gateway, 'x')).toMatchObject({ __typename: 'ConflictError', field: 'input.userId' });
    const res = await cp.gql(`{ gatewayAccessRequests { edges { node { id } } } }`, {}, memberKey);
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'FORBIDDEN', capability: 'people.view' });
    const filtered = ok(await cp.gql(`{ gatewayAccessRequests(filter: { state: PENDING }) { edges { node { userId } } } }`, {}, auditorKey));
    expect(filtered.gatewayAccessRequests.edges.map((e: any) => e.node.userId)).toEqual([ids.grace]);
  });
});
