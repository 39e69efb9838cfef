import { afterAll, describe, expect, it } from 'vitest';
import { runQuickstart } from '../../../control-plane/cli/quickstart.js';
import { openDatabase, type Database } from '../../../control-plane/db/database.js';
import { migrateToLatest } from '../../../control-plane/db/migrate.js';
import { startTestControlPlane, type TestControlPlane } from '../../helpers/control-plane.js';
import { echoLoad, rawId, registerTestDataPlane, startAuditedDataPlane, storedCalls, waitForToken, type AuditedTestDataPlane } from '../../helpers/audit.js';
import { postgresBinDir, startPrivatePostgres, type PrivatePostgres } from '../../helpers/private-postgres.js';

const CALLS = 500;

let pg: PrivatePostgres | undefined;
let database: Database | undefined;
let cp: TestControlPlane | undefined;
let dp: AuditedTestDataPlane | undefined;

afterAll(async () => {
  await dp?.close();
  await cp?.close();
  await database?.close();
  await pg?.destroy();
});

// Runs with the Postgres suite (DATABASE_URL set) on a private cluster it may stop and start.
describe.skipIf(!process.env.DATABASE_URL || !postgresBinDir())('no audit data lost when Postgres restarts', () => {
  it('stores every call exactly once when the database server restarts mid-ingest', async () => {
    pg = await startPrivatePostgres();
    database = await openDatabase({ databaseUrl: pg.url });
    await migrateToLatest(database);
    cp = await startTestControlPlane(database);
    const registered = await registerTestDataPlane(cp, 'edge-pg-restart');
    const gateway = await runQuickstart({ url: cp.url, apiKey: cp.ownerKey, dataPlaneWaitMs: 0 });
    const controlPlane = cp;
    dp = await startAuditedDataPlane(() => controlPlane.url, registered.token);
    await waitForToken(`${dp.url}/mcp/quickstart`, gateway.token);
    const connectionId = rawId(gateway.connectionId);

    let answered = 0;
    const load = echoLoad(`${dp.url}/mcp/quickstart`, gateway.token, CALLS, 4, () => void answered++);
    await expect.poll(() => answered, { timeout: 15_000, interval: 10 }).toBeGreaterThanOrEqual(100);
    await pg.stop();
    const answeredWhileDown = answered;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(answered).toBeGreaterThan(answeredWhileDown);
    await pg.start();
    expect(await load).toBe(CALLS);

    await expect.poll(async () => (await storedCalls(database!, connectionId)).responses, { timeout: 15_000, interval: 100 }).toBe(CALLS);
    expect(await storedCalls(database, connectionId)).toEqual({ rows: CALLS * 4, ids: CALLS * 4, calls: CALLS, responses: CALLS, incomplete: 0 });
    expect(dp.shipper.stats.failures).toBeGreaterThan(0);
    expect(dp.shipper.stats.dropped).toBe(0);
  }, 90_000);
});
