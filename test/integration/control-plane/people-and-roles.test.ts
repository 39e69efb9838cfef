import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { ok, roleIds, startTestControlPlane, type TestControlPlane } from '../../helpers/control-plane.js';

let tdb: TestDatabase;
let cp: TestControlPlane;

beforeAll(async () => {
  tdb = await createTestDatabase();
  cp = await startTestControlPlane(tdb.database);
});
afterAll(async () => {
  await cp?.close();
  await tdb?.drop();
});

const ROLE_FIELDS = `id name builtin description capabilities { name area } userCount`;
const PAYLOAD_ERRORS = `... on Error { __typename code message } ... on ValidationError { field } ... on ForbiddenError { capability } ... on ConflictError { field } ... on NotFoundError { resourceType id }`;
const DELETE_ROLE_ERRORS = `${PAYLOAD_ERRORS} ... on RoleInUseError { userCount apiKeyCount }`;

async function createRole(name: string, capabilities: string[]) {
  const res = ok(
    await cp.gql(
      `mutation($input: CreateRoleInput!) { createRole(input: $input) { __typename ... on CreateRoleSuccess { role { ${ROLE_FIELDS} } } ${PAYLOAD_ERRORS} } }`,
      { input: { name, capabilities } },
    ),
  );
  return res.createRole;
}

async function createTeam(name: string) {
  const res = ok(
    await cp.gql(
      `mutation($input: CreateTeamInput!) { createTeam(input: $input) { __typename ... on CreateTeamSuccess { team { id name disabled } } ${PAYLOAD_ERRORS} } }`,
      { input: { name } },
    ),
  );
  return res.createTeam;
}

async function invite(email: string, roleId: string, teamIds: string[] = []) {
  const res = ok(
    await cp.gql(
      `mutation($input: InviteUserInput!) { inviteUser(input: $input) { __typename ... on InviteUserSuccess { user { id email state role { name } teams { edges { node { name } } } } } ${PAYLOAD_ERRORS} } }`,
      { input: { email, roleId, teamIds } },
    ),
  );
  return res.inviteUser;
}

async function lifecycle(action: 'activateUser' | 'deactivateUser' | 'reactivateUser', id: string) {
  const res = ok(
    await cp.gql(
      `mutation($id: ID!) { ${action}(id: $id) { __typename ... on ${action[0]!.toUpperCase()}${action.slice(1)}Success { user { id state activatedAt deactivatedAt } } ${PAYLOAD_ERRORS} } }`,
      { id },
    ),
  );
  return res[action];
}

describe('capability catalog', () => {
  it('lists every capability with a stable name, area and description, covering every area', async () => {
    const data = ok(await cp.gql(`{ capabilities { name area description readOnly } }`));
    const areas = new Set(data.capabilities.map((c: any) => c.area));
    expect([...areas].sort()).toEqual(
      ['ALERTING', 'GATEWAYS', 'HOSTS', 'IDENTITIES', 'INTEGRATIONS', 'LOGGING', 'PEOPLE', 'REPORTING', 'SERVERS', 'WORKSPACE_SETTINGS'],
    );
    const names = data.capabilities.map((c: any) => c.name);
    expect(names).toContain('logging.view_bodies');
    expect(names).toContain('logging.view');
    expect(new Set(names).size).toBe(names.length);
    for (const c of data.capabilities) expect(c.description.length).toBeGreaterThan(10);
    const logging = ok(await cp.gql(`{ capabilities(area: LOGGING) { name } }`));
    expect(logging.capabilities.map((c: any) => c.name).sort()).toEqual(['logging.export', 'logging.view', 'logging.view_bodies']);
  });
});

describe('roles', () => {
  it('ships the built-in owner, admin, member and auditor roles', async () => {
    const data = ok(await cp.gql(`{ roles { edges { node { name builtin capabilities { name } } } } }`));
    const builtins = Object.fromEntries(
      data.roles.edges.filter((e: any) => e.node.builtin).map((e: any) => [e.node.builtin, e.node.capabilities.map((c: any) => c.name)]),
    );
    expect(Object.keys(builtins).sort()).toEqual(['ADMIN', 'AUDITOR', 'MEMBER', 'OWNER']);
    expect(builtins.OWNER).toContain('workspace.manage_settings');
    expect(builtins.ADMIN).not.toContain('workspace.manage_settings');
    expect(builtins.AUDITOR).toEqual(expect.arrayContaining(['logging.view', 'reporting.view', 'alerting.view']));
    expect(builtins.AUDITOR.some((c: string) => /manage|disable/.test(c))).toBe(false);
  });

  it('creates a custom role from capabilities, edits, renames and duplicates it', async () => {
    const created = await createRole('Gateway operators', ['gateways.view', 'gateways.manage', 'servers.view']);
    expect(created.__typename).toBe('CreateRoleSuccess');
    expect(created.role.builtin).toBeNull();
    expect(created.role.capabilities.map((c: any) => c.name)).toEqual(['gateways.manage', 'gateways.view', 'servers.view']);

    const updated = ok(
      await cp.gql(
        `mutation($id: ID!, $input: UpdateRoleInput!) { updateRole(id: $id, input: $input) { __typename ... on UpdateRoleSuccess { role { ${ROLE_FIELDS} } } ${PAYLOAD_ERRORS} } }`,
        { id: created.role.id, input: { name: 'Gateway admins', capabilities: ['gateways.view', 'gateways.manage_provisioning'] } },
      ),
    ).updateRole;
    expect(updated.role.name).toBe('Gateway admins');
    expect(updated.role.capabilities.map((c: any) => c.name)).toEqual(['gateways.manage_provisioning', 'gateways.view']);

    const dup = ok(
      await cp.gql(
        `mutation($id: ID!) { duplicateRole(id: $id) { __typename ... on DuplicateRoleSuccess { role { ${ROLE_FIELDS} } } ${PAYLOAD_ERRORS} } }`,
        { id: created.role.id },
      ),
    ).duplicateRole;
    expect(dup.role.name).toBe('Gateway admins (copy)');
    expect(dup.role.id).not.toBe(created.role.id);
    expect(dup.role.capabilities).toEqual(updated.role.capabilities);
  });

  it('rejects unknown capability names, naming them and the field, and writes nothing', async () => {
    const res = await createRole('Bogus', ['servers.view', 'servers.fly', 'nope']);
    expect(res).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION', field: 'input.capabilities' });
    expect(res.message).toContain('servers.fly');
    expect(res.message).toContain('nope');
    expect(Object.keys(await roleIds(cp))).not.toContain('Bogus');
  });

  it('rejects duplicate names case-insensitively and empty names', async () => {
    expect((await createRole('Readers', ['people.view'])).__typename).toBe('CreateRoleSuccess');
    expect(await createRole('READERS', [])).toMatchObject({ __typename: 'ConflictError', field: 'input.name' });
    expect(await createRole('   ', [])).toMatchObject({ __typename: 'ValidationError', field: 'input.name' });
  });

  it('refuses to edit or delete built-in roles', async () => {
    const roles = await roleIds(cp);
    const edit = ok(
      await cp.gql(`mutation($id: ID!) { updateRole(id: $id, input: { name: "Boss" }) { __typename ${PAYLOAD_ERRORS} } }`, { id: roles.Owner }),
    ).updateRole;
    expect(edit.__typename).toBe('ConflictError');
    const del = ok(await cp.gql(`mutation($id: ID!) { deleteRole(id: $id) { __typename ${DELETE_ROLE_ERRORS} } }`, { id: roles.Member })).deleteRole;
    expect(del.__typename).toBe('ConflictError');
  });

  it('refuses to delete an assigned role with a typed RoleInUseError, and deletes it once unassigned', async () => {
    const role = (await createRole('Temporary', ['servers.view'])).role;
    const user = (await invite('temp@example.com', role.id)).user;
    const refused = ok(await cp.gql(`mutation($id: ID!) { deleteRole(id: $id) { __typename ${DELETE_ROLE_ERRORS} } }`, { id: role.id })).deleteRole;
    expect(refused).toMatchObject({ __typename: 'RoleInUseError', code: 'CONFLICT', userCount: 1, apiKeyCount: 0 });

    const roles = await roleIds(cp);
    ok(await cp.gql(`mutation($id: ID!, $r: ID!) { changeUserRole(id: $id, roleId: $r) { __typename } }`, { id: user.id, r: roles.Member }));
    const deleted = ok(
      await cp.gql(`mutation($id: ID!) { deleteRole(id: $id) { __typename ... on DeleteRoleSuccess { deletedRoleId } ${DELETE_ROLE_ERRORS} } }`, { id: role.id }),
    ).deleteRole;
    expect(deleted).toEqual({ __typename: 'DeleteRoleSuccess', deletedRoleId: role.id });
    const gone = await cp.gql(`query($id: ID!) { role(id: $id) { name } }`, { id: role.id });
    expect(gone.data.role).toBeNull();
    expect(gone.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});

describe('teams', () => {
  it('creates, renames, disables, re-enables and deletes a team', async () => {
    const team = (await createTeam('Platform')).team;
    expect(team).toMatchObject({ name: 'Platform', disabled: false });
    const renamed = ok(
      await cp.gql(`mutation($id: ID!) { updateTeam(id: $id, input: { name: "Platform Eng", description: "infra" }) { ... on UpdateTeamSuccess { team { name description } } } }`, { id: team.id }),
    ).updateTeam;
    expect(renamed.team).toEqual({ name: 'Platform Eng', description: 'infra' });
    const disabled = ok(await cp.gql(`mutation($id: ID!) { setTeamDisabled(id: $id, disabled: true) { ... on SetTeamDisabledSuccess { team { disabled } } } }`, { id: team.id }));
    expect(disabled.setTeamDisabled.team.disabled).toBe(true);
    const enabled = ok(await cp.gql(`mutation($id: ID!) { setTeamDisabled(id: $id, disabled: false) { ... on SetTeamDisabledSuccess { team { disabled } } } }`, { id: team.id }));
    expect(enabled.setTeamDisabled.team.disabled).toBe(false);
    expect((await createTeam('platform eng')).__typename).toBe('ConflictError');
    const del = ok(await cp.gql(`mutation($id: ID!) { deleteTeam(id: $id) { __typename ... on DeleteTeamSuccess { deletedTeamId } } }`, { id: team.id }));
    expect(del.deleteTeam.deletedTeamId).toBe(team.id);
    const after = await cp.gql(`query($id: ID!) { team(id: $id) { name } }`, { id: team.id });
    expect(after.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });

  it('adds and removes members; a user belongs to many teams', async () => {
    const roles = await roleIds(cp);
    const a = (await createTeam('Data')).team;
    const b = (await createTeam('Security')).team;
    const user = (await invite('multi@example.com', roles.Member!, [a.id])).user;
    expect(user.teams.edges.map((e: any) => e.node.name)).toEqual(['Data']);
    ok(await cp.gql(`mutation($t: ID!, $u: [ID!]!) { addTeamMembers(teamId: $t, userIds: $u) { __typename } }`, { t: b.id, u: [user.id] }));
    // Adding twice is idempotent.
    ok(await cp.gql(`mutation($t: ID!, $u: [ID!]!) { addTeamMembers(teamId: $t, userIds: $u) { __typename } }`, { t: b.id, u: [user.id] }));
    let read = ok(await cp.gql(`query($id: ID!) { user(id: $id) { teams { edges { node { name members { edges { node { email } } } } } } } }`, { id: user.id }));
    expect(read.user.teams.edges.map((e: any) => e.node.name)).toEqual(['Data', 'Security']);
    expect(read.user.teams.edges[1].node.members.edges.map((e: any) => e.node.email)).toEqual(['multi@example.com']);
    ok(await cp.gql(`mutation($t: ID!, $u: [ID!]!) { removeTeamMembers(teamId: $t, userIds: $u) { __typename } }`, { t: a.id, u: [user.id] }));
    read = ok(await cp.gql(`query($id: ID!) { user(id: $id) { teams { edges { node { name } } } } }`, { id: user.id }));
    expect(read.user.teams.edges.map((e: any) => e.node.name)).toEqual(['Security']);
  });

  it('rejects unknown user ids without adding anyone', async () => {
    const roles = await roleIds(cp);
    const team = (await createTeam('Partial')).team;
    const user = (await invite('partial@example.com', roles.Member!)).user;
    const missing = Buffer.from('User:00000000-0000-4000-8000-000000000000').toString('base64url');
    const res = ok(
      await cp.gql(`mutation($t: ID!, $u: [ID!]!) { addTeamMembers(teamId: $t, userIds: $u) { __typename ${PAYLOAD_ERRORS} } }`, { t: team.id, u: [user.id, missing] }),
    ).addTeamMembers;
    expect(res).toMatchObject({ __typename: 'NotFoundError', resourceType: 'User', id: missing });
    const members = ok(await cp.gql(`query($id: ID!) { team(id: $id) { members { edges { node { id } } } } }`, { id: team.id }));
    expect(members.team.members.edges).toEqual([]);
  });
});

describe('users', () => {
  it('moves through invited → active → deactivated → active', async () => {
    const roles = await roleIds(cp);
    const user = (await invite('Ada@Example.com', roles.Member!)).user;
    expect(user).toMatchObject({ email: 'ada@example.com', state: 'INVITED', role: { name: 'Member' } });
    const active = await lifecycle('activateUser', user.id);
    expect(active.user.state).toBe('ACTIVE');
    expect(active.user.activatedAt).toBeTruthy();
    expect((await lifecycle('activateUser', user.id)).__typename).toBe('ConflictError');
    const off = await lifecycle('deactivateUser', user.id);
    expect(off.user.state).toBe('DEACTIVATED');
    expect(off.user.deactivatedAt).toBeTruthy();
    expect((await lifecycle('deactivateUser', user.id)).__typename).toBe('ConflictError');
    const back = await lifecycle('reactivateUser', user.id);
    expect(back.user).toMatchObject({ state: 'ACTIVE', deactivatedAt: null });
  });

  it('refuses to act on a deactivated user with a typed error', async () => {
    const roles = await roleIds(cp);
    const team = (await createTeam('Deactivation')).team;
    const user = (await invite('gone@example.com', roles.Member!)).user;
    await lifecycle('deactivateUser', user.id);
    const role = ok(await cp.gql(`mutation($id: ID!, $r: ID!) { changeUserRole(id: $id, roleId: $r) { __typename ${PAYLOAD_ERRORS} } }`, { id: user.id, r: roles.Admin })).changeUserRole;
    expect(role).toMatchObject({ __typename: 'ConflictError' });
    expect(role.message).toContain('deactivated');
    const add = ok(await cp.gql(`mutation($t: ID!, $u: [ID!]!) { addTeamMembers(teamId: $t, userIds: $u) { __typename ${PAYLOAD_ERRORS} } }`, { t: team.id, u: [user.id] })).addTeamMembers;
    expect(add.__typename).toBe('ConflictError');
    const rename = ok(await cp.gql(`mutation($id: ID!) { updateUser(id: $id, input: { name: "X" }) { __typename } }`, { id: user.id })).updateUser;
    expect(rename.__typename).toBe('ConflictError');
  });

  it('keeps emails unique within the workspace, case-insensitively', async () => {
    const roles = await roleIds(cp);
    expect((await invite('dup@example.com', roles.Member!)).__typename).toBe('InviteUserSuccess');
    expect(await invite('DUP@example.com', roles.Member!)).toMatchObject({ __typename: 'ConflictError', field: 'input.email' });
    expect(await invite('not-an-email', roles.Member!)).toMatchObject({ __typename: 'ValidationError', field: 'input.email' });
  });

  it('rolls back an invite whose team does not exist: no partial write', async () => {
    const roles = await roleIds(cp);
    const ghostTeam = Buffer.from('Team:00000000-0000-4000-8000-000000000001').toString('base64url');
    const res = await invite('atomic@example.com', roles.Member!, [ghostTeam]);
    expect(res).toMatchObject({ __typename: 'NotFoundError', resourceType: 'Team' });
    const search = ok(await cp.gql(`{ users(filter: { search: "atomic@" }) { edges { node { id } } } }`));
    expect(search.users.edges).toEqual([]);
  });

  it('filters and paginates users with cursors', async () => {
    const roles = await roleIds(cp);
    for (let i = 0; i < 5; i++) await invite(`page${i}@paging.test`, roles.Member!);
    const first = ok(await cp.gql(`{ users(first: 2, filter: { search: "@paging.test" }) { edges { cursor node { email } } pageInfo { hasNextPage endCursor } } }`));
    expect(first.users.edges.map((e: any) => e.node.email)).toEqual(['page0@paging.test', 'page1@paging.test']);
    expect(first.users.pageInfo.hasNextPage).toBe(true);
    const next = ok(
      await cp.gql(`query($after: String) { users(first: 10, after: $after, filter: { search: "@paging.test" }) { edges { node { email } } pageInfo { hasNextPage } } }`, {
        after: first.users.pageInfo.endCursor,
      }),
    );
    expect(next.users.edges.map((e: any) => e.node.email)).toEqual(['page2@paging.test', 'page3@paging.test', 'page4@paging.test']);
    expect(next.users.pageInfo.hasNextPage).toBe(false);
    const invited = ok(await cp.gql(`{ users(first: 100, filter: { state: INVITED, search: "paging" }) { edges { node { state } } } }`));
    expect(invited.users.edges.every((e: any) => e.node.state === 'INVITED')).toBe(true);
  });
});
