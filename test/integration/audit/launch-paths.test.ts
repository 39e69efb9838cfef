import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runQuickstart, type QuickstartResult } from '../../../control-plane/cli/quickstart.js';
import { startGatehouse, startStandaloneDataPlane, type RunningDataPlane, type RunningGatehouse } from '../../../control-plane/cli/start-gatehouse.js';
import { loadControlPlaneConfig } from '../../../control-plane/config.js';
import { createLogger } from '../../../control-plane/logger.js';
import { loadDataPlaneEnvironment } from '../../../data-plane/config.js';
import { TEST_ENCRYPTION_KEY } from '../../helpers/control-plane.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { echoLoad, rawId, registerTestDataPlane, waitForToken } from '../../helpers/audit.js';

let tdb: TestDatabase;
let dataDir: string;
let gatehouse: RunningGatehouse;
let standalone: RunningDataPlane;
let standaloneId: string;
let gateway: QuickstartResult;

beforeAll(async () => {
  tdb = await createTestDatabase();
  dataDir = mkdtempSync(path.join(tmpdir(), 'gatehouse-audit-launch-'));
  const config = loadControlPlaneConfig({
    GATEHOUSE_CONTROL_PLANE_PORT: '0',
    GATEHOUSE_DATA_DIR: dataDir,
    GATEHOUSE_LOG_LEVEL: 'silent',
    GATEHOUSE_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY,
    GATEHOUSE_DISCOVERY_INTERVAL_SECONDS: '0',
  });
  const logger = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
  gatehouse = await startGatehouse(config, loadDataPlaneEnvironment({ GATEHOUSE_DATA_PLANE_PORT: '0' }, { standalone: false }), { database: tdb.database, logger });
  const adminKey = gatehouse.controlPlane.bootstrap!.adminKey;
  gateway = await runQuickstart({ url: gatehouse.controlPlaneUrl, apiKey: adminKey });

  const gql = async (query: string, variables?: Record<string, unknown>) => {
    const response = await fetch(`${gatehouse.controlPlaneUrl}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${adminKey}` },
      body: JSON.stringify({ query, variables }),
    });
    return (await response.json()) as { data: any; errors?: unknown };
  };
  const registered = await registerTestDataPlane({ gql }, 'edge-standalone');
  standaloneId = registered.id;
  const env = loadDataPlaneEnvironment(
    {
      GATEHOUSE_CONTROL_PLANE_URL: gatehouse.controlPlaneUrl,
      GATEHOUSE_DATA_PLANE_TOKEN: registered.token,
      GATEHOUSE_SESSION_SECRET: 'standalone-audit-session-secret-0123456789',
      GATEHOUSE_DATA_PLANE_PORT: '0',
      GATEHOUSE_AUDIT_BUFFER_ENTRIES: '1000',
      GATEHOUSE_AUDIT_BUILD_ON: 'worker', // the embedded one builds on its event loop (the default)
    },
    { standalone: true },
  );
  standalone = await startStandaloneDataPlane(env, logger.child({ plane: 'standalone' }));
  await standalone.snapshots.ready(20_000);
  await waitForToken(`${standalone.url}/mcp/quickstart`, gateway.token);
}, 90_000);

afterAll(async () => {
  await standalone?.close();
  await gatehouse?.close();
  await tdb?.drop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('both launch paths ship audit entries to the control plane', () => {
  it('records calls through the embedded data plane (gatehouse start) and a separate one (gatehouse data-plane), each under its own id', async () => {
    const embedded = await tdb.database.db.selectFrom('data_planes').select('id').where('name', '=', 'embedded').executeTakeFirstOrThrow();
    expect(await echoLoad(gateway.mcpUrl, gateway.token, 5, 1)).toBe(5);
    expect(await echoLoad(`${standalone.url}/mcp/quickstart`, gateway.token, 7, 1)).toBe(7);
    const connectionId = rawId(gateway.connectionId);
    const perDataPlane = async () =>
      (
        await sql<{ data_plane_id: string; n: string }>`
          SELECT data_plane_id, count(*)::text AS n FROM audit_entries
          WHERE connection_id = ${connectionId} AND method = 'tools/call' GROUP BY data_plane_id ORDER BY data_plane_id`.execute(tdb.database.db)
      ).rows.map((row) => [row.data_plane_id, Number(row.n)]);
    await expect
      .poll(perDataPlane, { timeout: 10_000, interval: 100 })
      .toEqual(
        [
          [embedded.id, 20],
          [standaloneId, 28],
        ].sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
      );
  });
});
