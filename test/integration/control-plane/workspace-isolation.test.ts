import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { createWorkspaceWithOwner, ok, roleIds, startTestControlPlane, type TestControlPlane } from '../../helpers/control-plane.js';

let tdb: TestDatabase;
let cp: TestControlPlane;
let keyB: string;
const a: Record<string, string> = {};

beforeAll(async () => {
  tdb = await createTestDatabase();
  cp = await startTestControlPlane(tdb.database);
  keyB = (await createWorkspaceWithOwner(tdb.database, 'Workspace B')).ownerKey;
  // Workspace A: a role, a team, a user in it, a key.
  const role = ok(await cp.gql(`mutation { createRole(input: { name: "A role", capabilities: ["servers.view"] }) { ... on CreateRoleSuccess { role { id } } } }`));
  a.role = role.createRole.role.id;
  const team = ok(await cp.gql(`mutation { createTeam(input: { name: "A team" }) { ... on CreateTeamSuccess { team { id } } } }`));
  a.team = team.createTeam.team.id;
  const user = ok(
    await cp.gql(`mutation($r: ID!, $t: [ID!]) { inviteUser(input: { email: "a@a.test", roleId: $r, teamIds: $t }) { ... on InviteUserSuccess { user { id } } } }`, { r: a.role, t: [a.team] }),
  );
  a.user = user.inviteUser.user.id;
  const key = ok(await cp.gql(`mutation($r: ID!) { createApiKey(input: { name: "A key", roleId: $r }) { ... on CreateApiKeySuccess { created { apiKey { id } } } } }`, { r: a.role }));
  a.key = key.createApiKey.created.apiKey.id;
});
afterAll(async () => {
  await cp?.close();
  await tdb?.drop();
});

describe("workspace B's owner key sees nothing of workspace A", () => {
  it('in lists', async () => {
    const res = ok(
      await cp.gql(
        `{ users { edges { node { email } } } teams { edges { node { name } } } apiKeys { edges { node { name } } }
           roles(first: 100) { edges { node { name } } } workspace { name } workspaceEvents(first: 100) { edges { node { type subjectId } } } }`,
        {},
        keyB,
      ),
    );
    expect(res.workspace.name).toBe('Workspace B');
    expect(res.users.edges).toEqual([]);
    expect(res.teams.edges).toEqual([]);
    expect(res.apiKeys.edges.map((e: any) => e.node.name)).toEqual(['owner']);
    expect(res.roles.edges.map((e: any) => e.node.name)).not.toContain('A role');
    const subjects = res.workspaceEvents.edges.map((e: any) => e.node.subjectId);
    for (const id of Object.values(a)) expect(subjects).not.toContain(Buffer.from(id, 'base64url').toString().split(':')[1]);
  });

  it('by id, through the typed fields and through node()', async () => {
    for (const [field, id] of [['user', a.user], ['team', a.team], ['role', a.role]] as const) {
      const res = await cp.gql(`query($id: ID!) { ${field}(id: $id) { id } }`, { id }, keyB);
      expect(res.data[field]).toBeNull();
      expect(res.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    }
    for (const id of Object.values(a)) {
      const res = await cp.gql(`query($id: ID!) { node(id: $id) { id } }`, { id }, keyB);
      expect(res.data?.node ?? null).toBeNull();
    }
  });

  it('and cannot change it: every mutation on A’s ids is NOT_FOUND and A is unchanged', async () => {
    const attempts: [string, Record<string, unknown>][] = [
      [`mutation($id: ID!) { deactivateUser(id: $id) { __typename } }`, { id: a.user }],
      [`mutation($id: ID!) { updateTeam(id: $id, input: { name: "pwned" }) { __typename } }`, { id: a.team }],
      [`mutation($id: ID!) { deleteTeam(id: $id) { __typename } }`, { id: a.team }],
      [`mutation($id: ID!) { updateRole(id: $id, input: { name: "pwned" }) { __typename } }`, { id: a.role }],
      [`mutation($id: ID!) { deleteRole(id: $id) { __typename } }`, { id: a.role }],
      [`mutation($id: ID!) { revokeApiKey(id: $id) { __typename } }`, { id: a.key }],
      [`mutation($id: ID!) { inviteUser(input: { email: "x@b.test", roleId: $id }) { __typename } }`, { id: a.role }],
      [`mutation($id: ID!) { duplicateRole(id: $id) { __typename } }`, { id: a.role }],
    ];
    for (const [query, variables] of attempts) {
      const res = ok(await cp.gql(query, variables, keyB));
      expect(Object.values(res)[0]).toEqual({ __typename: 'NotFoundError' });
    }
    // B cannot pull A's user into its own team either.
    const bTeam = ok(await cp.gql(`mutation { createTeam(input: { name: "B team" }) { ... on CreateTeamSuccess { team { id } } } }`, {}, keyB)).createTeam.team.id;
    const pulled = ok(await cp.gql(`mutation($t: ID!, $u: [ID!]!) { addTeamMembers(teamId: $t, userIds: $u) { __typename } }`, { t: bTeam, u: [a.user] }, keyB));
    expect(pulled.addTeamMembers.__typename).toBe('NotFoundError');

    const after = ok(await cp.gql(`query($u: ID!, $t: ID!) { user(id: $u) { state } team(id: $t) { name } }`, { u: a.user, t: a.team }));
    expect(after).toEqual({ user: { state: 'INVITED' }, team: { name: 'A team' } });
    expect(Object.keys(await roleIds(cp))).toContain('A role');
  });
});
