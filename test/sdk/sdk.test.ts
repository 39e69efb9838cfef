import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it, vi } from 'vitest';
import WebSocket from 'ws';
import {
  ActivateUserDocument,
  CreateRoleDocument,
  CreateTeamDocument,
  GatehouseAuthError,
  GatehouseClient,
  GatehouseError,
  GatehouseMutationError,
  GatehouseNetworkError,
  GetRoleDocument,
  GetUserDocument,
  GetViewerDocument,
  InviteUserDocument,
  ListCapabilitiesDocument,
  WorkspaceEventsDocument,
  unwrap,
  type CreateTeamMutation,
  type GetViewerQuery,
  type WorkspaceEventsSubscription,
} from '../../sdk/index.js';
import { startTestControlPlane, type TestControlPlane } from '../helpers/control-plane.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

let tdb: TestDatabase;
let cp: TestControlPlane;
let client: GatehouseClient;
const servers: Server[] = [];

beforeAll(async () => {
  tdb = await createTestDatabase();
  cp = await startTestControlPlane(tdb.database);
  client = new GatehouseClient({ url: cp.url, apiKey: cp.ownerKey, retryDelayMs: 1 });
});

afterAll(async () => {
  await client?.close();
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  await cp?.close();
  await tdb?.drop();
});

describe('GatehouseClient against a real control plane', () => {
  it('walks the README tour: custom role, team, invited user in the team, activation, read-back', async () => {
    const { capabilities } = await client.request(ListCapabilitiesDocument, { area: 'PEOPLE' });
    const readOnly = capabilities.filter((c) => c.readOnly).map((c) => c.name);
    expect(readOnly).toEqual(['people.view']);
    const wanted = [...readOnly, 'people.manage_teams'];

    const { role } = unwrap(
      await client.request(CreateRoleDocument, { input: { name: 'Team lead', description: 'Runs a team', capabilities: wanted } }),
      'createRole',
    );
    expectTypeOf(role.capabilities).items.toHaveProperty('name').toEqualTypeOf<string>();
    expect(role).toMatchObject({ name: 'Team lead', description: 'Runs a team', builtin: null, userCount: 0 });
    expect(role.capabilities.map((c) => c.name).sort()).toEqual([...wanted].sort());

    const { team } = unwrap(await client.request(CreateTeamDocument, { input: { name: 'Platform' } }), 'createTeam');
    expect(team).toMatchObject({ name: 'Platform', disabled: false });

    const invited = unwrap(
      await client.request(InviteUserDocument, {
        input: { email: 'ada@example.com', name: 'Ada Lovelace', roleId: role.id, teamIds: [team.id] },
      }),
      'inviteUser',
    ).user;
    expect(invited).toMatchObject({ email: 'ada@example.com', state: 'INVITED', activatedAt: null, role: { id: role.id } });

    const { user: activated } = unwrap(await client.request(ActivateUserDocument, { id: invited.id }), 'activateUser');
    expect(activated.state).toBe('ACTIVE');
    expect(Date.parse(activated.activatedAt ?? '')).not.toBeNaN();

    const { user } = await client.request(GetUserDocument, { id: invited.id, teamsFirst: 10 });
    expect(user).toMatchObject({ id: invited.id, name: 'Ada Lovelace', state: 'ACTIVE', role: { id: role.id, name: 'Team lead', builtin: null } });
    expect(user?.teams.edges.map((e) => e.node)).toEqual([expect.objectContaining({ id: team.id, name: 'Platform' })]);

    const after = await client.request(GetRoleDocument, { id: role.id });
    expect(after.role?.userCount).toBe(1);
  });

  it('throws a mutation failure as a typed GatehouseMutationError', async () => {
    unwrap(await client.request(CreateTeamDocument, { input: { name: 'Duplicated' } }), 'createTeam');
    const duplicate = await client.request(CreateTeamDocument, { input: { name: 'Duplicated' } });
    expect(duplicate.createTeam.__typename).toBe('ConflictError');

    const error = (() => {
      try {
        unwrap(duplicate, 'createTeam');
      } catch (err) {
        return err;
      }
      throw new Error('unwrap did not throw');
    })();
    expect(error).toBeInstanceOf(GatehouseMutationError);
    expect(error).toBeInstanceOf(GatehouseError);
    const failure = error as GatehouseMutationError;
    expect(failure).toMatchObject({ __typename: 'ConflictError', code: 'CONFLICT', mutation: 'createTeam', field: 'input.name' });
    expect(failure.message).toMatch(/^createTeam: .*Duplicated/);
    expect(failure.failure).toEqual(duplicate.createTeam);

    // The specific fields of other members come through too.
    const missing = await client.request(ActivateUserDocument, { id: Buffer.from('User:00000000-0000-4000-8000-000000000000').toString('base64url') });
    expect(() => unwrap(missing, 'activateUser')).toThrow(
      expect.objectContaining({ __typename: 'NotFoundError', code: 'NOT_FOUND', resourceType: 'User' }),
    );
  });

  it('types unwrap as the success member only', () => {
    expectTypeOf(unwrap<CreateTeamMutation, 'createTeam'>).returns.toHaveProperty('__typename').toEqualTypeOf<'CreateTeamSuccess'>();
    expectTypeOf(unwrap<CreateTeamMutation, 'createTeam'>).parameter(1).toEqualTypeOf<'createTeam'>();
    // @ts-expect-error only payload-union fields can be unwrapped
    unwrap<GetViewerQuery, 'viewer'>;
  });

  it('throws GatehouseAuthError for a wrong key, over HTTP and over WebSocket', async () => {
    const wrong = new GatehouseClient({ url: cp.url, apiKey: 'gh_not_a_real_key', retryDelayMs: 1 });
    try {
      const http = await wrong.request(GetViewerDocument).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(http).toBeInstanceOf(GatehouseAuthError);
      expect(http).toMatchObject({ code: 'UNAUTHENTICATED', status: 401 });

      const events = wrong.subscribe(WorkspaceEventsDocument);
      await expect(events.next()).rejects.toBeInstanceOf(GatehouseAuthError);
    } finally {
      await wrong.close();
    }
  });

  it('surfaces GraphQL errors with their code and the request id', async () => {
    const err = await client.request(GetRoleDocument, { id: 'not-an-id' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(GatehouseError);
    expect(err).not.toBeInstanceOf(GatehouseAuthError);
    expect(err).toMatchObject({ code: 'VALIDATION', errors: [expect.objectContaining({ path: ['role'] })] });
    expect((err as GatehouseError).requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('receives team.created over a subscription and closes the socket when the iterator returns', async () => {
    const sockets: WebSocket[] = [];
    class TrackedWebSocket extends WebSocket {
      constructor(...args: ConstructorParameters<typeof WebSocket>) {
        super(...args);
        sockets.push(this);
      }
    }
    const subscriber = new GatehouseClient({ url: cp.url, apiKey: cp.ownerKey, webSocketImpl: TrackedWebSocket });
    try {
      const events = subscriber.subscribe(WorkspaceEventsDocument);
      expectTypeOf(events).toEqualTypeOf<AsyncIterableIterator<WorkspaceEventsSubscription>>();

      // graphql-ws does not acknowledge a subscription, so make changes until one arrives:
      // from then on the subscription is live.
      const first = events.next();
      for (let i = 0; !(await Promise.race([first.then(() => true), sleep(150).then(() => false)])); i++) {
        if (i === 40) throw new Error('no workspace event arrived within 6 s');
        unwrap(await client.request(CreateTeamDocument, { input: { name: `warm-up ${i}` } }), 'createTeam');
      }
      expect((await first).done).toBe(false);

      const { team } = unwrap(await client.request(CreateTeamDocument, { input: { name: 'Live' } }), 'createTeam');
      let event: WorkspaceEventsSubscription['workspaceEvents'] | undefined;
      for (let i = 0; i < 50 && !event; i++) {
        const step = await events.next();
        if (step.done) throw new Error('the subscription ended early');
        if (step.value.workspaceEvents.details.name === 'Live') event = step.value.workspaceEvents;
      }
      expect(event).toMatchObject({ type: 'team.created', subjectType: 'Team', details: { name: 'Live' } });
      expect(event?.actor).toMatch(/^api_key:/);
      expect(Buffer.from(team.id, 'base64url').toString()).toBe(`Team:${event?.subjectId}`);

      expect(sockets).toHaveLength(1);
      expect(sockets[0]!.readyState).toBe(WebSocket.OPEN);
      await expect(events.return!()).resolves.toEqual({ done: true, value: undefined });
      await vi.waitFor(() => expect(sockets[0]!.readyState).toBe(WebSocket.CLOSED));
      await expect(events.next()).resolves.toEqual({ done: true, value: undefined });
    } finally {
      await subscriber.close();
    }
  });
});

describe('GatehouseClient retries', () => {
  /**
   * A local server in front of the control plane. `plan` decides per attempt (1-based):
   * 'destroy' drops the connection, 'hang' never answers, a number answers with that status,
   * 'proxy' forwards.
   */
  async function flakyProxy(plan: (attempt: number) => 'destroy' | 'hang' | 'proxy' | number) {
    const seen: string[] = [];
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push(req.headers['x-request-id'] as string);
        const action = plan(seen.length);
        if (action === 'destroy') return void req.socket.destroy();
        if (action === 'hang') return;
        if (typeof action === 'number') {
          res.writeHead(action, { 'content-type': 'text/html' });
          return void res.end(`<html>${action}</html>`);
        }
        fetch(cp.graphqlUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: String(req.headers.authorization ?? ''), accept: String(req.headers.accept ?? '') },
          body: Buffer.concat(chunks),
        }).then(
          async (upstream) => {
            res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' });
            res.end(Buffer.from(await upstream.arrayBuffer()));
          },
          () => res.destroy(),
        );
      });
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return { url, seen };
  }

  const via = (url: string, apiKey = cp.ownerKey, retries = 3) => new GatehouseClient({ url, apiKey, retries, retryDelayMs: 1 });

  it('retries dropped connections and succeeds on the third attempt', async () => {
    const proxy = await flakyProxy((n) => (n <= 2 ? 'destroy' : 'proxy'));
    const { viewer } = await via(proxy.url).request(GetViewerDocument);
    expect(viewer.capabilities).toContain('people.manage_roles');
    expect(proxy.seen).toHaveLength(3);
    // One logical request: every attempt carries the same correlation id.
    expect(new Set(proxy.seen).size).toBe(1);
  });

  it('retries 502, 503 and 504 but not other statuses', async () => {
    const gateway = await flakyProxy((n) => [502, 503, 504][n - 1] ?? 'proxy');
    await expect(via(gateway.url).request(GetViewerDocument)).resolves.toHaveProperty('viewer.actor');
    expect(gateway.seen).toHaveLength(4);

    const limited = await flakyProxy(() => 429);
    await expect(via(limited.url).request(GetViewerDocument)).rejects.toMatchObject({ code: 'HTTP_ERROR', status: 429 });
    expect(limited.seen).toHaveLength(1);
  });

  it('never retries GraphQL errors or a refused key', async () => {
    const proxy = await flakyProxy(() => 'proxy');
    await expect(via(proxy.url).request(GetRoleDocument, { id: 'not-an-id' })).rejects.toMatchObject({ code: 'VALIDATION' });
    expect(proxy.seen).toHaveLength(1);

    await expect(via(proxy.url, 'gh_wrong').request(GetViewerDocument)).rejects.toBeInstanceOf(GatehouseAuthError);
    expect(proxy.seen).toHaveLength(2);
  });

  it('gives up after `retries` extra attempts with a GatehouseNetworkError', async () => {
    const proxy = await flakyProxy(() => 'destroy');
    const err = await via(proxy.url, cp.ownerKey, 2)
      .request(GetViewerDocument)
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(GatehouseNetworkError);
    expect(err).toMatchObject({ code: 'NETWORK_ERROR', attempts: 3 });
    expect(proxy.seen).toHaveLength(3);
  });

  it('does not retry a request that timed out', async () => {
    const proxy = await flakyProxy(() => 'hang');
    const slow = new GatehouseClient({ url: proxy.url, apiKey: cp.ownerKey, retryDelayMs: 1, timeoutMs: 100 });
    await expect(slow.request(GetViewerDocument)).rejects.toMatchObject({ name: 'GatehouseNetworkError', code: 'TIMEOUT', attempts: 1 });
    expect(proxy.seen).toHaveLength(1);
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
