import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import {
  TEST_ENCRYPTION_KEY,
  createWorkspaceWithOwner,
  keyWithRole,
  ok,
  startTestControlPlane,
  type TestControlPlane,
} from '../../helpers/control-plane.js';
import { fixtureCommand } from '../../fixtures/mcp/spawn.js';

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

const SERVER_FIELDS = `id name description kind transport url allowInsecure command args env { name value } secretEnvNames cwd
  authKind authHeaderNames disabled reviewState lastDiscoveryAt lastDiscoveryStatus lastDiscoveryError`;

const CREATE = `mutation($input: CreateServerInput!) {
  createServer(input: $input) {
    __typename
    ... on CreateServerSuccess { server { ${SERVER_FIELDS} } }
    ... on Error { code message }
    ... on ValidationError { field }
    ... on ConflictError { field }
    ... on ForbiddenError { capability }
  }
}`;

const DISCOVER = `mutation($id: ID!) {
  discoverServer(id: $id) {
    __typename
    ... on DiscoverServerSuccess { run { id status errorCode errorMessage featureCount } }
    ... on Error { code message }
  }
}`;

async function createServer(input: Record<string, unknown>, key = cp.ownerKey) {
  return ok(await cp.gql(CREATE, { input }, key)).createServer;
}

async function serverCount(): Promise<number> {
  const row = await tdb.database.db.selectFrom('servers').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
  return Number(row.n);
}

const HEADER_SECRET = 'sk-live-abcdefghijklmnopqrstuvwxyz012345';
const ENV_SECRET = 'ghp_0123456789abcdefghijABCDEFGHIJ';

describe('creating servers through GraphQL', () => {
  it('creates a remote Streamable HTTP server with encrypted auth headers', async () => {
    const res = await createServer({
      name: 'Linear',
      description: 'Issue tracker',
      remote: { url: 'https://mcp.linear.example/mcp' },
      auth: { kind: 'HEADERS', headers: [{ name: 'Authorization', value: `Bearer ${HEADER_SECRET}` }] },
    });
    expect(res.__typename).toBe('CreateServerSuccess');
    expect(res.server).toMatchObject({
      name: 'Linear',
      kind: 'REMOTE',
      transport: 'STREAMABLE_HTTP',
      url: 'https://mcp.linear.example/mcp',
      allowInsecure: false,
      command: null,
      authKind: 'HEADERS',
      authHeaderNames: ['Authorization'],
      disabled: false,
      reviewState: 'APPROVED',
      lastDiscoveryAt: null,
    });
  });

  it('creates a remote legacy SSE server and an insecure one when allowed', async () => {
    const sse = await createServer({ name: 'Legacy', remote: { url: 'https://legacy.example/sse', transport: 'SSE' } });
    expect(sse.server).toMatchObject({ transport: 'SSE', authKind: 'NONE', authHeaderNames: [] });
    const insecure = await createServer({ name: 'Lab', remote: { url: 'http://lab.internal:8080/mcp', allowInsecure: true } });
    expect(insecure.server).toMatchObject({ url: 'http://lab.internal:8080/mcp', allowInsecure: true });
    const loopback = await createServer({ name: 'Local', remote: { url: 'http://127.0.0.1:9/mcp' } });
    expect(loopback.server).toMatchObject({ allowInsecure: false });
  });

  it('creates a managed stdio server with plain and secret env', async () => {
    const { command, args } = fixtureCommand('mutable-server');
    const res = await createServer({
      name: 'Mutable',
      managed: {
        launch: 'STDIO',
        command,
        args,
        env: [
          { name: 'LOG_LEVEL', value: 'debug' },
          { name: 'GITHUB_TOKEN', value: ENV_SECRET, secret: true },
        ],
      },
    });
    expect(res.__typename).toBe('CreateServerSuccess');
    expect(res.server).toMatchObject({
      kind: 'MANAGED',
      transport: 'STDIO',
      command,
      args,
      env: [{ name: 'LOG_LEVEL', value: 'debug' }],
      secretEnvNames: ['GITHUB_TOKEN'],
      url: null,
    });
  });

  it('creates a managed HTTP server and a workstation server', async () => {
    const http = await createServer({
      name: 'Managed HTTP',
      managed: { launch: 'HTTP', command: 'node', args: ['server.js'], url: 'http://127.0.0.1:7777/mcp' },
    });
    expect(http.server).toMatchObject({ kind: 'MANAGED', transport: 'HTTP', url: 'http://127.0.0.1:7777/mcp', command: 'node' });
    const ws = await createServer({ name: 'Laptop tools', workstation: true });
    expect(ws.server).toMatchObject({ kind: 'WORKSTATION', transport: 'TUNNEL', url: null, command: null });
  });

  it('lists servers and reads one by id', async () => {
    const list = ok(await cp.gql(`{ servers(first: 50) { edges { node { id name } } } }`));
    const names = list.servers.edges.map((e: any) => e.node.name);
    expect(names).toEqual([...names].sort((a: string, b: string) => a.localeCompare(b)));
    expect(names).toEqual(expect.arrayContaining(['Linear', 'Legacy', 'Lab', 'Mutable', 'Managed HTTP', 'Laptop tools']));
    const linear = list.servers.edges.find((e: any) => e.node.name === 'Linear').node;
    const one = ok(await cp.gql(`query($id: ID!) { server(id: $id) { name } node(id: $id) { ... on Server { name } } }`, { id: linear.id }));
    expect(one).toEqual({ server: { name: 'Linear' }, node: { name: 'Linear' } });
  });
});

describe('bad input is a typed error and writes nothing', () => {
  const cases: [string, Record<string, unknown>, string, RegExp][] = [
    ['an invalid URL', { name: 'Bad1', remote: { url: 'not a url' } }, 'input.remote.url', /not a valid URL/],
    ['plain http to a non-loopback host', { name: 'Bad2', remote: { url: 'http://mcp.example.com/mcp' } }, 'input.remote.url', /loopback/],
    ['credentials in the URL', { name: 'Bad3', remote: { url: 'https://user:pw@mcp.example.com/mcp' } }, 'input.remote.url', /credentials/],
    ['a non-http scheme', { name: 'Bad4', remote: { url: 'ftp://mcp.example.com/' } }, 'input.remote.url', /https/],
    [
      'a command with no executable',
      { name: 'Bad5', managed: { launch: 'STDIO', command: 'definitely-not-a-command-gatehouse' } },
      'input.managed.command',
      /no executable/,
    ],
    [
      'a path that is not executable',
      { name: 'Bad6', managed: { launch: 'STDIO', command: `${process.cwd()}/package.json` } },
      'input.managed.command',
      /not an executable/,
    ],
    [
      'a secret-looking env name in a plain field',
      { name: 'Bad7', managed: { launch: 'STDIO', command: 'node', env: [{ name: 'OPENAI_API_KEY', value: 'x' }] } },
      'input.managed.env.0',
      /looks like a secret/,
    ],
    [
      'a secret-looking env value in a plain field',
      { name: 'Bad8', managed: { launch: 'STDIO', command: 'node', env: [{ name: 'HARMLESS', value: ENV_SECRET }] } },
      'input.managed.env.0',
      /looks like a secret/,
    ],
    [
      'a managed HTTP server without a URL',
      { name: 'Bad9', managed: { launch: 'HTTP', command: 'node' } },
      'input.managed.url',
      /needs the URL/,
    ],
    ['no kind at all', { name: 'Bad10' }, 'input', /exactly one/],
    ['two kinds', { name: 'Bad11', workstation: true, remote: { url: 'https://a.example/mcp' } }, 'input', /exactly one/],
    [
      'header auth with no headers',
      { name: 'Bad12', remote: { url: 'https://a.example/mcp' }, auth: { kind: 'HEADERS' } },
      'input.auth.headers',
      /at least one/,
    ],
    [
      'a header the gateway manages',
      { name: 'Bad13', remote: { url: 'https://a.example/mcp' }, auth: { kind: 'HEADERS', headers: [{ name: 'Host', value: 'x' }] } },
      'input.auth.headers.0.name',
      /managed by the gateway/,
    ],
    ['an empty name', { name: '  ', workstation: true }, 'input.name', /empty/],
  ];

  for (const [label, input, field, message] of cases) {
    it(label, async () => {
      const before = await serverCount();
      const res = await createServer(input);
      expect(res).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION', field });
      expect(res.message).toMatch(message);
      expect(await serverCount()).toBe(before);
    });
  }

  it('a duplicate name (case-insensitive) is a ConflictError', async () => {
    const before = await serverCount();
    const res = await createServer({ name: 'linear', remote: { url: 'https://other.example/mcp' } });
    expect(res).toMatchObject({ __typename: 'ConflictError', code: 'CONFLICT', field: 'input.name' });
    expect(res.message).toContain('already exists');
    expect(await serverCount()).toBe(before);
  });

  it('unknown and malformed ids are NotFoundError and ValidationError', async () => {
    const missingServer = Buffer.from('Server:00000000-0000-4000-8000-000000000000').toString('base64url');
    const missingContainer = Buffer.from('ServerContainer:00000000-0000-4000-8000-000000000000').toString('base64url');
    const res = ok(
      await cp.gql(
        `mutation($s: ID!, $c: ID!) {
          a: setServerDisabled(id: $s, disabled: true) { __typename ... on NotFoundError { resourceType } }
          b: discoverServer(id: $s) { __typename ... on NotFoundError { resourceType } }
          c: addServersToContainer(containerId: $c, serverIds: [$s]) { __typename ... on NotFoundError { resourceType } }
          d: deleteServer(id: "nonsense") { __typename ... on ValidationError { field } }
          e: updateServer(id: $c, input: { name: "x" }) { __typename ... on ValidationError { field message } }
        }`,
        { s: missingServer, c: missingContainer },
      ),
    );
    expect(res.a).toEqual({ __typename: 'NotFoundError', resourceType: 'Server' });
    expect(res.b).toEqual({ __typename: 'NotFoundError', resourceType: 'Server' });
    expect(res.c).toEqual({ __typename: 'NotFoundError', resourceType: 'ServerContainer' });
    expect(res.d).toEqual({ __typename: 'ValidationError', field: 'id' });
    expect(res.e).toMatchObject({ __typename: 'ValidationError', field: 'id' });
    expect(res.e.message).toContain('expected a Server ID');
  });
});

describe('secrets', () => {
  it('are stored sealed: no plaintext anywhere in the server rows', async () => {
    const rows = await tdb.database.db.selectFrom('servers').selectAll().execute();
    const dump = JSON.stringify(rows);
    expect(dump).not.toContain(HEADER_SECRET);
    expect(dump).not.toContain(ENV_SECRET);
    const linear = rows.find((r) => r.name === 'Linear')!;
    expect(linear.auth_headers.Authorization).toMatchObject({ keyId: 'test', iv: expect.any(String), ciphertext: expect.any(String), tag: expect.any(String) });
    const mutable = rows.find((r) => r.name === 'Mutable')!;
    expect(Object.keys(mutable.secret_env)).toEqual(['GITHUB_TOKEN']);
    expect(mutable.env).toEqual({ LOG_LEVEL: 'debug' });
    // ... and the change log holds no plaintext either.
    const events = JSON.stringify(await tdb.database.db.selectFrom('workspace_events').selectAll().execute());
    expect(events).not.toContain(HEADER_SECRET);
    expect(events).not.toContain(ENV_SECRET);
  });

  it('never appear in any GraphQL output', async () => {
    const res = await cp.gql(`{ servers(first: 100) { edges { node { ${SERVER_FIELDS} } } } }`);
    expect(res.errors).toBeUndefined();
    const body = JSON.stringify(res.data);
    expect(body).not.toContain(HEADER_SECRET);
    expect(body).not.toContain(ENV_SECRET);
    expect(body).toContain('GITHUB_TOKEN');
  });

  it('are replaced, not merged, when auth is updated, and kept when it is not', async () => {
    const { servers } = ok(await cp.gql(`{ servers(first: 100) { edges { node { id name } } } }`));
    const linear = servers.edges.find((e: any) => e.node.name === 'Linear').node;
    const renamed = ok(
      await cp.gql(
        `mutation($id: ID!) { updateServer(id: $id, input: { description: "Issues", remote: { url: "https://mcp.linear.example/v2/mcp" } }) {
          __typename ... on UpdateServerSuccess { server { description url authHeaderNames } } } }`,
        { id: linear.id },
      ),
    );
    expect(renamed.updateServer.server).toEqual({ description: 'Issues', url: 'https://mcp.linear.example/v2/mcp', authHeaderNames: ['Authorization'] });
    const replaced = ok(
      await cp.gql(
        `mutation($id: ID!) { updateServer(id: $id, input: { auth: { kind: HEADERS, headers: [{ name: "X-Api-Key", value: "k-123456" }] } }) {
          __typename ... on UpdateServerSuccess { server { authHeaderNames } } } }`,
        { id: linear.id },
      ),
    );
    expect(replaced.updateServer.server.authHeaderNames).toEqual(['X-Api-Key']);
    const wrongKind = ok(
      await cp.gql(
        `mutation($id: ID!) { updateServer(id: $id, input: { managed: { launch: STDIO, command: "node" } }) { __typename ... on ValidationError { field } } }`,
        { id: linear.id },
      ),
    );
    expect(wrongKind.updateServer).toEqual({ __typename: 'ValidationError', field: 'input.managed' });
  });
});

describe('containers', () => {
  it('group servers, are disabled and deleted without touching their servers', async () => {
    const { servers } = ok(await cp.gql(`{ servers(first: 100) { edges { node { id name } } } }`));
    const id = (name: string) => servers.edges.find((e: any) => e.node.name === name).node.id;
    const created = ok(
      await cp.gql(`mutation { createServerContainer(input: { name: "Engineering", description: "Eng tools" }) {
        __typename ... on CreateServerContainerSuccess { container { id name disabled } } } }`),
    ).createServerContainer;
    expect(created.__typename).toBe('CreateServerContainerSuccess');
    const containerId = created.container.id;

    const added = ok(
      await cp.gql(
        `mutation($c: ID!, $s: [ID!]!) { addServersToContainer(containerId: $c, serverIds: $s) {
          __typename ... on AddServersToContainerSuccess { container { servers { edges { node { name } } } } } } }`,
        { c: containerId, s: [id('Linear'), id('Mutable'), id('Linear')] },
      ),
    ).addServersToContainer;
    expect(added.container.servers.edges.map((e: any) => e.node.name)).toEqual(['Linear', 'Mutable']);

    const linear = ok(await cp.gql(`query($id: ID!) { server(id: $id) { containers { edges { node { name } } } } }`, { id: id('Linear') }));
    expect(linear.server.containers.edges).toEqual([{ node: { name: 'Engineering' } }]);

    const duplicate = ok(await cp.gql(`mutation { createServerContainer(input: { name: "engineering" }) { __typename } }`));
    expect(duplicate.createServerContainer.__typename).toBe('ConflictError');

    const disabled = ok(
      await cp.gql(
        `mutation($c: ID!) { setServerContainerDisabled(id: $c, disabled: true) { __typename ... on SetServerContainerDisabledSuccess { container { disabled } } } }`,
        { c: containerId },
      ),
    );
    expect(disabled.setServerContainerDisabled.container.disabled).toBe(true);

    const removed = ok(
      await cp.gql(
        `mutation($c: ID!, $s: [ID!]!) { removeServersFromContainer(containerId: $c, serverIds: $s) {
          __typename ... on RemoveServersFromContainerSuccess { container { servers { edges { node { name } } } } } } }`,
        { c: containerId, s: [id('Mutable')] },
      ),
    );
    expect(removed.removeServersFromContainer.container.servers.edges.map((e: any) => e.node.name)).toEqual(['Linear']);

    const renamed = ok(
      await cp.gql(
        `mutation($c: ID!) { updateServerContainer(id: $c, input: { name: "Eng" }) { __typename ... on UpdateServerContainerSuccess { container { name } } } }`,
        { c: containerId },
      ),
    );
    expect(renamed.updateServerContainer.container.name).toBe('Eng');

    const list = ok(await cp.gql(`{ serverContainers { edges { node { name disabled } } } }`));
    expect(list.serverContainers.edges).toEqual([{ node: { name: 'Eng', disabled: true } }]);
    const one = ok(await cp.gql(`query($c: ID!) { serverContainer(id: $c) { name } }`, { c: containerId }));
    expect(one.serverContainer.name).toBe('Eng');

    const deleted = ok(await cp.gql(`mutation($c: ID!) { deleteServerContainer(id: $c) { __typename ... on DeleteServerContainerSuccess { deletedServerContainerId } } }`, { c: containerId }));
    expect(deleted.deleteServerContainer.deletedServerContainerId).toBe(containerId);
    expect(ok(await cp.gql(`query($id: ID!) { server(id: $id) { name } }`, { id: id('Linear') })).server.name).toBe('Linear');
  });
});

describe('server lifecycle', () => {
  it('disables, re-enables and deletes a server, recording an event for each change', async () => {
    const created = await createServer({ name: 'Short-lived', remote: { url: 'https://short.example/mcp' } });
    const id = created.server.id;
    const off = ok(await cp.gql(`mutation($id: ID!) { setServerDisabled(id: $id, disabled: true) { ... on SetServerDisabledSuccess { server { disabled } } } }`, { id }));
    expect(off.setServerDisabled.server.disabled).toBe(true);
    const on = ok(await cp.gql(`mutation($id: ID!) { setServerDisabled(id: $id, disabled: false) { ... on SetServerDisabledSuccess { server { disabled } } } }`, { id }));
    expect(on.setServerDisabled.server.disabled).toBe(false);
    const deleted = ok(await cp.gql(`mutation($id: ID!) { deleteServer(id: $id) { __typename ... on DeleteServerSuccess { deletedServerId } } }`, { id }));
    expect(deleted.deleteServer.deletedServerId).toBe(id);
    const gone = await cp.gql(`query($id: ID!) { server(id: $id) { name } }`, { id });
    expect(gone.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const dbId = Buffer.from(id, 'base64url').toString().split(':')[1]!;
    const events = await tdb.database.db.selectFrom('workspace_events').select('type').where('subject_id', '=', dbId).orderBy('seq').execute();
    expect(events.map((e) => e.type)).toEqual(['server.created', 'server.disabled', 'server.enabled', 'server.deleted']);
  });
});

describe('capabilities', () => {
  it('a Member key reads servers but cannot create, discover or reseal', async () => {
    const memberKey = await keyWithRole(cp, 'Member');
    const before = await serverCount();
    const created = await createServer({ name: 'Sneaky', workstation: true }, memberKey);
    expect(created).toMatchObject({ __typename: 'ForbiddenError', code: 'FORBIDDEN', capability: 'servers.manage' });
    expect(await serverCount()).toBe(before);

    const list = await cp.gql(`{ servers(first: 100) { edges { node { id name } } } }`, {}, memberKey);
    expect(list.errors).toBeUndefined();
    const someId = list.data.servers.edges[0].node.id;
    const discover = ok(await cp.gql(DISCOVER, { id: someId }, memberKey));
    expect(discover.discoverServer).toMatchObject({ __typename: 'ForbiddenError', code: 'FORBIDDEN' });
    const reseal = ok(await cp.gql(`mutation { resealSecrets { __typename ... on ForbiddenError { capability } } }`, {}, memberKey));
    expect(reseal.resealSecrets).toEqual({ __typename: 'ForbiddenError', capability: 'workspace.manage_settings' });
  });

  it('an auditor reads servers, features and runs but changes nothing', async () => {
    const auditorKey = await keyWithRole(cp, 'Read-only auditor');
    const res = await cp.gql(
      `{ servers(first: 100) { edges { node { name env { name } features { edges { node { name } } } discoveryRuns { edges { node { status } } } containers { edges { node { name } } } } } }
         serverContainers { edges { node { name } } } }`,
      {},
      auditorKey,
    );
    expect(res.errors).toBeUndefined();
    expect(res.data.servers.edges.length).toBeGreaterThan(3);
    const update = ok(await cp.gql(`mutation { createServerContainer(input: { name: "audit" }) { __typename ... on ForbiddenError { capability } } }`, {}, auditorKey));
    expect(update.createServerContainer).toEqual({ __typename: 'ForbiddenError', capability: 'servers.manage' });
  });

  it('a key with no servers.view is refused the servers query', async () => {
    const role = ok(
      await cp.gql(`mutation { createRole(input: { name: "Nobody", capabilities: [] }) { ... on CreateRoleSuccess { role { id } } } }`),
    ).createRole.role.id;
    const key = ok(
      await cp.gql(`mutation($r: ID!) { createApiKey(input: { name: "nobody", roleId: $r }) { ... on CreateApiKeySuccess { created { secret } } } }`, { r: role }),
    ).createApiKey.created.secret;
    const res = await cp.gql(`{ servers { edges { node { id } } } }`, {}, key);
    expect(res.data).toBeNull();
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'FORBIDDEN', capability: 'servers.view' });
  });
});

describe('workspace isolation', () => {
  it("another workspace's owner sees none of these servers and cannot touch them", async () => {
    const other = await createWorkspaceWithOwner(tdb.database, 'Other');
    const mine = ok(await cp.gql(`{ servers(first: 100) { edges { node { id name } } } }`));
    const theirs = ok(await cp.gql(`{ servers(first: 100) { edges { node { id } } } serverContainers { edges { node { id } } } }`, {}, other.ownerKey));
    expect(theirs.servers.edges).toEqual([]);
    expect(theirs.serverContainers.edges).toEqual([]);
    const target = mine.servers.edges[0].node;
    const read = ok(await cp.gql(`query($id: ID!) { node(id: $id) { id } }`, { id: target.id }, other.ownerKey));
    expect(read.node).toBeNull();
    const byId = await cp.gql(`query($id: ID!) { server(id: $id) { id } }`, { id: target.id }, other.ownerKey);
    expect(byId.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const res = ok(
      await cp.gql(
        `mutation($id: ID!) {
          a: setServerDisabled(id: $id, disabled: true) { __typename }
          b: deleteServer(id: $id) { __typename }
          c: discoverServer(id: $id) { __typename }
          d: updateServer(id: $id, input: { name: "Hijacked" }) { __typename }
        }`,
        { id: target.id },
        other.ownerKey,
      ),
    );
    expect(Object.values(res)).toEqual([
      { __typename: 'NotFoundError' },
      { __typename: 'NotFoundError' },
      { __typename: 'NotFoundError' },
      { __typename: 'NotFoundError' },
    ]);
    // The same name is free in the other workspace.
    const same = await createServer({ name: target.name, workstation: true }, other.ownerKey);
    expect(same.__typename).toBe('CreateServerSuccess');
    const after = ok(await cp.gql(`query($id: ID!) { server(id: $id) { name disabled } }`, { id: target.id }));
    expect(after.server).toEqual({ name: target.name, disabled: false });
  });
});

describe('key rotation', () => {
  it('resealSecrets re-encrypts under a new key, and discovery still opens the secrets', async () => {
    const created = await createServer({
      name: 'Rotated',
      managed: {
        launch: 'STDIO',
        ...fixtureCommand('mutable-server'),
        env: [{ name: 'FIXTURE_SECRET', value: 'rotate-me-please', secret: true }],
      },
    });
    expect(created.__typename).toBe('CreateServerSuccess');
    const newKey = Buffer.alloc(32, 9).toString('base64');
    const cp2 = await startTestControlPlane(tdb.database, { GATEHOUSE_ENCRYPTION_KEY: `new:${newKey},${TEST_ENCRYPTION_KEY}` });
    try {
      const keyIds = async () => {
        const rows = await tdb.database.db
          .selectFrom('servers')
          .select(['auth_headers', 'secret_env'])
          .where('workspace_id', '=', cp.workspaceId)
          .execute();
        return new Set(rows.flatMap((r) => [...Object.values(r.auth_headers), ...Object.values(r.secret_env)].map((s) => s.keyId)));
      };
      expect(await keyIds()).toEqual(new Set(['test']));
      const resealed = ok(await cp2.gql(`mutation { resealSecrets { __typename ... on ResealSecretsSuccess { resealedCount } } }`));
      expect(resealed.resealSecrets).toEqual({ __typename: 'ResealSecretsSuccess', resealedCount: 3 });
      expect(await keyIds()).toEqual(new Set(['new']));
      const again = ok(await cp2.gql(`mutation { resealSecrets { ... on ResealSecretsSuccess { resealedCount } } }`));
      expect(again.resealSecrets.resealedCount).toBe(0);

      const run = ok(await cp2.gql(DISCOVER, { id: created.server.id })).discoverServer;
      expect(run.run).toMatchObject({ status: 'OK', errorCode: null, featureCount: 1 });

      // A process that never got the new key cannot open the secrets any more: a recorded failure.
      const stale = ok(await cp.gql(DISCOVER, { id: created.server.id })).discoverServer;
      expect(stale.run).toMatchObject({ status: 'FAILED', errorCode: 'SECRET_UNAVAILABLE' });
      expect(stale.run.errorMessage).toContain('not in the keyring');
      const event = await tdb.database.db
        .selectFrom('workspace_events')
        .select(['type', 'details'])
        .where('type', '=', 'vault.resealed')
        .executeTakeFirstOrThrow();
      expect(event.details).toMatchObject({ secrets: 3, keyId: 'new' });
    } finally {
      await cp2.close();
    }
  });
});
