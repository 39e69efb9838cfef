import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { keyWithRole, ok, roleIds, startTestControlPlane, type TestControlPlane } from '../../helpers/control-plane.js';

let tdb: TestDatabase;
let cp: TestControlPlane;

beforeAll(async () => {
  tdb = await createTestDatabase();
  // The query below is deliberately wide; this file is about batching, not the cost limit.
  cp = await startTestControlPlane(tdb.database, { GATEHOUSE_MAX_QUERY_COST: '10000000' });
});
afterAll(async () => {
  await cp?.close();
  await tdb?.drop();
});

const NESTED = `{
  users(first: 100) { edges { node { email role { name capabilities { name } }
    teams { edges { node { name members { edges { node { email role { name } } } } } } } } } }
  roles(first: 100) { edges { node { name userCount capabilities { name area } } } }
  teams(first: 100) { edges { node { name members { edges { node { email teams { edges { node { name } } } } } } } } }
}`;

/**
 * Waits until nothing else (the snapshot publisher reacting to the setup's changes, the
 * key's last-used stamp) has touched the database for a while, so the count is the query's.
 */
async function quiescent(quietMs = 400): Promise<void> {
  let last = tdb.database.stats.statements;
  let since = Date.now();
  while (Date.now() - since < quietMs) {
    await new Promise((r) => setTimeout(r, 50));
    if (tdb.database.stats.statements !== last) {
      last = tdb.database.stats.statements;
      since = Date.now();
    }
  }
}

let seq = 0;
/** Adds `users` users spread over `teams` new teams (each user in two) and a custom role each. */
async function grow(users: number, teams: number) {
  const roles = await roleIds(cp);
  const teamIds: string[] = [];
  for (let i = 0; i < teams; i++) {
    const t = ok(await cp.gql(`mutation($n: String!) { createTeam(input: { name: $n }) { ... on CreateTeamSuccess { team { id } } } }`, { n: `team-${seq}-${i}` }));
    teamIds.push(t.createTeam.team.id);
  }
  for (let i = 0; i < users; i++) {
    const role = ok(
      await cp.gql(`mutation($n: String!) { createRole(input: { name: $n, capabilities: ["servers.view", "people.view"] }) { ... on CreateRoleSuccess { role { id } } } }`, { n: `role-${seq}-${i}` }),
    ).createRole.role.id;
    ok(
      await cp.gql(`mutation($e: String!, $r: ID!, $t: [ID!]) { inviteUser(input: { email: $e, roleId: $r, teamIds: $t }) { __typename } }`, {
        e: `u${seq}-${i}@batch.test`,
        r: i % 2 ? role : roles.Member,
        t: [teamIds[i % teams], teamIds[(i + 1) % teams]],
      }),
    );
  }
  seq++;
}

async function statementsOnce(query: string): Promise<{ statements: number; users: number }> {
  // A fresh key, used once and stamped before measuring: its last-used write (at most one a
  // minute) cannot land inside the measurement.
  const key = await keyWithRole(cp, 'Owner');
  await cp.gql('{ viewer { actor } }', {}, key);
  await expect
    .poll(async () => (await tdb.database.db.selectFrom('api_keys').select('last_used_at').where('name', '=', 'Owner key').orderBy('created_at', 'desc').executeTakeFirst())?.last_used_at ?? null)
    .not.toBeNull();
  await quiescent();
  const before = tdb.database.stats.statements;
  const data = ok(await cp.gql(query, {}, key));
  return { statements: tdb.database.stats.statements - before, users: data.users.edges.length };
}

/**
 * The fewest statements over three runs of the query. A background write that slips past
 * `quiescent` (the snapshot publisher, a key stamp) or a loader split over two ticks adds to
 * one run, never to all three; an N+1 adds to every run.
 */
async function statementsFor(query: string): Promise<{ statements: number; users: number }> {
  const runs = [];
  for (let i = 0; i < 3; i++) runs.push(await statementsOnce(query));
  return runs.reduce((a, b) => (b.statements < a.statements ? b : a));
}

describe('nested list queries', () => {
  it('issue a bounded number of SQL statements, independent of row count', async () => {
    await grow(4, 2);
    const small = await statementsFor(NESTED);
    await grow(30, 6);
    const large = await statementsFor(NESTED);
    expect(large.users).toBeGreaterThan(small.users * 5);
    // The same loader used at two depths (a user's role, a team member's role) batches into
    // one statement or two depending on whether both levels resolve in the same tick, so the
    // count may differ by one between runs; it never grows with the rows (N+1 would add 30+).
    expect(Math.abs(large.statements - small.statements)).toBeLessThanOrEqual(1);
    // Authentication, three root lists and one statement per relation level.
    expect(large.statements).toBeLessThanOrEqual(12);
  });
});
