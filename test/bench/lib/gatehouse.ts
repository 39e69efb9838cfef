/**
 * Gatehouse for the benchmark, as production runs it: a control plane process and
 * separate data-plane processes fed over the push channel, provisioned through the
 * public GraphQL API with the SDK. Rate limiting stays on (with limits the load never
 * reaches) so its cost is measured too.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GatehouseClient } from '../../../sdk/client.js';
import {
  AssignServerDocument,
  CreateAccessTokenDocument,
  CreateConnectionDocument,
  CreateGatewayDocument,
  CreateHostDocument,
  CreateServerDocument,
  DiscoverServerDocument,
  PinFeatureDocument,
  RegisterDataPlaneDocument,
  SetProvisioningDocument,
} from '../../../sdk/generated/graphql.js';
import { unwrap } from '../../../sdk/unwrap.js';
import { REPO, freePort, gatehouseArgs, start, type Spawned } from './processes.js';
import { createScratchDatabase } from './scratch-database.js';

export interface ControlPlaneProcess {
  readonly url: string;
  readonly apiKey: string;
  readonly client: GatehouseClient;
  readonly spawned: Spawned;
  readonly dataDir: string;
  /** `postgres` when DATABASE_URL was set, else the embedded database. */
  readonly databaseKind: 'postgres' | 'pglite';
  stop(): Promise<void>;
}

const QUIET = { GATEHOUSE_LOG_LEVEL: 'warn' };
const SESSION_SECRET = randomBytes(32).toString('hex');

/**
 * With `DATABASE_URL` set, the control plane gets a fresh database of its own on that
 * server (dropped afterwards), so audit ingest runs on Postgres as in production; without
 * it, the embedded database (which then shares the machine's cores with the data plane).
 */
async function benchDatabase(): Promise<{ url: string | undefined; drop(): Promise<void> }> {
  const base = process.env.DATABASE_URL;
  if (!base) return { url: undefined, drop: async () => undefined };
  return createScratchDatabase(base);
}

export async function startControlPlane(): Promise<ControlPlaneProcess> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'gatehouse-bench-'));
  const database = await benchDatabase();
  const port = await freePort();
  const apiKey = `gh_admin_${randomBytes(24).toString('hex')}`;
  const { spawned } = await start('control plane', process.execPath, gatehouseArgs(['control-plane']), {
    env: {
      ...QUIET,
      GATEHOUSE_LOG_LEVEL: 'info',
      GATEHOUSE_DATA_DIR: dataDir,
      DATABASE_URL: database.url,
      GATEHOUSE_CONTROL_PLANE_PORT: String(port),
      GATEHOUSE_BOOTSTRAP_ADMIN_KEY: apiKey,
      GATEHOUSE_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      GATEHOUSE_DISCOVERY_INTERVAL_SECONDS: '0',
      GATEHOUSE_GRAPHIQL: 'false',
    },
    ready: /is up|ready at|GraphQL at/i,
    timeoutMs: 60_000,
  });
  const url = `http://127.0.0.1:${port}`;
  const client = new GatehouseClient({ url, apiKey });
  return {
    url,
    apiKey,
    client,
    spawned,
    dataDir,
    databaseKind: database.url ? 'postgres' : 'pglite',
    stop: async () => {
      await client.close();
      await spawned.stop();
      await database.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The Node flags package.json's `gatehouse` script runs the bundle with (`node --flag … main.mjs`). */
function launcherNodeFlags(): string[] {
  const script = (JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.gatehouse!;
  const command = script.slice(script.lastIndexOf('node '));
  return command.split(/\s+/).slice(1).filter((word) => word.startsWith('--'));
}

export interface DataPlaneProcess {
  readonly url: string;
  readonly spawned: Spawned;
}

export async function registerDataPlaneToken(cp: ControlPlaneProcess, name: string): Promise<string> {
  return unwrap(await cp.client.request(RegisterDataPlaneDocument, { input: { name } }), 'registerDataPlane').registered.token;
}

export async function startDataPlane(cp: ControlPlaneProcess, token: string, env: Record<string, string> = {}, nodeFlags: readonly string[] = []): Promise<DataPlaneProcess> {
  const port = await freePort();
  // As `npm run gatehouse -- data-plane` launches it: the bundle, with the script's Node flags.
  const args = [...launcherNodeFlags(), ...nodeFlags, ...gatehouseArgs(['data-plane', '--control-plane', cp.url, '--token', token, '--port', String(port)])];
  const { spawned } = await start('data plane', process.execPath, args, {
    env: {
      GATEHOUSE_LOG_LEVEL: 'info',
      GATEHOUSE_SESSION_SECRET: SESSION_SECRET,
      GATEHOUSE_RATE_LIMIT_IP_CAPACITY: '100000000',
      GATEHOUSE_RATE_LIMIT_IP_REFILL_PER_SECOND: '100000000',
      GATEHOUSE_RATE_LIMIT_TOKEN_CAPACITY: '100000000',
      GATEHOUSE_RATE_LIMIT_TOKEN_REFILL_PER_SECOND: '100000000',
      ...env,
    },
    ready: /data plane is up/,
    timeoutMs: 60_000,
  });
  return { url: `http://127.0.0.1:${port}`, spawned };
}

export interface BenchGateway {
  readonly slug: string;
  readonly gatewayId: string;
  readonly assignmentIds: readonly string[];
  readonly token: string;
}

export type ServerSpec =
  | { readonly name: string; readonly remoteUrl: string }
  | { readonly name: string; readonly command: string; readonly args: readonly string[] };

/** Registers and discovers a server; returns its id. */
export async function addServer(cp: ControlPlaneProcess, spec: ServerSpec): Promise<string> {
  const input =
    'remoteUrl' in spec
      ? { name: spec.name, remote: { url: spec.remoteUrl } }
      : { name: spec.name, managed: { launch: 'STDIO' as const, command: spec.command, args: [...spec.args] } };
  const { server } = unwrap(await cp.client.request(CreateServerDocument, { input }), 'createServer');
  const { run } = unwrap(await cp.client.request(DiscoverServerDocument, { id: server.id }), 'discoverServer');
  if (run.status !== 'OK') throw new Error(`discovering ${spec.name} failed: ${run.errorCode} ${run.errorMessage}`);
  return server.id;
}

/**
 * A gateway with the servers assigned (prefix `s<i>` when more than one), every feature
 * provisioned, `echo` pinned when `pin`, an agent host and a token.
 */
export async function addGateway(cp: ControlPlaneProcess, slug: string, serverIds: readonly string[], options: { pin: boolean }): Promise<BenchGateway> {
  const { gateway } = unwrap(await cp.client.request(CreateGatewayDocument, { input: { name: slug, slug } }), 'createGateway');
  const assignmentIds: string[] = [];
  for (const [i, serverId] of serverIds.entries()) {
    const { assignment } = unwrap(
      await cp.client.request(AssignServerDocument, { input: { gatewayId: gateway.id, serverId, namespacePrefix: serverIds.length > 1 ? `s${i}` : '' } }),
      'assignServer',
    );
    assignmentIds.push(assignment.id);
    unwrap(await cp.client.request(SetProvisioningDocument, { assignmentId: assignment.id, input: { featureType: 'TOOLS', mode: 'ALLOW_ALL' } }), 'setProvisioning');
    if (options.pin) unwrap(await cp.client.request(PinFeatureDocument, { assignmentId: assignment.id, input: { featureType: 'TOOLS', name: 'echo' } }), 'pinFeature');
  }
  const { host } = unwrap(await cp.client.request(CreateHostDocument, { input: { name: `${slug}-agent`, kind: 'AGENT' } }), 'createHost');
  const { connection } = unwrap(await cp.client.request(CreateConnectionDocument, { input: { hostId: host.id, gatewayId: gateway.id, name: 'bench' } }), 'createConnection');
  const { created } = unwrap(await cp.client.request(CreateAccessTokenDocument, { input: { connectionId: connection.id, name: 'bench' } }), 'createAccessToken');
  return { slug, gatewayId: gateway.id, assignmentIds, token: created.secret };
}

/** Polls a gateway URL until the data plane serves the token (the snapshot arrived). */
export async function waitForGateway(url: string, token: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}` },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench-wait', version: '1' } } }),
      });
      last = `${response.status} ${await response.text()}`;
      if (response.ok) return;
    } catch (error) {
      last = String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${url} did not serve the gateway within ${timeoutMs} ms: ${last}`);
}
