import { createHash, randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeGlobalId } from '../../../control-plane/graphql/global-id.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { createWorkspaceWithOwner, keyWithRole, ok, roleIds, startTestControlPlane, type TestControlPlane } from '../../helpers/control-plane.js';

let tdb: TestDatabase;
let cp: TestControlPlane;
let other: { workspaceId: string; ownerKey: string };
/** Global ID of a live gateway in the default workspace. */
let gatewayId: string;

const dbId = (globalId: string) => Buffer.from(globalId, 'base64url').toString().split(':')[1]!;

/** Gateways have their own API; here a row is enough to connect to. */
async function insertGateway(workspaceId: string, slug: string, archived = false): Promise<string> {
  const id = randomUUID();
  await tdb.database.db
    .insertInto('gateways')
    .values({ id, workspace_id: workspaceId, name: slug, slug, ...(archived && { archived_at: new Date() }) })
    .execute();
  return encodeGlobalId('Gateway', id);
}

const ERR = `__typename ... on Error { code message } ... on ForbiddenError { capability } ... on NotFoundError { resourceType } ... on ValidationError { field } ... on ConflictError { field }`;

async function createHost(name: string, extra: Record<string, unknown> = {}, key = cp.ownerKey) {
  return ok(
    await cp.gql(
      `mutation($input: CreateHostInput!) { createHost(input: $input) { ${ERR} ... on CreateHostSuccess { host { id name kind description disabled createdAt } } } }`,
      { input: { name, ...extra } },
      key,
    ),
  ).createHost;
}

async function createConnection(input: Record<string, unknown>, key = cp.ownerKey) {
  return ok(
    await cp.gql(
      `mutation($input: CreateConnectionInput!) { createConnection(input: $input) { ${ERR}
         ... on CreateConnectionSuccess { connection { id name gatewayId disabled host { id name } user { id email } } } } }`,
      { input },
      key,
    ),
  ).createConnection;
}

async function createToken(input: Record<string, unknown>, key = cp.ownerKey) {
  return ok(
    await cp.gql(
      `mutation($input: CreateAccessTokenInput!) { createAccessToken(input: $input) { ${ERR}
         ... on CreateAccessTokenSuccess { created { secret accessToken { id name prefix createdBy createdAt expiresAt lastUsedAt revokedAt connection { id } } } } } }`,
      { input },
      key,
    ),
  ).createAccessToken;
}

async function revokeToken(id: string, key = cp.ownerKey) {
  return ok(await cp.gql(`mutation($id: ID!) { revokeAccessToken(id: $id) { ${ERR} ... on RevokeAccessTokenSuccess { accessToken { id revokedAt } } } }`, { id }, key))
    .revokeAccessToken;
}

async function tableCounts() {
  const count = (table: 'hosts' | 'connections' | 'access_tokens' | 'workspace_events') =>
    tdb.database.db.selectFrom(table).select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow().then((r) => Number(r.n));
  return { hosts: await count('hosts'), connections: await count('connections'), tokens: await count('access_tokens'), events: await count('workspace_events') };
}

async function activeUser(email: string): Promise<string> {
  const roles = await roleIds(cp);
  const invited = ok(
    await cp.gql(`mutation($e: String!, $r: ID!) { inviteUser(input: { email: $e, roleId: $r }) { ... on InviteUserSuccess { user { id } } } }`, { e: email, r: roles.Member }),
  );
  const id = invited.inviteUser.user.id;
  ok(await cp.gql(`mutation($id: ID!) { activateUser(id: $id) { __typename } }`, { id }));
  return id;
}

beforeAll(async () => {
  tdb = await createTestDatabase();
  cp = await startTestControlPlane(tdb.database);
  other = await createWorkspaceWithOwner(tdb.database, 'Other workspace');
  gatewayId = await insertGateway(cp.workspaceId, 'eng');
});
afterAll(async () => {
  await cp?.close();
  await tdb?.drop();
});

describe('hosts, connections and access tokens', () => {
  it('create a host, connect it to a gateway and mint a token shown once and stored only as a hash', async () => {
    const host = await createHost('ci-agent', { description: 'Nightly CI' });
    expect(host).toMatchObject({ __typename: 'CreateHostSuccess', host: { name: 'ci-agent', kind: 'AGENT', description: 'Nightly CI', disabled: false } });

    const userId = await activeUser('bot-owner@hosts.test');
    const connection = await createConnection({ hostId: host.host.id, gatewayId, name: 'eng', userId });
    expect(connection).toMatchObject({
      __typename: 'CreateConnectionSuccess',
      connection: { name: 'eng', gatewayId, disabled: false, host: { id: host.host.id }, user: { id: userId, email: 'bot-owner@hosts.test' } },
    });

    const token = await createToken({ connectionId: connection.connection.id, name: 'nightly' });
    expect(token.__typename).toBe('CreateAccessTokenSuccess');
    const { secret, accessToken } = token.created;
    expect(secret).toMatch(/^gh_at_[A-Za-z0-9_-]{43}$/);
    expect(secret.startsWith(accessToken.prefix)).toBe(true);
    expect(accessToken.prefix).toMatch(/^gh_at_.{6}$/);
    expect(accessToken).toMatchObject({ name: 'nightly', expiresAt: null, lastUsedAt: null, revokedAt: null, connection: { id: connection.connection.id } });
    expect(accessToken.createdBy).toMatch(/^api_key:/);

    const rows = await sql<{ row: string }>`SELECT row_to_json(t)::text AS row FROM access_tokens t`.execute(tdb.database.db);
    const dump = rows.rows.map((r) => r.row).join('\n');
    expect(dump).not.toContain(secret);
    expect(dump).not.toContain(secret.slice(accessToken.prefix.length));
    expect(dump).toContain(createHash('sha256').update(secret).digest('hex'));

    // Listings show the prefix and never the secret.
    const listed = ok(
      await cp.gql(
        `query($id: ID!) { host(id: $id) { name connections { edges { node { name tokens { edges { node { name prefix } } } } } } } hosts { edges { node { name } } } }`,
        { id: host.host.id },
      ),
    );
    expect(JSON.stringify(listed)).not.toContain(secret);
    expect(listed.host.connections.edges[0].node.tokens.edges[0].node).toEqual({ name: 'nightly', prefix: accessToken.prefix });
    expect(listed.hosts.edges.map((e: any) => e.node.name)).toContain('ci-agent');

    // The event log names the token by prefix, never by secret.
    const events = ok(await cp.gql(`{ workspaceEvents(first: 10) { edges { node { type subjectType details } } } }`)).workspaceEvents.edges.map((e: any) => e.node);
    expect(events.map((e: any) => e.type)).toEqual(expect.arrayContaining(['host.created', 'connection.created', 'access_token.created']));
    expect(JSON.stringify(events)).not.toContain(secret);
  });

  it('sets the expiry from expiresInDays and refuses lifetimes out of range', async () => {
    const host = await createHost('expiring');
    const connection = await createConnection({ hostId: host.host.id, gatewayId, name: 'c' });
    const before = Date.now();
    const token = await createToken({ connectionId: connection.connection.id, name: 'week', expiresInDays: 7 });
    const expiresAt = new Date(token.created.accessToken.expiresAt).getTime();
    expect(expiresAt).toBeGreaterThanOrEqual(before + 7 * 86_400_000 - 1000);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 7 * 86_400_000 + 1000);

    for (const days of [0, -1, 3651]) {
      const bad = await createToken({ connectionId: connection.connection.id, name: 'bad', expiresInDays: days });
      expect(bad).toMatchObject({ __typename: 'ValidationError', field: 'input.expiresInDays' });
    }
  });

  it('revokes a token once; a second revoke is a conflict', async () => {
    const host = await createHost('revoker');
    const connection = await createConnection({ hostId: host.host.id, gatewayId, name: 'c' });
    const { accessToken } = (await createToken({ connectionId: connection.connection.id, name: 'short' })).created;

    const revoked = await revokeToken(accessToken.id);
    expect(revoked.__typename).toBe('RevokeAccessTokenSuccess');
    expect(revoked.accessToken.revokedAt).toBeTruthy();
    expect(await revokeToken(accessToken.id)).toMatchObject({ __typename: 'ConflictError', code: 'CONFLICT' });
    expect(await revokeToken(encodeGlobalId('AccessToken', randomUUID()))).toMatchObject({ __typename: 'NotFoundError', resourceType: 'AccessToken' });

    const tokensOf = async (includeRevoked: boolean) =>
      ok(await cp.gql(`query($id: ID!, $r: Boolean) { node(id: $id) { ... on Connection { tokens(includeRevoked: $r) { edges { node { id revokedAt } } } } } }`, { id: connection.connection.id, r: includeRevoked }))
        .node.tokens.edges.map((e: any) => e.node);
    expect(await tokensOf(false)).toEqual([]);
    expect(await tokensOf(true)).toEqual([{ id: accessToken.id, revokedAt: revoked.accessToken.revokedAt }]);

    const events = ok(await cp.gql(`{ workspaceEvents(first: 1) { edges { node { type subjectId } } } }`)).workspaceEvents.edges;
    expect(events[0].node).toEqual({ type: 'access_token.revoked', subjectId: dbId(accessToken.id) });
  });

  it('updates, and refuses a duplicate host name', async () => {
    const host = await createHost('renamable');
    const updated = ok(
      await cp.gql(`mutation($id: ID!) { updateHost(id: $id, input: { name: "renamed", description: "d" }) { ${ERR} ... on UpdateHostSuccess { host { name description kind } } } }`, {
        id: host.host.id,
      }),
    ).updateHost;
    expect(updated).toMatchObject({ host: { name: 'renamed', description: 'd', kind: 'AGENT' } });
    expect(await createHost('RENAMED')).toMatchObject({ __typename: 'ConflictError', field: 'input.name' });
    expect(await createHost('an-app', { kind: 'APP' })).toMatchObject({ host: { kind: 'APP' } });
    expect(await createHost('   ')).toMatchObject({ __typename: 'ValidationError', field: 'input.name' });
  });

  it('deletes a connection and a host with everything under them', async () => {
    const host = await createHost('doomed');
    const c1 = await createConnection({ hostId: host.host.id, gatewayId, name: 'one' });
    const c2 = await createConnection({ hostId: host.host.id, gatewayId, name: 'two' });
    await createToken({ connectionId: c1.connection.id, name: 't1' });
    await createToken({ connectionId: c2.connection.id, name: 't2' });

    const deletedConnection = ok(await cp.gql(`mutation($id: ID!) { deleteConnection(id: $id) { ${ERR} ... on DeleteConnectionSuccess { deletedConnectionId } } }`, { id: c1.connection.id }));
    expect(deletedConnection.deleteConnection.deletedConnectionId).toBe(c1.connection.id);
    expect(await tdb.database.db.selectFrom('access_tokens').select('id').where('connection_id', '=', dbId(c1.connection.id)).execute()).toEqual([]);

    const deletedHost = ok(await cp.gql(`mutation($id: ID!) { deleteHost(id: $id) { ${ERR} ... on DeleteHostSuccess { deletedHostId } } }`, { id: host.host.id }));
    expect(deletedHost.deleteHost.deletedHostId).toBe(host.host.id);
    expect(await tdb.database.db.selectFrom('connections').select('id').where('host_id', '=', dbId(host.host.id)).execute()).toEqual([]);
    expect(ok(await cp.gql(`query($id: ID!) { node(id: $id) { id } }`, { id: c2.connection.id })).node).toBeNull();

    const events = ok(await cp.gql(`{ workspaceEvents(first: 2) { edges { node { type details } } } }`)).workspaceEvents.edges.map((e: any) => e.node);
    expect(events[0]).toMatchObject({ type: 'host.deleted', details: { name: 'doomed', connectionIds: [dbId(c2.connection.id)] } });
    expect(events[1]).toMatchObject({ type: 'connection.deleted' });
  });

  it('exposes hosts, connections and tokens for the snapshot compiler, by hash only', async () => {
    const host = await createHost('snapshot-source');
    const connection = await createConnection({ hostId: host.host.id, gatewayId, name: 'c' });
    const live = (await createToken({ connectionId: connection.connection.id, name: 'live', expiresInDays: 1 })).created;
    const dead = (await createToken({ connectionId: connection.connection.id, name: 'dead' })).created;
    await revokeToken(dead.accessToken.id);

    const rows = await cp.app.services.hosts.accessSnapshotRows(cp.workspaceId);
    expect(rows.hosts).toContainEqual({ id: dbId(host.host.id), name: 'snapshot-source', kind: 'agent', disabled: false });
    expect(rows.connections).toContainEqual({
      id: dbId(connection.connection.id),
      host_id: dbId(host.host.id),
      gateway_id: dbId(gatewayId),
      user_id: null,
      name: 'c',
      disabled: false,
    });
    const tokenIds = rows.accessTokens.map((t) => t.id);
    expect(tokenIds).toContain(dbId(live.accessToken.id));
    expect(tokenIds).not.toContain(dbId(dead.accessToken.id));
    const token = rows.accessTokens.find((t) => t.id === dbId(live.accessToken.id))!;
    expect(Object.keys(token).sort()).toEqual(['connection_id', 'expires_at', 'id', 'token_hash']);
    expect(token.token_hash).toBe(createHash('sha256').update(live.secret).digest('hex'));
    expect(JSON.stringify(rows)).not.toContain(live.secret);

    const otherRows = await cp.app.services.hosts.accessSnapshotRows(other.workspaceId);
    expect(otherRows).toEqual({ hosts: [], connections: [], accessTokens: [] });
  });
});

describe('connections are refused, writing nothing', () => {
  it('to an archived gateway, a gateway of another workspace, or an unknown host', async () => {
    const host = await createHost('picky');
    const archived = await insertGateway(cp.workspaceId, 'old', true);
    const foreign = await insertGateway(other.workspaceId, 'theirs');
    const before = await tableCounts();

    expect(await createConnection({ hostId: host.host.id, gatewayId: archived, name: 'x' })).toMatchObject({
      __typename: 'ConflictError',
      field: 'input.gatewayId',
      message: expect.stringContaining('archived'),
    });
    expect(await createConnection({ hostId: host.host.id, gatewayId: foreign, name: 'x' })).toMatchObject({ __typename: 'NotFoundError', resourceType: 'Gateway' });
    expect(await createConnection({ hostId: encodeGlobalId('Host', randomUUID()), gatewayId, name: 'x' })).toMatchObject({
      __typename: 'NotFoundError',
      resourceType: 'Host',
    });
    expect(await tableCounts()).toEqual(before);
  });

  it('for a deactivated, invited or unknown user', async () => {
    const host = await createHost('for-people');
    const deactivated = await activeUser('gone@hosts.test');
    ok(await cp.gql(`mutation($id: ID!) { deactivateUser(id: $id) { __typename } }`, { id: deactivated }));
    const roles = await roleIds(cp);
    const invited = ok(
      await cp.gql(`mutation($r: ID!) { inviteUser(input: { email: "pending@hosts.test", roleId: $r }) { ... on InviteUserSuccess { user { id } } } }`, { r: roles.Member }),
    ).inviteUser.user.id;
    const before = await tableCounts();

    expect(await createConnection({ hostId: host.host.id, gatewayId, name: 'x', userId: deactivated })).toMatchObject({
      __typename: 'ConflictError',
      field: 'input.userId',
      message: expect.stringContaining('deactivated'),
    });
    expect(await createConnection({ hostId: host.host.id, gatewayId, name: 'x', userId: invited })).toMatchObject({ __typename: 'ConflictError', field: 'input.userId' });
    expect(await createConnection({ hostId: host.host.id, gatewayId, name: 'x', userId: encodeGlobalId('User', randomUUID()) })).toMatchObject({
      __typename: 'NotFoundError',
      resourceType: 'User',
    });
    expect(await tableCounts()).toEqual(before);
  });
});

describe('malformed IDs', () => {
  it('are validation errors naming the field', async () => {
    const host = await createHost('ids');
    const cases: [Record<string, unknown>, string][] = [
      [{ hostId: 'nope', gatewayId, name: 'x' }, 'input.hostId'],
      [{ hostId: host.host.id, gatewayId: host.host.id, name: 'x' }, 'input.gatewayId'],
      [{ hostId: host.host.id, gatewayId, name: 'x', userId: gatewayId }, 'input.userId'],
    ];
    for (const [input, field] of cases) expect(await createConnection(input)).toMatchObject({ __typename: 'ValidationError', field });
    expect(await createToken({ connectionId: host.host.id, name: 'x' })).toMatchObject({ __typename: 'ValidationError', field: 'input.connectionId' });
    expect(await revokeToken('%%%')).toMatchObject({ __typename: 'ValidationError', field: 'id' });
    const setDisabled = ok(await cp.gql(`mutation { setConnectionDisabled(id: "abc", disabled: true) { ${ERR} } }`)).setConnectionDisabled;
    expect(setDisabled).toMatchObject({ __typename: 'ValidationError', field: 'id' });

    const query = await cp.gql(`{ host(id: "not-an-id") { id } }`);
    expect(query.errors?.[0]?.extensions).toMatchObject({ code: 'VALIDATION' });
  });
});

describe('capabilities', () => {
  let memberKey: string;
  let auditorKey: string;
  let host: any;
  let connection: any;
  let token: any;

  beforeAll(async () => {
    memberKey = await keyWithRole(cp, 'Member');
    auditorKey = await keyWithRole(cp, 'Read-only auditor');
    host = (await createHost('guarded')).host;
    connection = (await createConnection({ hostId: host.id, gatewayId, name: 'c' })).connection;
    token = (await createToken({ connectionId: connection.id, name: 't' })).created.accessToken;
  });

  /** Every mutation of this area and the capability it needs. */
  const probes = (): [string, string, Record<string, unknown>, string][] => [
    ['createHost', '(input: { name: "probe" })', {}, 'hosts.manage'],
    ['updateHost', '(id: $id, input: { name: "probe" })', { id: host.id }, 'hosts.manage'],
    ['deleteHost', '(id: $id)', { id: host.id }, 'hosts.manage'],
    ['createConnection', '(input: { hostId: $id, gatewayId: $g, name: "probe" })', { id: host.id, g: gatewayId }, 'hosts.manage'],
    ['deleteConnection', '(id: $id)', { id: connection.id }, 'hosts.manage'],
    ['createAccessToken', '(input: { connectionId: $id, name: "probe" })', { id: connection.id }, 'hosts.manage'],
    ['revokeAccessToken', '(id: $id)', { id: token.id }, 'hosts.manage'],
    ['setHostDisabled', '(id: $id, disabled: true)', { id: host.id }, 'hosts.disable'],
    ['setConnectionDisabled', '(id: $id, disabled: true)', { id: connection.id }, 'hosts.disable'],
    ['setWorkspaceDisabled', '(disabled: true)', {}, 'workspace.manage_settings'],
  ];

  async function expectRefusedEverything(key: string) {
    const before = await tableCounts();
    for (const [field, args, variables, capability] of probes()) {
      const params = Object.keys(variables).map((v) => `$${v}: ID!`).join(', ');
      const res = ok(await cp.gql(`mutation${params ? `(${params})` : ''} { ${field}${args} { ${ERR} } }`, variables, key));
      expect(res[field], field).toMatchObject({ __typename: 'ForbiddenError', code: 'FORBIDDEN', capability });
      expect(res[field].message).toContain(capability);
    }
    expect(await tableCounts()).toEqual(before);
    const state = ok(
      await cp.gql(`query($id: ID!) { workspace { disabled } host(id: $id) { name disabled connections { edges { node { disabled tokens { edges { node { revokedAt } } } } } } } }`, { id: host.id }),
    );
    expect(state).toEqual({
      workspace: { disabled: false },
      host: { name: 'guarded', disabled: false, connections: { edges: [{ node: { disabled: false, tokens: { edges: [{ node: { revokedAt: null } }] } } }] } },
    });
  }

  it('a member can neither read nor change hosts', async () => {
    const read = await cp.gql(`{ hosts { edges { node { id } } } }`, {}, memberKey);
    expect(read.data).toBeNull();
    expect(read.errors?.[0]?.extensions).toMatchObject({ code: 'FORBIDDEN', capability: 'hosts.view' });
    await expectRefusedEverything(memberKey);
  });

  it('an auditor reads hosts, connections and token metadata but changes nothing', async () => {
    const read = ok(
      await cp.gql(
        `query($id: ID!) { host(id: $id) { name connections { edges { node { name gatewayId user { id } tokens { edges { node { name prefix } } } } } } } }`,
        { id: host.id },
        auditorKey,
      ),
    );
    expect(read.host.connections.edges[0].node).toEqual({ name: 'c', gatewayId, user: null, tokens: { edges: [{ node: { name: 't', prefix: token.prefix } }] } });
    await expectRefusedEverything(auditorKey);
  });
});

describe('workspace isolation', () => {
  it("another workspace's owner sees none of these hosts and cannot touch them", async () => {
    const host = (await createHost('private')).host;
    const connection = (await createConnection({ hostId: host.id, gatewayId, name: 'c' })).connection;
    const token = (await createToken({ connectionId: connection.id, name: 't' })).created.accessToken;

    const list = ok(await cp.gql(`{ hosts { edges { node { id } } } }`, {}, other.ownerKey));
    expect(list.hosts.edges).toEqual([]);
    for (const id of [host.id, connection.id, token.id]) {
      expect(ok(await cp.gql(`query($id: ID!) { node(id: $id) { id } }`, { id }, other.ownerKey)).node).toBeNull();
    }
    const byId = await cp.gql(`query($id: ID!) { host(id: $id) { id } }`, { id: host.id }, other.ownerKey);
    expect(byId.errors?.[0]?.extensions).toMatchObject({ code: 'NOT_FOUND' });

    const before = await tableCounts();
    const attempts = ok(
      await cp.gql(
        `mutation($h: ID!, $c: ID!, $t: ID!) {
          setHostDisabled(id: $h, disabled: true) { ${ERR} }
          setConnectionDisabled(id: $c, disabled: true) { ${ERR} }
          revokeAccessToken(id: $t) { ${ERR} }
          createAccessToken(input: { connectionId: $c, name: "steal" }) { ${ERR} }
          deleteHost(id: $h) { ${ERR} }
        }`,
        { h: host.id, c: connection.id, t: token.id },
        other.ownerKey,
      ),
    );
    for (const result of Object.values(attempts)) expect(result).toMatchObject({ __typename: 'NotFoundError' });
    expect(await tableCounts()).toEqual(before);

    // And a host in the other workspace cannot be connected to this workspace's gateway.
    const theirs = (await createHost('theirs', {}, other.ownerKey)).host;
    expect(await createConnection({ hostId: theirs.id, gatewayId, name: 'x' }, other.ownerKey)).toMatchObject({ __typename: 'NotFoundError', resourceType: 'Gateway' });
  });
});
