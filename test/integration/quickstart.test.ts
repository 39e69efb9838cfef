import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatQuickstart, runQuickstart, type QuickstartResult } from '../../control-plane/cli/quickstart.js';
import { startGatehouse, type RunningGatehouse } from '../../control-plane/cli/start-gatehouse.js';
import { loadControlPlaneConfig } from '../../control-plane/config.js';
import { createLogger } from '../../control-plane/logger.js';
import { loadDataPlaneEnvironment } from '../../data-plane/config.js';
import { TEST_ENCRYPTION_KEY } from '../helpers/control-plane.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

let tdb: TestDatabase;
let dataDir: string;
let gatehouse: RunningGatehouse;
let apiKey: string;
const clients: { client: Client; transport: StreamableHTTPClientTransport }[] = [];

/** Both planes, the way `gatehouse start` runs them, on port 0 over the test database. */
function start(): Promise<RunningGatehouse> {
  const config = loadControlPlaneConfig({
    GATEHOUSE_CONTROL_PLANE_PORT: '0',
    GATEHOUSE_DATA_DIR: dataDir,
    GATEHOUSE_LOG_LEVEL: 'silent',
    GATEHOUSE_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY,
    GATEHOUSE_DISCOVERY_INTERVAL_SECONDS: '0',
  });
  const dataPlaneEnv = loadDataPlaneEnvironment({ GATEHOUSE_DATA_PLANE_PORT: '0' }, { standalone: false });
  return startGatehouse(config, dataPlaneEnv, { database: tdb.database, logger: createLogger(process.env.TEST_LOG_LEVEL ?? 'silent') });
}

async function connect(result: QuickstartResult): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL(result.mcpUrl), {
    requestInit: { headers: { Authorization: `Bearer ${result.token}` } },
  });
  const client = new Client({ name: 'quickstart-test', version: '1.0.0' });
  await client.connect(transport);
  clients.push({ client, transport });
  return client;
}

async function activeDataPlanes(): Promise<{ name: string; revoked: boolean }[]> {
  const rows = await tdb.database.db.selectFrom('data_planes').select(['name', 'revoked_at']).orderBy('created_at').execute();
  return rows.map((r) => ({ name: r.name, revoked: r.revoked_at !== null }));
}

beforeAll(async () => {
  tdb = await createTestDatabase();
  dataDir = mkdtempSync(path.join(tmpdir(), 'gatehouse-quickstart-'));
  gatehouse = await start();
  apiKey = gatehouse.controlPlane.bootstrap!.adminKey;
}, 60_000);

afterAll(async () => {
  for (const { client } of clients) await client.close().catch(() => undefined);
  await gatehouse?.close();
  await tdb?.drop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('npm start, then npm run quickstart, then a tool call', () => {
  let first: QuickstartResult;

  it('starts both planes: the embedded data plane is registered and serves snapshot v1', async () => {
    expect(gatehouse.snapshots.current()?.version).toBeGreaterThanOrEqual(1);
    expect(gatehouse.dataPlanePublicUrl).toBe(gatehouse.dataPlaneUrl);
    expect(await activeDataPlanes()).toEqual([{ name: 'embedded', revoked: false }]);
    expect(statSync(path.join(dataDir, 'session-secret')).mode & 0o777).toBe(0o600);
    expect(statSync(path.join(dataDir, 'embedded-data-plane-token')).mode & 0o777).toBe(0o600);
    const ready = (await (await fetch(`${gatehouse.dataPlaneUrl}/readyz`)).json()) as { status: string; link: { state: string } };
    expect(ready).toMatchObject({ status: 'ready', link: { state: 'connected' } });
  });

  it('sets up a gateway through the API and prints how to connect', async () => {
    first = await runQuickstart({ url: gatehouse.controlPlaneUrl, apiKey });
    expect(first).toEqual({
      mcpUrl: `${gatehouse.dataPlaneUrl}/mcp/quickstart`,
      token: expect.stringMatching(/^gh_at_/),
      graphqlUrl: `${gatehouse.controlPlaneUrl}/graphql`,
      gatewayId: expect.any(String),
      serverId: expect.any(String),
      hostId: expect.any(String),
      connectionId: expect.any(String),
    });
    const text = formatQuickstart(first);
    expect(text).toContain(`claude mcp add --transport http quickstart ${first.mcpUrl} --header "Authorization: Bearer ${first.token}"`);
    expect(text).toContain('"mcpServers"');
  }, 60_000);

  it('lets the SDK client list server-everything tools through the gateway and call echo', async () => {
    const client = await connect(first);
    expect(client.getServerVersion()).toMatchObject({ name: 'gatehouse/quickstart' });
    const { tools } = await client.listTools();
    expect(tools.map((tool) => tool.name)).toContain('echo');
    expect(await client.callTool({ name: 'echo', arguments: { message: 'hello from the quickstart' } })).toMatchObject({
      content: [{ type: 'text', text: 'Echo: hello from the quickstart' }],
    });
  }, 60_000);

  it('is idempotent: a second run reuses everything and adds a token', async () => {
    const second = await runQuickstart({ url: gatehouse.controlPlaneUrl, apiKey });
    expect(second).toMatchObject({ gatewayId: first.gatewayId, serverId: first.serverId, hostId: first.hostId, connectionId: first.connectionId, mcpUrl: first.mcpUrl });
    expect(second.token).not.toBe(first.token);
    const client = await connect(second);
    expect(await client.callTool({ name: 'echo', arguments: { message: 'again' } })).toMatchObject({ content: [{ text: 'Echo: again' }] });
  }, 60_000);

  it('reuses the embedded data plane across restarts, and replaces it when it was revoked', async () => {
    await gatehouse.close();
    gatehouse = await start();
    expect(await activeDataPlanes()).toEqual([{ name: 'embedded', revoked: false }]);
    const afterRestart = await connect({ ...first, mcpUrl: `${gatehouse.dataPlaneUrl}/mcp/quickstart` });
    expect(await afterRestart.callTool({ name: 'echo', arguments: { message: 'restarted' } })).toMatchObject({ content: [{ text: 'Echo: restarted' }] });

    await tdb.database.db.updateTable('data_planes').set({ revoked_at: new Date() }).execute();
    await gatehouse.close();
    gatehouse = await start();
    expect(await activeDataPlanes()).toEqual([
      { name: 'embedded', revoked: true },
      { name: 'embedded-2', revoked: false },
    ]);
    expect(gatehouse.snapshots.current()).toBeDefined();
  }, 60_000);
});
