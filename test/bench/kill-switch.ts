/**
 * Kill-switch propagation: two control-plane processes on one real Postgres, four data-plane
 * consumers (two on each), N gateway kill-switch toggles alternating between the two
 * processes; for each, the time from the commit to receipt of the new snapshot in every
 * consumer. Target (issue 3): p99 ≤ 100 ms.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npx tsx test/bench/kill-switch.ts [toggles=200]
 *
 * "Commit" is when the workspace event's NOTIFY, which Postgres sends at commit, reaches a
 * separate LISTEN connection of this script (so it is a little late, never early);
 * "request" is when the mutation was sent (an upper bound that adds HTTP and the transaction).
 * Both control planes are in this process; each has its own pool and LISTEN connection.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { buildControlPlane, type ControlPlane } from '../../control-plane/app.js';
import { insertApiKey } from '../../control-plane/api-keys/api-key.service.js';
import { loadControlPlaneConfig } from '../../control-plane/config.js';
import { openDatabase, type Database } from '../../control-plane/db/database.js';
import { migrateToLatest } from '../../control-plane/db/migrate.js';
import { WORKSPACE_EVENTS_CHANNEL } from '../../control-plane/events/workspace-events.js';
import { createLogger } from '../../control-plane/logger.js';
import { SnapshotConsumer } from '../helpers/snapshot-consumer.js';

const base = process.env.DATABASE_URL;
if (!base) {
  console.error('DATABASE_URL must point at a Postgres server (a scratch database is created and dropped there)');
  process.exit(2);
}
const TOGGLES = Number(process.argv[2] ?? 200);
const KEY = `bench:${Buffer.alloc(32, 9).toString('base64')}`;

const name = `gatehouse_bench_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
const admin = new pg.Client({ connectionString: base });
await admin.connect();
await admin.query(`CREATE DATABASE ${name}`);
const url = new URL(base);
url.pathname = `/${name}`;
const databaseUrl = url.toString();

const databases: Database[] = [];
const planes: ControlPlane[] = [];
const consumers: SnapshotConsumer[] = [];
try {
  const first = await openDatabase({ databaseUrl });
  databases.push(first);
  await migrateToLatest(first);
  const config = loadControlPlaneConfig({
    GATEHOUSE_CONTROL_PLANE_PORT: '0',
    GATEHOUSE_LOG_LEVEL: 'silent',
    GATEHOUSE_ENCRYPTION_KEY: KEY,
    GATEHOUSE_DISCOVERY_INTERVAL_SECONDS: '0',
    DATABASE_URL: databaseUrl,
  });
  const logger = createLogger('silent');
  for (let i = 0; i < 2; i++) {
    const database = i === 0 ? first : await openDatabase({ databaseUrl });
    if (i > 0) databases.push(database);
    const plane = await buildControlPlane(config, { database, logger });
    await plane.listen();
    planes.push(plane);
  }
  const [cp1, cp2] = planes as [ControlPlane, ControlPlane];
  const ws = await first.db.selectFrom('workspaces').select('id').executeTakeFirstOrThrow();
  const owner = await first.db.selectFrom('roles').select('id').where('workspace_id', '=', ws.id).where('builtin', '=', 'owner').executeTakeFirstOrThrow();
  const ownerKey = (await first.db.transaction().execute((trx) => insertApiKey(trx, ws.id, owner.id, 'bench', 'bench'))).secret;

  const gql = async (plane: ControlPlane, query: string, variables: Record<string, unknown> = {}) => {
    const res = await fetch(`${plane.url()}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ownerKey}` },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.json()) as { data?: any; errors?: unknown };
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data;
  };

  const registered = await gql(cp1, `mutation { registerDataPlane(input: { name: "bench" }) { ... on RegisterDataPlaneSuccess { registered { token } } } }`);
  const token: string = registered.registerDataPlane.registered.token;
  const gateway = await gql(cp1, `mutation { createGateway(input: { name: "Bench", slug: "bench" }) { ... on CreateGatewaySuccess { gateway { id } } } }`);
  const gatewayId: string = gateway.createGateway.gateway.id;
  await new Promise((r) => setTimeout(r, 300));
  const startVersion = (await cp1.services.snapshots.latest(ws.id, { fresh: true }))!.version;

  for (const plane of [cp1, cp1, cp2, cp2]) {
    const consumer = new SnapshotConsumer({ url: `${plane.url().replace(/^http/, 'ws')}/graphql`, token });
    consumers.push(consumer.start());
  }
  await Promise.all(consumers.map((c) => c.waitForVersion(startVersion)));

  // Commit instants, from our own LISTEN connection.
  const commits: number[] = [];
  const listener = new pg.Client({ connectionString: databaseUrl });
  await listener.connect();
  listener.on('notification', (msg) => {
    if (msg.payload?.includes('gateway.')) commits.push(performance.now());
  });
  await listener.query(`LISTEN ${WORKSPACE_EVENTS_CHANNEL}`);

  const fromCommit: number[] = [];
  const fromRequest: number[] = [];
  let version = startVersion;
  for (let i = 0; i < TOGGLES; i++) {
    const plane = i % 2 === 0 ? cp1 : cp2;
    const commitsBefore = commits.length;
    const sent = performance.now();
    await gql(plane, `mutation($id: ID!, $d: Boolean!) { setGatewayDisabled(id: $id, disabled: $d) { __typename } }`, { id: gatewayId, d: i % 2 === 0 });
    version++;
    const outcomes = await Promise.all(consumers.map((c) => c.waitFor((o) => o.accepted && o.version >= version, 10_000)));
    while (commits.length === commitsBefore) await new Promise((r) => setTimeout(r, 1));
    const committed = commits[commitsBefore]!;
    for (const outcome of outcomes) {
      fromCommit.push(outcome.receivedAt - committed);
      fromRequest.push(outcome.receivedAt - sent);
    }
  }
  await listener.end();

  const body = (await cp1.services.snapshots.latest(ws.id))!;
  const rows = await first.db.selectFrom('snapshots').select('version').where('workspace_id', '=', ws.id).execute();
  console.log(`kill switch: ${TOGGLES} toggles × ${consumers.length} consumers, 2 control-plane processes, Postgres`);
  console.log(`versions ${startVersion + 1}..${version} published (each toggle exactly one); ${rows.length} kept; snapshot ${JSON.stringify(body.body).length} bytes\n`);
  console.log(table([
    ['measure', 'n', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms'],
    row('commit → receipt', fromCommit),
    row('request → receipt', fromRequest),
  ]));
  const p99 = percentile(fromCommit, 0.99);
  console.log(`\np99 commit → receipt ${p99.toFixed(1)} ms: ${p99 <= 100 ? 'meets' : 'MISSES'} the 100 ms target`);
} finally {
  for (const c of consumers) await c.close().catch(() => undefined);
  for (const plane of planes) await plane.close().catch(() => undefined);
  for (const database of databases) await database.close().catch(() => undefined);
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
  await admin.end();
}

function percentile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN;
}

function row(label: string, values: readonly number[]): string[] {
  return [label, String(values.length), ...[0.5, 0.95, 0.99, 1].map((q) => percentile(values, q).toFixed(1))];
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')).join('\n');
}
