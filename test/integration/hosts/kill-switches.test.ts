import { randomUUID } from 'node:crypto';
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { encodeGlobalId } from '../../../control-plane/graphql/global-id.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { keyWithRole, ok, startTestControlPlane, type TestControlPlane } from '../../helpers/control-plane.js';

let tdb: TestDatabase;
let cp: TestControlPlane;
let hostId: string;
let connectionId: string;
const clients: Client[] = [];

const dbId = (globalId: string) => Buffer.from(globalId, 'base64url').toString().split(':')[1]!;

beforeAll(async () => {
  tdb = await createTestDatabase();
  cp = await startTestControlPlane(tdb.database);
  const gatewayUuid = randomUUID();
  // Gateways have their own API; a row is enough to connect to.
  await tdb.database.db.insertInto('gateways').values({ id: gatewayUuid, workspace_id: cp.workspaceId, name: 'Ops', slug: 'ops' }).execute();
  const host = ok(await cp.gql(`mutation { createHost(input: { name: "deployer" }) { ... on CreateHostSuccess { host { id } } } }`));
  hostId = host.createHost.host.id;
  const connection = ok(
    await cp.gql(`mutation($h: ID!, $g: ID!) { createConnection(input: { hostId: $h, gatewayId: $g, name: "ops" }) { ... on CreateConnectionSuccess { connection { id } } } }`, {
      h: hostId,
      g: encodeGlobalId('Gateway', gatewayUuid),
    }),
  );
  connectionId = connection.createConnection.connection.id;
});
afterAll(async () => {
  for (const c of clients) await c.dispose();
  await cp?.close();
  await tdb?.drop();
});

/** Subscribes a real graphql-ws client to workspaceEvents; resolves with the first event of `type`. */
function nextEventOf(type: string): { event: Promise<any>; ready: Promise<void> } {
  const c = createClient({ url: cp.wsUrl, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${cp.ownerKey}` }, retryAttempts: 0, lazy: true });
  clients.push(c);
  let ready!: () => void;
  const readyP = new Promise<void>((r) => (ready = r));
  const event = new Promise<any>((resolve, reject) => {
    const unsubscribe = c.subscribe(
      { query: `subscription { workspaceEvents { type subjectType subjectId actor details } }` },
      {
        next: (msg) => {
          if (msg.errors) return reject(new Error(JSON.stringify(msg.errors)));
          const e = (msg.data as any).workspaceEvents;
          if (e.type !== type) return;
          unsubscribe();
          resolve(e);
        },
        error: reject,
        complete: () => reject(new Error(`subscription completed before ${type}`)),
      },
    );
  });
  // graphql-ws has no "subscribed" ack; the server registers the subscription right after the socket opens.
  c.on('connected', () => setTimeout(ready, 100));
  return { event, ready: readyP };
}

const ERR = `__typename ... on Error { code message } ... on ForbiddenError { capability }`;

describe('kill switches', () => {
  it('a connection switched off reaches a graphql-ws subscriber as connection.disabled, and back on as connection.enabled', async () => {
    const off = nextEventOf('connection.disabled');
    await off.ready;
    const res = ok(
      await cp.gql(`mutation($id: ID!) { setConnectionDisabled(id: $id, disabled: true) { ${ERR} ... on SetConnectionDisabledSuccess { connection { id disabled } } } }`, {
        id: connectionId,
      }),
    );
    expect(res.setConnectionDisabled.connection).toEqual({ id: connectionId, disabled: true });
    expect(await off.event).toMatchObject({ type: 'connection.disabled', subjectType: 'Connection', subjectId: dbId(connectionId), details: { name: 'ops', hostId: dbId(hostId) } });
    expect((await off.event).actor).toMatch(/^api_key:/);

    const on = nextEventOf('connection.enabled');
    await on.ready;
    ok(await cp.gql(`mutation($id: ID!) { setConnectionDisabled(id: $id, disabled: false) { __typename } }`, { id: connectionId }));
    expect(await on.event).toMatchObject({ type: 'connection.enabled', subjectId: dbId(connectionId) });
    expect(ok(await cp.gql(`query($id: ID!) { node(id: $id) { ... on Connection { disabled } } }`, { id: connectionId })).node.disabled).toBe(false);
  });

  it('a host switched off records host.disabled and leaves its connections’ own switches alone', async () => {
    const off = nextEventOf('host.disabled');
    await off.ready;
    const res = ok(
      await cp.gql(`mutation($id: ID!) { setHostDisabled(id: $id, disabled: true) { ${ERR} ... on SetHostDisabledSuccess { host { disabled connections { edges { node { disabled } } } } } } }`, {
        id: hostId,
      }),
    );
    expect(res.setHostDisabled.host).toEqual({ disabled: true, connections: { edges: [{ node: { disabled: false } }] } });
    expect(await off.event).toMatchObject({ type: 'host.disabled', subjectType: 'Host', subjectId: dbId(hostId) });

    const rows = await cp.app.services.hosts.accessSnapshotRows(cp.workspaceId);
    expect(rows.hosts.find((h) => h.id === dbId(hostId))?.disabled).toBe(true);

    ok(await cp.gql(`mutation($id: ID!) { setHostDisabled(id: $id, disabled: false) { __typename } }`, { id: hostId }));
    const latest = ok(await cp.gql(`{ workspaceEvents(first: 1) { edges { node { type } } } }`)).workspaceEvents.edges[0].node;
    expect(latest.type).toBe('host.enabled');
  });

  it('the workspace switch needs workspace.manage_settings, flips Workspace.disabled and records workspace.disabled', async () => {
    const admin = await keyWithRole(cp, 'Admin');
    const refused = ok(await cp.gql(`mutation { setWorkspaceDisabled(disabled: true) { ${ERR} } }`, {}, admin)).setWorkspaceDisabled;
    expect(refused).toMatchObject({ __typename: 'ForbiddenError', capability: 'workspace.manage_settings' });
    expect(ok(await cp.gql(`{ workspace { disabled } }`)).workspace.disabled).toBe(false);

    const off = nextEventOf('workspace.disabled');
    await off.ready;
    const res = ok(await cp.gql(`mutation { setWorkspaceDisabled(disabled: true) { ${ERR} ... on SetWorkspaceDisabledSuccess { workspace { id disabled } } } }`));
    expect(res.setWorkspaceDisabled.workspace.disabled).toBe(true);
    expect(await off.event).toMatchObject({ type: 'workspace.disabled', subjectType: 'Workspace', subjectId: cp.workspaceId });
    // The control-plane API keeps working so that the switch can be turned back.
    expect(ok(await cp.gql(`{ workspace { disabled } }`)).workspace.disabled).toBe(true);

    ok(await cp.gql(`mutation { setWorkspaceDisabled(disabled: false) { __typename } }`));
    expect(ok(await cp.gql(`{ workspace { disabled } }`)).workspace.disabled).toBe(false);
    const latest = ok(await cp.gql(`{ workspaceEvents(first: 1) { edges { node { type } } } }`)).workspaceEvents.edges[0].node;
    expect(latest.type).toBe('workspace.enabled');
  });

  it('switching an unknown host or connection is NOT_FOUND and records nothing', async () => {
    const count = async () => Number((await tdb.database.db.selectFrom('workspace_events').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()).n);
    const before = await count();
    const res = ok(
      await cp.gql(
        `mutation($h: ID!, $c: ID!) { setHostDisabled(id: $h, disabled: true) { ${ERR} } setConnectionDisabled(id: $c, disabled: true) { ${ERR} } }`,
        { h: encodeGlobalId('Host', randomUUID()), c: encodeGlobalId('Connection', randomUUID()) },
      ),
    );
    expect(res.setHostDisabled.__typename).toBe('NotFoundError');
    expect(res.setConnectionDisabled.__typename).toBe('NotFoundError');
    expect(await count()).toBe(before);
  });
});
