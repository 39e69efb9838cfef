import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { expect } from 'vitest';
import { startGatehouse, type RunningGatehouse } from '../../../control-plane/cli/start-gatehouse.js';
import { loadControlPlaneConfig } from '../../../control-plane/config.js';
import { createLogger } from '../../../control-plane/logger.js';
import { loadDataPlaneEnvironment } from '../../../data-plane/config.js';
import type { GatewaySnapshot, SnapshotFeature } from '../../../schema/snapshot/index.js';
import { TEST_ENCRYPTION_KEY } from '../../helpers/control-plane.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';

/**
 * A whole Gatehouse for threat tests: `gatehouse start` in one process (control plane,
 * data plane fed over the push channel, audit shipped to the control plane's ingest) on a
 * fresh test database, with GraphQL and MCP helpers.
 */

/** The poisoned fixture over stdio, run the way `fixtureCommand` runs the others. */
export const POISONED_FIXTURE = { command: process.execPath, args: ['--import', 'tsx', fileURLToPath(new URL('../../fixtures/mcp/poisoned-server.ts', import.meta.url))] };

export const ERR = '... on Error { __typename code message } ... on ForbiddenError { capability }';

/** The database id inside a global id. */
export const dbId = (globalId: string) => Buffer.from(globalId, 'base64url').toString().split(':')[1]!;

export class ThreatGatehouse {
  tdb!: TestDatabase;
  gatehouse!: RunningGatehouse;
  ownerKey!: string;
  #dataDir: string | undefined;
  readonly #clients: { client: Client; transport: StreamableHTTPClientTransport }[] = [];

  async start(): Promise<void> {
    this.tdb = await createTestDatabase();
    this.#dataDir = mkdtempSync(path.join(tmpdir(), 'gatehouse-threats-'));
    const config = loadControlPlaneConfig({
      GATEHOUSE_CONTROL_PLANE_PORT: '0',
      GATEHOUSE_DATA_DIR: this.#dataDir,
      GATEHOUSE_LOG_LEVEL: 'silent',
      GATEHOUSE_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY,
      GATEHOUSE_DISCOVERY_INTERVAL_SECONDS: '0',
    });
    const dataPlaneEnv = loadDataPlaneEnvironment({ GATEHOUSE_DATA_PLANE_PORT: '0' }, { standalone: false });
    this.gatehouse = await startGatehouse(config, dataPlaneEnv, { database: this.tdb.database, logger: createLogger(process.env.TEST_LOG_LEVEL ?? 'silent') });
    this.ownerKey = this.gatehouse.controlPlane.bootstrap!.adminKey;
  }

  async close(): Promise<void> {
    for (const { client, transport } of this.#clients) {
      await transport.terminateSession().catch(() => undefined);
      await client.close().catch(() => undefined);
    }
    await this.gatehouse?.close();
    await this.tdb?.drop();
    if (this.#dataDir) rmSync(this.#dataDir, { recursive: true, force: true });
  }

  async gql<T = any>(query: string, variables: Record<string, unknown> = {}, key = this.ownerKey): Promise<T> {
    const res = await fetch(`${this.gatehouse.controlPlaneUrl}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.json()) as { data: T; errors?: unknown[] };
    if (body.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(body.errors)}`);
    return body.data;
  }

  /** Creates a server and returns `{ id, name, reviewState }`. */
  async createServer(input: Record<string, unknown>): Promise<{ id: string; name: string; reviewState: string }> {
    const data = await this.gql(`mutation($input: CreateServerInput!) { createServer(input: $input) { __typename ... on CreateServerSuccess { server { id name reviewState } } ${ERR} } }`, { input });
    if (data.createServer.__typename !== 'CreateServerSuccess') throw new Error(JSON.stringify(data.createServer));
    return data.createServer.server;
  }

  /** Discovers a server now; returns the run (`id` is its global id). */
  async discover(serverId: string): Promise<{ id: string; status: string }> {
    const data = await this.gql(`mutation($id: ID!) { discoverServer(id: $id) { ... on DiscoverServerSuccess { run { id status errorMessage } } ${ERR} } }`, { id: serverId });
    expect(data.discoverServer.run, JSON.stringify(data.discoverServer)).toMatchObject({ status: 'OK' });
    return data.discoverServer.run;
  }

  /** Waits until the data plane holds a snapshot satisfying `predicate`. */
  async dataPlaneSnapshot(predicate: (s: GatewaySnapshot) => boolean, timeoutMs = 20_000): Promise<GatewaySnapshot> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const current = this.gatehouse.snapshots.current()?.snapshot;
      if (current && predicate(current)) return current;
      if (Date.now() > deadline) throw new Error(`the data plane did not receive the expected snapshot (at v${current?.version})`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** A gateway with `serverId` assigned under `prefix`, tools and prompts provisioned, and a token for it. */
  async gatewayWith(slug: string, serverId: string, prefix: string): Promise<{ token: string; gatewayId: string; assignmentId: string }> {
    const gw = await this.gql(`mutation($input: CreateGatewayInput!) { createGateway(input: $input) { ... on CreateGatewaySuccess { gateway { id } } ${ERR} } }`, { input: { name: slug, slug } });
    const gatewayId = gw.createGateway.gateway.id;
    const assigned = await this.gql(`mutation($input: AssignServerInput!) { assignServer(input: $input) { __typename ... on AssignServerSuccess { assignment { id } } ${ERR} } }`, {
      input: { gatewayId, serverId, namespacePrefix: prefix },
    });
    expect(assigned.assignServer.__typename, JSON.stringify(assigned)).toBe('AssignServerSuccess');
    const assignmentId = assigned.assignServer.assignment.id;
    for (const featureType of ['TOOLS', 'PROMPTS']) {
      await this.gql(`mutation($a: ID!, $input: SetProvisioningInput!) { setProvisioning(assignmentId: $a, input: $input) { __typename } }`, { a: assignmentId, input: { featureType, mode: 'ALLOW_ALL' } });
    }
    const host = await this.gql(`mutation($input: CreateHostInput!) { createHost(input: $input) { ... on CreateHostSuccess { host { id } } } }`, { input: { name: `agent-${slug}` } });
    const connection = await this.gql(`mutation($input: CreateConnectionInput!) { createConnection(input: $input) { ... on CreateConnectionSuccess { connection { id } } } }`, {
      input: { hostId: host.createHost.host.id, gatewayId, name: slug },
    });
    const token = await this.gql(`mutation($input: CreateAccessTokenInput!) { createAccessToken(input: $input) { ... on CreateAccessTokenSuccess { created { secret } } } }`, {
      input: { connectionId: connection.createConnection.connection.id, name: slug },
    });
    const secret: string = token.createAccessToken.created.secret;
    const tokenHash = createHash('sha256').update(secret).digest('hex');
    await this.dataPlaneSnapshot((s) => tokenHash in s.access.tokens);
    return { token: secret, gatewayId, assignmentId };
  }

  async connect(slug: string, token: string): Promise<Client> {
    const transport = new StreamableHTTPClientTransport(new URL(`${this.gatehouse.dataPlaneUrl}/mcp/${slug}`), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
    const client = new Client({ name: 'threats-test', version: '1.0.0' });
    await client.connect(transport);
    this.#clients.push({ client, transport });
    return client;
  }
}

/** A feature of a gateway in a snapshot, by exposed name. */
export function featureOf(snapshot: GatewaySnapshot, slug: string, type: 'tools' | 'prompts', name: string): SnapshotFeature | undefined {
  const gateway = snapshot.gateways.find((g) => g.slug === slug);
  for (const assignment of gateway?.assignments ?? []) {
    const found = assignment.features[type].find((f) => f.name === name);
    if (found) return found;
  }
  return undefined;
}
