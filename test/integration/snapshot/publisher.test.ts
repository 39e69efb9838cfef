import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../control-plane/db/database.js';
import { Vault } from '../../../control-plane/identities/vault.js';
import { SnapshotPublisher } from '../../../control-plane/snapshot/publisher.js';
import { loadSnapshotSource } from '../../../control-plane/snapshot/repository.js';
import { SnapshotSecretSealer, loadOrCreateSnapshotKey } from '../../../control-plane/snapshot/snapshot-key.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { TEST_ENCRYPTION_KEY, ok, startTestControlPlane, type TestControlPlane } from '../../helpers/control-plane.js';

let tdb: TestDatabase;
let cp: TestControlPlane;
let otherDb: Database | undefined;
const vault = new Vault([{ id: 'test', key: Buffer.from(TEST_ENCRYPTION_KEY.split(':')[1]!, 'base64') }]);

beforeAll(async () => {
  tdb = await createTestDatabase();
  cp = await startTestControlPlane(tdb.database);
  otherDb = tdb.url ? await tdb.openAnother() : undefined;
});
afterAll(async () => {
  await cp?.close();
  await otherDb?.close();
  await tdb?.drop();
});

async function versions(): Promise<number[]> {
  const rows = await tdb.database.db.selectFrom('snapshots').select('version').where('workspace_id', '=', cp.workspaceId).orderBy('version').execute();
  return rows.map((r) => Number(r.version));
}

describe('SnapshotPublisher', () => {
  it('reads a workspace in a fixed number of statements, whatever its size', async () => {
    const key = await loadOrCreateSnapshotKey(tdb.database.db, vault, cp.workspaceId);
    const sealer = new SnapshotSecretSealer(vault, key);
    // Count only this read's statements: the control plane's own background publishes share
    // `tdb.database.stats` and would race a before/after difference of it.
    const count = async () => {
      let statements = 0;
      const counted = tdb.database.db.withPlugin({
        transformQuery: (args) => (statements++, args.node),
        transformResult: async (args) => args.result,
      });
      await loadSnapshotSource(counted, cp.workspaceId, sealer);
      return statements;
    };
    const small = await count();
    for (let i = 0; i < 5; i++) ok(await cp.gql(`mutation { createGateway(input: { name: "Size ${i}" }) { __typename } }`));
    for (let i = 0; i < 5; i++) ok(await cp.gql(`mutation { createTeam(input: { name: "Size ${i}" }) { __typename } }`));
    expect(await count()).toBe(small);
    expect(small).toBe(18);
  });

  it('publishes each change once, however many processes compile it at once', async () => {
    // Two more publishers, as two more control-plane processes would run (on Postgres with their own connections).
    const a = new SnapshotPublisher(tdb.database, vault);
    const b = new SnapshotPublisher(otherDb ?? tdb.database, vault);
    await new Promise((r) => setTimeout(r, 400)); // let the control plane's own publish of the changes above settle
    const before = await versions();
    await tdb.database.db.updateTable('workspaces').set({ name: `Renamed ${randomUUID()}` }).where('id', '=', cp.workspaceId).execute();
    const results = await Promise.all([a.publishNow(cp.workspaceId), b.publishNow(cp.workspaceId), a.publishNow(cp.workspaceId)]);
    expect(results.map((r) => r.outcome).sort()).toEqual(['published', 'unchanged', 'unchanged']);
    expect(await versions()).toEqual([...before, before.at(-1)! + 1]);
  });

  it('keeps the last 20 versions', async () => {
    const publisher = new SnapshotPublisher(tdb.database, vault);
    for (let i = 0; i < 22; i++) {
      await tdb.database.db.updateTable('workspaces').set({ name: `Prune ${i}` }).where('id', '=', cp.workspaceId).execute();
      await publisher.publishNow(cp.workspaceId);
    }
    const kept = await versions();
    expect(kept).toHaveLength(20);
    expect(kept.at(-1)! - kept[0]!).toBe(19);
  });

  it('keeps serving the last version and records snapshot.compile_failed when rows do not compile', async () => {
    const publisher = new SnapshotPublisher(tdb.database, vault);
    const before = await versions();
    // Rows the API can never write (the schema cannot say "lowercase hex"), to reach the error path.
    const host = ok(await cp.gql(`mutation { createHost(input: { name: "Broken" }) { ... on CreateHostSuccess { host { id } } } }`)).createHost.host.id;
    const gateway = ok(await cp.gql(`mutation { createGateway(input: { name: "Broken gw" }) { ... on CreateGatewaySuccess { gateway { id } } } }`)).createGateway.gateway.id;
    const conn = ok(
      await cp.gql(`mutation($h: ID!, $g: ID!) { createConnection(input: { hostId: $h, gatewayId: $g, name: "c" }) { ... on CreateConnectionSuccess { connection { id } } } }`, { h: host, g: gateway }),
    ).createConnection.connection.id;
    await tdb.database.db
      .insertInto('access_tokens')
      .values({
        id: randomUUID(),
        workspace_id: cp.workspaceId,
        connection_id: Buffer.from(conn, 'base64url').toString().split(':')[1]!,
        name: 'bad',
        token_hash: 'NOT-A-HASH',
        token_prefix: 'x',
        created_by: 'test',
      })
      .execute();
    await new Promise((r) => setTimeout(r, 400));
    const result = await publisher.publishNow(cp.workspaceId);
    expect(result.outcome).toBe('failed');
    const latest = (await versions()).at(-1)!;
    expect(latest).toBeGreaterThanOrEqual(before.at(-1)!);
    const events = await tdb.database.db
      .selectFrom('workspace_events')
      .select(['type', 'actor', 'details'])
      .where('workspace_id', '=', cp.workspaceId)
      .where('type', '=', 'snapshot.compile_failed')
      .execute();
    expect(events.length).toBeGreaterThanOrEqual(1);
    expect(JSON.stringify(events[0]!.details)).toContain('INVALID_ROW');
    // The failure is recorded once, not once per event or per attempt.
    await publisher.publishNow(cp.workspaceId);
    await new Promise((r) => setTimeout(r, 200));
    const after = await tdb.database.db.selectFrom('workspace_events').select('id').where('workspace_id', '=', cp.workspaceId).where('type', '=', 'snapshot.compile_failed').execute();
    expect(after.length).toBeLessThanOrEqual(2); // this publisher's one, and the control plane's own
    await tdb.database.db.deleteFrom('access_tokens').where('token_hash', '=', 'NOT-A-HASH').execute();
  });
});
