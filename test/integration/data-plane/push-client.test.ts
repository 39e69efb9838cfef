import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataPlaneViewer } from '../../../control-plane/data-planes/data-plane.service.js';
import { buildDataPlane, type DataPlane } from '../../../data-plane/app.js';
import { PushSnapshotSource, type SnapshotDelivery } from '../../../data-plane/snapshot/push-client.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { ok, startTestControlPlane, type TestControlPlane } from '../../helpers/control-plane.js';

const SECRET = 'push-client-session-secret-0123456789abcdef';
const ERRORS = `... on Error { __typename code message }`;

let tdb: TestDatabase;
let cp: TestControlPlane;
/** Where the push client connects; repointed when a new control plane takes over. */
let controlPlaneUrl: string;
let snapshots: PushSnapshotSource;
let plane: DataPlane;
let planeUrl: string;
let dataPlane: { id: string; token: string };
let gatewayId: string;
let accessToken: string;

const rawId = (globalId: string) => Buffer.from(globalId, 'base64url').toString().split(':')[1]!;

async function mutate(field: string, args: string, vars: Record<string, unknown>, selection: string, on = cp) {
  const res = ok(await on.gql(`mutation(${args}) { ${field} { __typename ${selection} ${ERRORS} } }`, vars));
  const payload = res[Object.keys(res)[0]!];
  if (!payload.__typename.endsWith('Success')) throw new Error(`${field}: ${JSON.stringify(payload)}`);
  return payload;
}

/** POSTs `initialize` to the gateway with the access token; the status says what the data plane enforces. */
async function initializeStatus(): Promise<number> {
  const response = await fetch(`${planeUrl}/mcp/eng`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${accessToken}` },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } }),
  });
  await response.body?.cancel();
  return response.status;
}

async function readyz(): Promise<{ status: number; body: any }> {
  const response = await fetch(`${planeUrl}/readyz`);
  return { status: response.status, body: await response.json() };
}

async function dataPlaneStatus(on = cp) {
  const data = ok(await on.gql(`{ dataPlanes(first: 10) { edges { node { id ackedVersion inSync lastRejection { version reason } } } } }`));
  return data.dataPlanes.edges.map((e: any) => e.node).find((n: any) => n.id === dataPlane.id);
}

beforeAll(async () => {
  tdb = await createTestDatabase();
  cp = await startTestControlPlane(tdb.database);
  controlPlaneUrl = cp.url;
  const registered = await mutate(
    'registerDataPlane(input: $input)',
    '$input: RegisterDataPlaneInput!',
    { input: { name: 'edge-1' } },
    '... on RegisterDataPlaneSuccess { registered { token dataPlane { id } } }',
  );
  dataPlane = { id: registered.registered.dataPlane.id, token: registered.registered.token };
  snapshots = new PushSnapshotSource({ url: () => controlPlaneUrl, token: dataPlane.token, initialRetryDelayMs: 50, maxRetryDelayMs: 400 });
  plane = buildDataPlane({ port: 0, sessionSecret: SECRET }, { snapshots });
  planeUrl = (await plane.listen()).url;
}, 60_000);

afterAll(async () => {
  await plane?.close();
  await snapshots?.close();
  await cp?.close();
  await tdb?.drop();
});

describe('push client against a real control plane', () => {
  it('fails closed before the first snapshot, then receives v1, serves it and acknowledges it', async () => {
    expect((await readyz()).status).toBe(503);
    snapshots.start();
    const first = await snapshots.ready(10_000);
    expect(first.version).toBe(1);
    expect(first.workspaceId).toBe(cp.workspaceId);
    expect(snapshots.link()).toMatchObject({ state: 'connected', lastContactAt: expect.any(Number) });
    const ready = await readyz();
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ status: 'ready', snapshotVersion: 1, link: { state: 'connected' } });
    await expect.poll(() => dataPlaneStatus()).toMatchObject({ ackedVersion: 1, inSync: true });
  });

  it('applies a gateway kill switch within a second, end to end', async () => {
    const gateway = await mutate('createGateway(input: $input)', '$input: CreateGatewayInput!', { input: { name: 'Engineering', slug: 'eng' } }, '... on CreateGatewaySuccess { gateway { id } }');
    gatewayId = gateway.gateway.id;
    const host = await mutate('createHost(input: $input)', '$input: CreateHostInput!', { input: { name: 'ci-agent' } }, '... on CreateHostSuccess { host { id } }');
    const connection = await mutate(
      'createConnection(input: $input)',
      '$input: CreateConnectionInput!',
      { input: { hostId: host.host.id, gatewayId, name: 'ci' } },
      '... on CreateConnectionSuccess { connection { id } }',
    );
    const token = await mutate(
      'createAccessToken(input: $input)',
      '$input: CreateAccessTokenInput!',
      { input: { connectionId: connection.connection.id, name: 'ci' } },
      '... on CreateAccessTokenSuccess { created { secret } }',
    );
    accessToken = token.created.secret;
    await expect.poll(initializeStatus, { timeout: 5_000 }).toBe(200);

    const started = performance.now();
    await mutate('setGatewayDisabled(id: $id, disabled: true)', '$id: ID!', { id: gatewayId }, '... on SetGatewayDisabledSuccess { gateway { id } }');
    await expect.poll(initializeStatus, { timeout: 5_000, interval: 20 }).toBe(403);
    expect(performance.now() - started).toBeLessThan(1_000);

    await mutate('setGatewayDisabled(id: $id, disabled: false)', '$id: ID!', { id: gatewayId }, '... on SetGatewayDisabledSuccess { gateway { id } }');
    await expect.poll(initializeStatus, { timeout: 5_000, interval: 20 }).toBe(200);
    await expect.poll(() => dataPlaneStatus()).toMatchObject({ ackedVersion: snapshots.current()!.version, inSync: true });
  });

  it('rejects a replayed and a tampered delivery, keeps the held snapshot, and reports the reason to the control plane', async () => {
    const held = snapshots.current()!;
    const stored = (await cp.app.services.snapshots.latest(cp.workspaceId, { fresh: true }))!;
    expect(stored.version).toBe(held.version);
    const viewer = dataPlaneViewer(cp.workspaceId, rawId(dataPlane.id));
    const replay = (await cp.app.services.dataPlanes.deliver(viewer, stored)) as SnapshotDelivery;

    const stale = await snapshots.handleDelivery(replay);
    expect(stale).toMatchObject({ accepted: false, version: held.version, reason: expect.stringMatching(/^STALE_VERSION: /) });
    await expect.poll(async () => (await dataPlaneStatus()).lastRejection).toMatchObject({ version: held.version, reason: expect.stringMatching(/^STALE_VERSION: /) });

    const body = JSON.parse(JSON.stringify(replay.body)) as { version: number; gateways: { name: string }[] };
    body.version = held.version + 1;
    body.gateways[0]!.name = 'Tampered';
    const tampered = await snapshots.handleDelivery({ ...replay, version: held.version + 1, body });
    expect(tampered).toMatchObject({ accepted: false, reason: expect.stringMatching(/^HASH_MISMATCH: /) });
    await expect.poll(async () => (await dataPlaneStatus()).lastRejection).toMatchObject({ version: held.version + 1, reason: expect.stringMatching(/^HASH_MISMATCH: /) });

    expect(snapshots.current()).toBe(held);
    expect(await initializeStatus()).toBe(200);
  });

  it('keeps enforcing the last good snapshot while the control plane is down, says so in /readyz, and resumes on a new one', async () => {
    const held = snapshots.current()!.version;
    await cp.close();
    await expect.poll(() => snapshots.link().state, { timeout: 5_000 }).toBe('disconnected');

    const degraded = await readyz();
    expect(degraded.status).toBe(200);
    expect(degraded.body).toMatchObject({ status: 'degraded', snapshotVersion: held, link: { state: 'disconnected', since: expect.any(String) } });
    expect(degraded.body.message).toMatch(new RegExp(`^serving last good snapshot v${held}, control plane unreachable since \\d{4}-\\d\\d-\\d\\dT`));
    expect(await initializeStatus()).toBe(200);
    // Reconnect attempts fail meanwhile and say why.
    await expect.poll(() => snapshots.link(), { timeout: 5_000 }).toMatchObject({ lastError: expect.stringContaining('ECONNREFUSED') });

    // A new control plane on the same database, at a new address.
    cp = await startTestControlPlane(tdb.database);
    controlPlaneUrl = cp.url;
    await expect.poll(() => snapshots.link().state, { timeout: 5_000 }).toBe('connected');
    expect(snapshots.current()?.version).toBe(held);

    await mutate('setGatewayDisabled(id: $id, disabled: true)', '$id: ID!', { id: gatewayId }, '... on SetGatewayDisabledSuccess { gateway { id } }');
    await expect.poll(() => snapshots.current()?.version, { timeout: 5_000 }).toBe(held + 1);
    expect(await initializeStatus()).toBe(403);
    expect((await readyz()).body).toMatchObject({ status: 'ready', snapshotVersion: held + 1 });
    await expect.poll(() => dataPlaneStatus()).toMatchObject({ ackedVersion: held + 1, inSync: true });
  }, 30_000);
});
