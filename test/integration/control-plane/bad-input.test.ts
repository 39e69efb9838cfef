import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { ok, startTestControlPlane, type TestControlPlane } from '../../helpers/control-plane.js';

let tdb: TestDatabase;
let cp: TestControlPlane;

beforeAll(async () => {
  tdb = await createTestDatabase();
  cp = await startTestControlPlane(tdb.database, { GATEHOUSE_MAX_QUERY_DEPTH: '8', GATEHOUSE_MAX_QUERY_COST: '5000' });
});
afterAll(async () => {
  await cp?.close();
  await tdb?.drop();
});

describe('operation limits', () => {
  it('refuses a query deeper than the limit before executing it', async () => {
    const deep = `{ users { edges { node { teams { edges { node { members { edges { node { email } } } } } } } } } }`;
    const res = await cp.gql(deep);
    expect(res.status).toBe(400);
    expect(res.data ?? null).toBeNull();
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'QUERY_TOO_DEEP', limit: 8 });
    expect(res.errors?.[0]?.message).toMatch(/levels deep; the limit is 8/);
  });

  it('refuses a query whose page sizes multiply past the cost limit, and counts fragments', async () => {
    const costly = `query { users(first: 100) { edges { node { ...U } } } } fragment U on User { teams(first: 100) { edges { node { name } } } }`;
    const res = await cp.gql(costly);
    expect(res.status).toBe(400);
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'QUERY_TOO_COSTLY', limit: 5000 });
    const cheap = await cp.gql(`query { users(first: 10) { edges { node { ...U } } } } fragment U on User { teams(first: 10) { edges { node { name } } } }`);
    expect(cheap.errors).toBeUndefined();
  });

  it('refuses a variable page size as if it were the largest page', async () => {
    const res = await cp.gql(`query($n: Int) { users(first: $n) { edges { node { teams(first: $n) { edges { node { name } } } } } } }`, { n: 1 });
    expect(res.errors?.[0]?.extensions?.code).toBe('QUERY_TOO_COSTLY');
  });
});

describe('malformed requests', () => {
  it('answers malformed JSON with 400 and a parse error', async () => {
    const res = await fetch(cp.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${cp.ownerKey}` },
      body: '{"query": "{ viewer { actor } }"',
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as any;
    expect(body.errors[0].message).toMatch(/JSON/i);
  });

  it('answers invalid GraphQL input with typed validation errors', async () => {
    const missing = await cp.gql(`mutation { createRole(input: { capabilities: [] }) { __typename } }`);
    expect(missing.status).toBe(400);
    expect(missing.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(missing.errors?.[0]?.message).toContain('name');

    const wrongEnum = await cp.gql(`mutation { updateWorkspaceSettings(input: { timeFormat: H13 }) { __typename } }`);
    expect(wrongEnum.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');

    const badVariable = await cp.gql(`mutation($i: UpdateWorkspaceSettingsInput!) { updateWorkspaceSettings(input: $i) { __typename } }`, { i: { dateFormat: 'TOMORROW' } });
    expect(badVariable.status).toBe(400);
    expect(badVariable.errors?.[0]?.message).toContain('DateFormat');
  });

  it('answers malformed and mistyped IDs with a validation error naming the field', async () => {
    const garbage = ok(await cp.gql(`mutation { deactivateUser(id: "%%%") { __typename ... on ValidationError { field message } } }`));
    expect(garbage.deactivateUser).toMatchObject({ __typename: 'ValidationError', field: 'id' });
    const teamAsUser = ok(await cp.gql(`mutation { createTeam(input: { name: "T" }) { ... on CreateTeamSuccess { team { id } } } }`)).createTeam.team.id;
    const wrongType = ok(await cp.gql(`mutation($id: ID!) { activateUser(id: $id) { __typename ... on ValidationError { field message } } }`, { id: teamAsUser }));
    expect(wrongType.activateUser.__typename).toBe('ValidationError');
    expect(wrongType.activateUser.message).toContain('expected a User ID, got a Team ID');
    const query = await cp.gql(`{ user(id: "bm9wZQ") { id } }`);
    expect(query.errors?.[0]?.extensions).toMatchObject({ code: 'VALIDATION', field: 'id' });
  });

  it('answers overlong and control-character names with validation errors and writes nothing', async () => {
    const long = ok(await cp.gql(`mutation($n: String!) { createTeam(input: { name: $n }) { __typename ... on ValidationError { field } } }`, { n: 'x'.repeat(101) }));
    expect(long.createTeam).toEqual({ __typename: 'ValidationError', field: 'input.name' });
    const ctrl = ok(await cp.gql(`mutation($n: String!) { createTeam(input: { name: $n }) { __typename } }`, { n: 'bad\u0007name' }));
    expect(ctrl.createTeam.__typename).toBe('ValidationError');
    const teams = ok(await cp.gql(`{ teams { edges { node { name } } } }`));
    expect(teams.teams.edges.map((e: any) => e.node.name)).toEqual(['T']);
  });

  it('serves health endpoints and a clear 404 elsewhere', async () => {
    expect((await fetch(`${cp.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${cp.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready' });
    const missing = await fetch(`${cp.url}/nope`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as any).message).toContain('/graphql');
  });
});

describe('unexpected failures', () => {
  it('are masked with a request id and never leak internals', async () => {
    const other = await createTestDatabase();
    const cp2 = await startTestControlPlane(other.database);
    const lines: string[] = [];
    const key = cp2.ownerKey;
    await other.database.db.destroy(); // the store disappears under a running control plane
    const res = await fetch(cp2.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, 'x-request-id': 'req-test-1' },
      body: JSON.stringify({ query: '{ users { edges { node { id } } } }' }),
    });
    const body = (await res.json()) as any;
    lines.push(JSON.stringify(body));
    expect(res.status).toBe(500);
    expect(body.errors[0].message).toMatch(/^Unexpected error\. Request id: /);
    expect(body.errors[0].extensions.code).toBe('INTERNAL_SERVER_ERROR');
    expect(lines.join()).not.toMatch(/destroyed|kysely|pglite|pg\b|stack/i);
    await cp2.close().catch(() => undefined);
    await other.drop().catch(() => undefined);
  });
});
