import { buildControlPlane, type ControlPlane } from '../../control-plane/app.js';
import { insertApiKey } from '../../control-plane/api-keys/api-key.service.js';
import { loadControlPlaneConfig } from '../../control-plane/config.js';
import type { Database } from '../../control-plane/db/database.js';
import { createLogger } from '../../control-plane/logger.js';
import { createWorkspace } from '../../control-plane/workspaces/workspace.service.js';

/** One vault key for every control plane of a test run, as production replicas share theirs. */
export const TEST_ENCRYPTION_KEY = `test:${Buffer.alloc(32, 7).toString('base64')}`;

export interface GraphQLResponse<T = any> {
  readonly status: number;
  readonly headers: Headers;
  readonly data: T;
  readonly errors: { message: string; extensions?: Record<string, any>; path?: (string | number)[] }[] | undefined;
}

export interface TestControlPlane {
  readonly app: ControlPlane;
  readonly url: string;
  readonly graphqlUrl: string;
  readonly wsUrl: string;
  /** The bootstrap owner key of the default workspace. */
  readonly ownerKey: string;
  readonly workspaceId: string;
  gql<T = any>(query: string, variables?: Record<string, unknown>, key?: string | null): Promise<GraphQLResponse<T>>;
  close(): Promise<void>;
}

/** Runs a real control plane on port 0 over the given database. */
export async function startTestControlPlane(
  database: Database,
  env: Record<string, string> = {},
): Promise<TestControlPlane> {
  const config = loadControlPlaneConfig({
    GATEHOUSE_CONTROL_PLANE_PORT: '0',
    GATEHOUSE_LOG_LEVEL: 'silent',
    GATEHOUSE_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY,
    // Tests discover on demand; a background discovery would race their assertions.
    GATEHOUSE_DISCOVERY_INTERVAL_SECONDS: '0',
    ...env,
  });
  const app = await buildControlPlane(config, { database, logger: createLogger(process.env.TEST_LOG_LEVEL ?? 'silent') });
  const url = await app.listen();
  const existing = app.bootstrap;
  let ownerKey = existing?.adminKey;
  let workspaceId = existing?.workspaceId;
  if (!ownerKey || !workspaceId) {
    // A second control plane on an already-bootstrapped database: mint a key for the first workspace.
    const ws = await database.db.selectFrom('workspaces').select('id').orderBy('created_at').executeTakeFirstOrThrow();
    const owner = await database.db
      .selectFrom('roles')
      .select('id')
      .where('workspace_id', '=', ws.id)
      .where('builtin', '=', 'owner')
      .executeTakeFirstOrThrow();
    ownerKey = (await database.db.transaction().execute((trx) => insertApiKey(trx, ws.id, owner.id, 'test', 'test'))).secret;
    workspaceId = ws.id;
  }
  const graphqlUrl = `${url}/graphql`;
  const key = ownerKey;
  return {
    app,
    url,
    graphqlUrl,
    wsUrl: graphqlUrl.replace(/^http/, 'ws'),
    ownerKey: key,
    workspaceId,
    async gql(query, variables, k = key) {
      const res = await fetch(graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json', ...(k ? { authorization: `Bearer ${k}` } : {}) },
        body: JSON.stringify({ query, variables }),
      });
      const body = (await res.json()) as { data: any; errors?: GraphQLResponse['errors'] };
      return { status: res.status, headers: res.headers, data: body.data, errors: body.errors };
    },
    close: () => app.close(),
  };
}

/** Creates another workspace directly, the way the operator CLI does, with an owner key. */
export async function createWorkspaceWithOwner(database: Database, name: string) {
  return database.db.transaction().execute(async (trx) => {
    const { workspace, roleIds } = await createWorkspace(trx, name);
    const { secret } = await insertApiKey(trx, workspace.id, roleIds.owner!, 'owner', 'test');
    return { workspaceId: workspace.id, ownerKey: secret, roleIds };
  });
}

/** Throws with the GraphQL errors when a response has any; returns data otherwise. */
export function ok<T>(res: GraphQLResponse<T>): T {
  if (res.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(res.errors)}`);
  return res.data;
}

/** Role global IDs by name, read through the API. */
export async function roleIds(cp: TestControlPlane, key = cp.ownerKey): Promise<Record<string, string>> {
  const data = ok(await cp.gql(`{ roles(first: 100) { edges { node { id name } } } }`, {}, key));
  return Object.fromEntries(data.roles.edges.map((e: any) => [e.node.name, e.node.id]));
}

/** Creates an admin API key with the named role through the API and returns the secret. */
export async function keyWithRole(cp: TestControlPlane, roleName: string): Promise<string> {
  const roles = await roleIds(cp);
  const roleId = roles[roleName];
  if (!roleId) throw new Error(`no role named ${roleName}`);
  const res = ok(
    await cp.gql(
      `mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { __typename ... on CreateApiKeySuccess { created { secret } } ... on Error { message } } }`,
      { input: { name: `${roleName} key`, roleId } },
    ),
  );
  if (res.createApiKey.__typename !== 'CreateApiKeySuccess') throw new Error(res.createApiKey.message);
  return res.createApiKey.created.secret;
}
