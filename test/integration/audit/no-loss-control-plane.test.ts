import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runQuickstart, type QuickstartResult } from '../../../control-plane/cli/quickstart.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { startTestControlPlane, type TestControlPlane } from '../../helpers/control-plane.js';
import { echoLoad, rawId, registerTestDataPlane, startAuditedDataPlane, storedCalls, waitForToken, type AuditedTestDataPlane } from '../../helpers/audit.js';

const CALLS = 500;

let tdb: TestDatabase;
let cp: TestControlPlane;
let gateway: QuickstartResult;
let dp: AuditedTestDataPlane;

beforeAll(async () => {
  tdb = await createTestDatabase();
  cp = await startTestControlPlane(tdb.database);
  const registered = await registerTestDataPlane(cp, 'edge-no-loss');
  gateway = await runQuickstart({ url: cp.url, apiKey: cp.ownerKey, dataPlaneWaitMs: 0 });
  dp = await startAuditedDataPlane(() => cp.url, registered.token);
  await waitForToken(`${dp.url}/mcp/quickstart`, gateway.token);
}, 90_000);

afterAll(async () => {
  await dp?.close();
  await cp?.close();
  await tdb?.drop();
});

describe('no audit data lost', () => {
  it('stores every call exactly once when the control plane goes away under load and a new one starts on the same database', async () => {
    const connectionId = rawId(gateway.connectionId);
    const before = await storedCalls(tdb.database, connectionId);
    let answered = 0;
    const load = echoLoad(`${dp.url}/mcp/quickstart`, gateway.token, CALLS, 4, () => void answered++);
    await expect.poll(() => answered, { timeout: 15_000, interval: 10 }).toBeGreaterThanOrEqual(100);

    // The control plane goes away mid-load (in-flight batches are cut off); calls go on.
    const port = new URL(cp.url).port;
    await cp.close();
    const answeredWhileDown = answered;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(answered).toBeGreaterThan(answeredWhileDown);
    expect(dp.shipper.stats.failures).toBeGreaterThan(0);

    // A new control plane process on the same database and address (another address if
    // something took the port meanwhile: the data plane reads the URL per attempt).
    cp = await startTestControlPlane(tdb.database, { GATEHOUSE_CONTROL_PLANE_PORT: port }).catch((error: unknown) => {
      if ((error as { code?: string }).code !== 'EADDRINUSE') throw error;
      return startTestControlPlane(tdb.database);
    });
    expect(await load).toBe(CALLS);

    await expect.poll(async () => (await storedCalls(tdb.database, connectionId)).responses, { timeout: 15_000, interval: 100 }).toBe(before.responses + CALLS);
    const after = await storedCalls(tdb.database, connectionId);
    expect(after).toEqual({ rows: before.rows + CALLS * 4, ids: before.ids + CALLS * 4, calls: before.calls + CALLS, responses: before.responses + CALLS, incomplete: 0 });
    expect(dp.shipper.stats.dropped).toBe(0);
    // A batch stored while its answer was cut off is still being retried: it drains, and
    // its entries are not stored twice.
    await expect.poll(() => dp.shipper.buffered(), { timeout: 20_000, interval: 100 }).toBe(0);
    expect(await storedCalls(tdb.database, connectionId)).toEqual(after);
  }, 90_000);
});
