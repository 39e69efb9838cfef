import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatewaySnapshot, SnapshotAssignment } from '../../../schema/snapshot/index.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { createWorkspaceWithOwner, keyWithRole, ok, startTestControlPlane, type TestControlPlane } from '../../helpers/control-plane.js';
import { SnapshotConsumer } from '../../helpers/snapshot-consumer.js';

const HEADER_SECRET = 'Bearer sk-live-identity-0123456789abcdefghij';

let tdb: TestDatabase;
let cp: TestControlPlane;
let memberKey: string;
let auditorKey: string;
const consumers: SnapshotConsumer[] = [];

const ERRORS = `... on Error { __typename code message } ... on ForbiddenError { capability } ... on NotFoundError { resourceType }`;
const IDENTITY_FIELDS = `id kind name disabled server { id name } createdAt updatedAt`;

const rawId = (globalId: string) => Buffer.from(globalId, 'base64url').toString().split(':')[1]!;

async function mutate(field: string, args: string, vars: Record<string, unknown>, selection: string, key = cp.ownerKey) {
  const res = ok(await cp.gql(`mutation(${args}) { ${field} { __typename ${selection} ${ERRORS} } }`, vars, key));
  return res[Object.keys(res)[0]!];
}

async function createServer(name: string, auth?: Record<string, unknown>): Promise<string> {
  const res = await mutate(
    'createServer(input: $input)',
    '$input: CreateServerInput!',
    { input: { name, remote: { url: `https://mcp.${name.toLowerCase()}.example/mcp` }, ...(auth && { auth }) } },
    '... on CreateServerSuccess { server { id } }',
  );
  expect(res.__typename).toBe('CreateServerSuccess');
  return res.server.id;
}

const headerAuth = { kind: 'HEADERS', headers: [{ name: 'Authorization', value: HEADER_SECRET }] };

async function updateServer(id: string, input: Record<string, unknown>) {
  const res = await mutate('updateServer(id: $id, input: $input)', '$id: ID!, $input: UpdateServerInput!', { id, input }, '... on UpdateServerSuccess { server { id } }');
  expect(res.__typename).toBe('UpdateServerSuccess');
}

async function sharedIdentityOf(serverId: string, key = cp.ownerKey) {
  return ok(await cp.gql(`query($id: ID!) { server(id: $id) { sharedIdentity { ${IDENTITY_FIELDS} } } }`, { id: serverId }, key)).server.sharedIdentity;
}

const setDisabled = (id: string, disabled: boolean, key = cp.ownerKey) =>
  mutate(
    'setIdentityDisabled(id: $id, disabled: $disabled)',
    '$id: ID!, $disabled: Boolean!',
    { id, disabled },
    `... on SetIdentityDisabledSuccess { identity { ${IDENTITY_FIELDS} } }`,
    key,
  );

beforeAll(async () => {
  tdb = await createTestDatabase();
  cp = await startTestControlPlane(tdb.database);
  [memberKey, auditorKey] = [await keyWithRole(cp, 'Member'), await keyWithRole(cp, 'Read-only auditor')];
});
afterAll(async () => {
  for (const c of consumers) await c.close().catch(() => undefined);
  await cp?.close();
  await tdb?.drop();
});

describe('shared identities follow their server’s auth', () => {
  let serverId: string;

  it('a server created with header auth gets its shared identity, and no secret is shown anywhere', async () => {
    serverId = await createServer('Linear', headerAuth);
    const res = await cp.gql(
      `query($id: ID!) { server(id: $id) { authKind sharedIdentity { ${IDENTITY_FIELDS} } } identities(first: 10) { edges { node { ${IDENTITY_FIELDS} } } } }`,
      { id: serverId },
    );
    const data = ok(res);
    expect(data.server.sharedIdentity).toMatchObject({ kind: 'SHARED', name: 'Linear', disabled: false, server: { id: serverId, name: 'Linear' } });
    expect(data.identities.edges.map((e: any) => e.node)).toEqual([data.server.sharedIdentity]);
    const identity = ok(await cp.gql(`query($id: ID!) { identity(id: $id) { ${IDENTITY_FIELDS} } }`, { id: data.server.sharedIdentity.id })).identity;
    expect(identity).toEqual(data.server.sharedIdentity);
    const everything = JSON.stringify([data, identity]);
    expect(everything).not.toContain(HEADER_SECRET);
    expect(everything).not.toContain('sk-live');

    const events = await tdb.database.db.selectFrom('workspace_events').select(['type', 'subject_id']).where('subject_type', '=', 'Identity').execute();
    expect(events).toEqual([{ type: 'identity.created', subject_id: rawId(data.server.sharedIdentity.id) }]);
  });

  it('a server without auth has none', async () => {
    const plain = await createServer('Plain');
    expect(await sharedIdentityOf(plain)).toBeNull();
  });

  it('follows a rename, and keeps its id and kill switch when the headers change', async () => {
    const before = await sharedIdentityOf(serverId);
    await updateServer(serverId, { name: 'Linear EU' });
    await updateServer(serverId, { auth: { kind: 'HEADERS', headers: [{ name: 'X-Api-Key', value: 'rotated-value-1234' }] } });
    expect(await sharedIdentityOf(serverId)).toMatchObject({ id: before.id, name: 'Linear EU', disabled: false });
  });

  it('is removed when the auth goes back to none, and a fresh one comes with new headers', async () => {
    const before = await sharedIdentityOf(serverId);
    await updateServer(serverId, { auth: { kind: 'NONE' } });
    expect(await sharedIdentityOf(serverId)).toBeNull();
    const rows = await tdb.database.db.selectFrom('identities').select('id').where('server_id', '=', rawId(serverId)).execute();
    expect(rows).toEqual([]);

    await updateServer(serverId, { auth: headerAuth });
    const after = await sharedIdentityOf(serverId);
    expect(after).toMatchObject({ kind: 'SHARED', disabled: false });
    expect(after.id).not.toBe(before.id);
  });

  it('goes with its server when the server is deleted', async () => {
    const doomed = await createServer('Doomed', headerAuth);
    const identity = await sharedIdentityOf(doomed);
    const res = await mutate('deleteServer(id: $id)', '$id: ID!', { id: doomed }, '... on DeleteServerSuccess { deletedServerId }');
    expect(res.__typename).toBe('DeleteServerSuccess');
    expect(await tdb.database.db.selectFrom('identities').select('id').where('id', '=', rawId(identity.id)).execute()).toEqual([]);
  });
});

describe('who may see and switch identities', () => {
  let serverId: string;
  let identityId: string;

  beforeAll(async () => {
    serverId = await createServer('Guarded', headerAuth);
    identityId = (await sharedIdentityOf(serverId)).id;
  });

  it('a member (servers.view, identities.manage_own) can neither list identities nor switch one off', async () => {
    const list = await cp.gql(`{ identities { edges { node { id } } } }`, {}, memberKey);
    expect(list.errors?.[0]?.extensions).toMatchObject({ code: 'FORBIDDEN', capability: 'identities.view' });
    const refused = await setDisabled(identityId, true, memberKey);
    expect(refused).toMatchObject({ __typename: 'ForbiddenError', code: 'FORBIDDEN', capability: 'identities.manage' });
    expect(refused.message).toContain('identities.manage');
    expect((await sharedIdentityOf(serverId)).disabled).toBe(false);
  });

  it('the auditor reads identities but cannot switch them', async () => {
    const data = ok(await cp.gql(`query($id: ID!) { identity(id: $id) { id name disabled } identities { edges { node { id } } } }`, { id: identityId }, auditorKey));
    expect(data.identity).toMatchObject({ id: identityId, disabled: false });
    expect(data.identities.edges.map((e: any) => e.node.id)).toContain(identityId);
    expect(await setDisabled(identityId, true, auditorKey)).toMatchObject({ __typename: 'ForbiddenError', capability: 'identities.manage' });
  });

  it('the owner switches one off and on, and each records an event', async () => {
    expect((await setDisabled(identityId, true)).identity).toMatchObject({ id: identityId, disabled: true });
    expect((await setDisabled(identityId, false)).identity).toMatchObject({ id: identityId, disabled: false });
    const events = await tdb.database.db
      .selectFrom('workspace_events')
      .select('type')
      .where('subject_id', '=', rawId(identityId))
      .orderBy('seq')
      .execute();
    expect(events.map((e) => e.type)).toEqual(['identity.created', 'identity.disabled', 'identity.enabled']);
  });

  it('another workspace sees none of them and cannot switch them', async () => {
    const other = await createWorkspaceWithOwner(tdb.database, 'Elsewhere');
    const list = ok(await cp.gql(`{ identities { edges { node { id } } } }`, {}, other.ownerKey));
    expect(list.identities.edges).toEqual([]);
    const get = await cp.gql(`query($id: ID!) { identity(id: $id) { id } }`, { id: identityId }, other.ownerKey);
    expect(get.errors?.[0]?.extensions).toMatchObject({ code: 'NOT_FOUND' });
    expect(await setDisabled(identityId, true, other.ownerKey)).toMatchObject({ __typename: 'NotFoundError', resourceType: 'Identity' });
    expect((await cp.gql(`query($id: ID!) { identity(id: $id) { disabled } }`, { id: identityId })).data.identity.disabled).toBe(false);
  });
});

describe('the identity kill switch reaches data planes', () => {
  const assignmentOf = (snapshot: GatewaySnapshot | null, id: string): SnapshotAssignment | undefined =>
    snapshot?.gateways.flatMap((g) => g.assignments).find((a) => a.id === rawId(id));

  it('disabling the shared identity takes the server’s shared assignments out of service, and enabling restores them', async () => {
    const registered = await mutate(
      'registerDataPlane(input: $input)',
      '$input: RegisterDataPlaneInput!',
      { input: { name: 'edge-identities' } },
      '... on RegisterDataPlaneSuccess { registered { token } }',
    );
    const c = new SnapshotConsumer({ url: cp.wsUrl, token: registered.registered.token });
    consumers.push(c);
    c.start();

    const serverId = await createServer('Github', headerAuth);
    const identity = await sharedIdentityOf(serverId);
    const gw = await mutate('createGateway(input: $input)', '$input: CreateGatewayInput!', { input: { name: 'Identity eng', slug: 'identity-eng' } }, '... on CreateGatewaySuccess { gateway { id } }');
    const assign = async (identityScheme: string, namespacePrefix: string) =>
      (
        await mutate(
          'assignServer(input: $input)',
          '$input: AssignServerInput!',
          { input: { gatewayId: gw.gateway.id, serverId, identityScheme, namespacePrefix } },
          '... on AssignServerSuccess { assignment { id } }',
        )
      ).assignment.id as string;
    const shared = await assign('SHARED', 'gh');
    const personal = await assign('PERSONAL', 'mygh');

    await c.waitFor((o) => o.accepted && assignmentOf(c.current, personal) !== undefined);
    const live = assignmentOf(c.current, shared)!;
    expect(live).toMatchObject({ enabled: true, disabledBy: [], upstreamAuth: { kind: 'headers', identityId: rawId(identity.id) } });
    expect(JSON.stringify(c.current)).not.toContain(HEADER_SECRET);
    if (live.upstreamAuth.kind !== 'headers') throw new Error('expected header auth');
    expect(c.openSecret(live.upstreamAuth.headers[0]!.value)).toBe(HEADER_SECRET);

    expect((await setDisabled(identity.id, true)).identity.disabled).toBe(true);
    await c.waitFor((o) => o.accepted && assignmentOf(c.current, shared)?.enabled === false);
    expect(assignmentOf(c.current, shared)).toMatchObject({ enabled: false, disabledBy: ['identity'] });
    expect(c.current!.killSwitches.identity).toContain(rawId(identity.id));
    // A personal-scheme assignment authenticates with each user's own identity, not the shared one.
    expect(assignmentOf(c.current, personal)).toMatchObject({ enabled: true, disabledBy: [] });

    await setDisabled(identity.id, false);
    await c.waitFor((o) => o.accepted && assignmentOf(c.current, shared)?.enabled === true);
    expect(assignmentOf(c.current, shared)).toMatchObject({ enabled: true, disabledBy: [] });
    expect(c.current!.killSwitches.identity).not.toContain(rawId(identity.id));
  });
});
