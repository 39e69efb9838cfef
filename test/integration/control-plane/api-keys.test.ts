import { createHash } from 'node:crypto';
import { sql } from 'kysely';
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

async function createKey(name: string, role = 'Admin') {
  const roles = await roleIds(cp);
  return ok(
    await cp.gql(
      `mutation($r: ID!, $n: String!) { createApiKey(input: { name: $n, roleId: $r }) { __typename ... on CreateApiKeySuccess { created { secret apiKey { id name prefix role { name } lastUsedAt revokedAt createdBy } } } } }`,
      { r: roles[role], n: name },
    ),
  ).createApiKey.created;
}

describe('admin API keys', () => {
  it('are high-entropy, prefixed, shown once and stored only as a hash', async () => {
    const created = await createKey('terraform');
    expect(created.secret).toMatch(/^gh_admin_[A-Za-z0-9_-]{43}$/);
    expect(created.secret.startsWith(created.apiKey.prefix)).toBe(true);
    expect(created.apiKey.prefix.length).toBeLessThan(created.secret.length - 30);
    expect(created.apiKey).toMatchObject({ name: 'terraform', role: { name: 'Admin' }, lastUsedAt: null, revokedAt: null });

    const rows = await sql<{ row: string }>`SELECT row_to_json(k)::text AS row FROM api_keys k`.execute(tdb.database.db);
    const dump = rows.rows.map((r) => r.row).join('\n');
    expect(dump).not.toContain(created.secret);
    expect(dump).toContain(createHash('sha256').update(created.secret).digest('hex'));

    // The listing never exposes the secret.
    const listed = await cp.gql(`{ apiKeys { edges { node { name prefix } } } }`);
    expect(JSON.stringify(listed)).not.toContain(created.secret);
  });

  it('authenticate, record last use, and stop working the moment they are revoked', async () => {
    const created = await createKey('short-lived');
    const who = ok(await cp.gql(`{ viewer { actor } }`, {}, created.secret));
    expect(who.viewer.actor).toBe(`api_key:${Buffer.from(created.apiKey.id, 'base64url').toString().split(':')[1]}`);

    await expect.poll(async () => {
      const list = ok(await cp.gql(`{ apiKeys { edges { node { name lastUsedAt } } } }`));
      return list.apiKeys.edges.find((e: any) => e.node.name === 'short-lived').node.lastUsedAt;
    }).not.toBeNull();

    const revoked = ok(await cp.gql(`mutation($id: ID!) { revokeApiKey(id: $id) { __typename ... on RevokeApiKeySuccess { apiKey { revokedAt } } } }`, { id: created.apiKey.id }));
    expect(revoked.revokeApiKey.apiKey.revokedAt).toBeTruthy();

    const refused = await cp.gql(`{ viewer { actor } }`, {}, created.secret);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toContain('Bearer');
    expect(refused.errors?.[0]).toMatchObject({ extensions: { code: 'UNAUTHENTICATED' } });
    expect(refused.errors?.[0]?.message).toContain('revoked');

    const again = ok(await cp.gql(`mutation($id: ID!) { revokeApiKey(id: $id) { __typename } }`, { id: created.apiKey.id }));
    expect(again.revokeApiKey.__typename).toBe('ConflictError');

    const active = ok(await cp.gql(`{ apiKeys { edges { node { name } } } }`)).apiKeys.edges.map((e: any) => e.node.name);
    expect(active).not.toContain('short-lived');
    const all = ok(await cp.gql(`{ apiKeys(includeRevoked: true) { edges { node { name revokedAt } } } }`)).apiKeys.edges;
    expect(all.find((e: any) => e.node.name === 'short-lived').node.revokedAt).toBeTruthy();
  });

  it('refuse missing, malformed and unknown credentials with 401', async () => {
    const cases: [string | undefined, string][] = [
      [undefined, 'missing credentials'],
      ['Basic Zm9vOmJhcg==', 'malformed Authorization'],
      [`Bearer gh_admin_${'A'.repeat(43)}`, 'unknown or revoked'],
      ['Bearer not-a-gatehouse-key', 'unknown or revoked'],
    ];
    for (const [authorization, message] of cases) {
      const res = await fetch(cp.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(authorization && { authorization }) },
        body: JSON.stringify({ query: '{ viewer { actor } }' }),
      });
      expect(res.status).toBe(401);
      const body = (await res.json()) as any;
      expect(body.data ?? null).toBeNull();
      expect(body.errors[0].message).toContain(message);
    }
  });
});
