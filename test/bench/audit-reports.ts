/**
 * Audit report benchmark: 1,000,000 audit entries (250,000 calls × 4 legs, spread over
 * 30 days in day partitions) in real Postgres, then every report query of
 * `AuditReportService` over a 31-day window that holds all of them, plus the log list's
 * first pages. Each query runs RUNS times after one warm-up; the table shows the median
 * and the slowest. Target (issue [audit]): each report ≤ 200 ms.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npx tsx test/bench/audit-reports.ts
 *
 * It creates and drops its own database next to DATABASE_URL's. ENTRIES=200000 makes a
 * smaller run. `--explain` prints each report's plan.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { sql } from 'kysely';
import { AuditLogService } from '../../control-plane/audit/audit-log.service.js';
import { AuditReportService, type ReportWindow } from '../../control-plane/audit/audit-report.service.js';
import { AuditStore } from '../../control-plane/audit/audit-store.js';
import type { Viewer } from '../../control-plane/access/viewer.js';
import { openDatabase, type Database } from '../../control-plane/db/database.js';
import { migrateToLatest } from '../../control-plane/db/migrate.js';
import { createWorkspace } from '../../control-plane/workspaces/workspace.service.js';
import { auditEntry, seedAuditEntries } from '../helpers/audit-rows.js';

const ENTRIES = Number(process.env.ENTRIES ?? 1_000_000);
const RUNS = Number(process.env.RUNS ?? 7);
const TARGET_MS = 200;
const DAY_MS = 86_400_000;
const EXPLAIN = process.argv.includes('--explain');
/** KEEP_DB=1 leaves the database (and skips the ingest comparison, which drops indexes) for a closer look. */
const KEEP = process.env.KEEP_DB === '1';

const base = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const name = `gatehouse_bench_reports_${process.pid}`;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

const ids = (n: number) => Array.from({ length: n }, () => randomUUID());

async function time<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const out = await fn();
  return [performance.now() - t0, out];
}

/** CPU time (ns) a Postgres backend has used, from /proc (the bench runs beside the database). */
function backendCpuNs(pid: number): number | null {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    return null;
  }
}

async function main() {
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  const reuse = process.env.REUSE_DB;
  const dbName = reuse ?? name;
  if (!reuse) await admin.query(`CREATE DATABASE ${dbName}`);
  const url = new URL(base);
  url.pathname = `/${dbName}`;
  let database: Database | undefined;
  try {
    // One connection: every query runs on one backend, whose CPU time is read from /proc.
    database = await openDatabase({ databaseUrl: url.toString(), poolSize: 1 });
    await migrateToLatest(database);
    const db = database.db;
    const now = new Date();
    const to = new Date(Math.floor(now.getTime() / DAY_MS) * DAY_MS + DAY_MS);
    const from = new Date(to.getTime() - 30 * DAY_MS);
    let workspaceId: string;
    let ownerRole: string;
    let userIds: string[];
    let gatewayIds: string[];
    let serverIds: string[];
    let hostIds: string[];
    let connectionIds: string[];
    const store = new AuditStore(database, { daysAhead: 1, daysBehind: 32 });
    if (reuse) {
      const ws = await db.selectFrom('workspaces').select('id').where('name', '=', 'bench').executeTakeFirstOrThrow();
      workspaceId = ws.id;
      ownerRole = (await db.selectFrom('roles').select('id').where('workspace_id', '=', workspaceId).where('builtin', '=', 'owner').executeTakeFirstOrThrow()).id;
      userIds = (await db.selectFrom('users').select('id').where('workspace_id', '=', workspaceId).orderBy('email').execute()).map((r) => r.id);
      const distinct = async (column: string) =>
        (await sql<{ v: string }>`SELECT DISTINCT x.v::text AS v FROM (SELECT ${sql.ref(column)} AS v FROM audit_entries WHERE workspace_id = ${workspaceId} LIMIT 20000) x WHERE x.v IS NOT NULL ORDER BY 1`.execute(db)).rows.map((r) => r.v);
      [gatewayIds, serverIds, hostIds, connectionIds] = [await distinct('gateway_id'), await distinct('server_id'), await distinct('host_id'), await distinct('connection_id')];
      console.log(`reusing ${dbName}`);
    } else {
      const { workspace, roleIds } = await db.transaction().execute((trx) => createWorkspace(trx, 'bench'));
      workspaceId = workspace.id;
      ownerRole = roleIds.owner!;
      // People: 200 users in 20 teams (every third user in two).
      userIds = ids(200);
      const teamIds = ids(20);
      await db.insertInto('users').values(userIds.map((id, i) => ({ id, workspace_id: workspaceId, email: `u${String(i).padStart(3, '0')}@bench.test`, name: `User ${i}`, state: 'active', role_id: roleIds.member! }))).execute();
      await db.insertInto('teams').values(teamIds.map((id, i) => ({ id, workspace_id: workspaceId, name: `Team ${i}`, description: '' }))).execute();
      await db
        .insertInto('team_members')
        .values(userIds.flatMap((u, i) => [teamIds[i % 20]!, ...(i % 3 === 0 ? [teamIds[(i + 7) % 20]!] : [])].map((t) => ({ workspace_id: workspaceId, team_id: t, user_id: u }))))
        .execute();
      // Day partitions for the window, as the ingest creates them.
      await store.ensurePartitionsFor(
        Array.from({ length: 31 }, (_, d) => auditEntry({ workspaceId, occurredAt: new Date(from.getTime() + d * DAY_MS).toISOString() })),
        now,
      );
      [gatewayIds, serverIds, hostIds, connectionIds] = [ids(20), ids(50), ids(100), ids(100)];
      const [seedMs, rows] = await time(() =>
        seedAuditEntries(db, { workspaceId, calls: ENTRIES / 4, from, to: new Date(Math.min(to.getTime() - 1, now.getTime())), gatewayIds, serverIds, userIds, hostIds, connectionIds }),
      );
      await sql`VACUUM ANALYZE audit_entries`.execute(db);
      const size = await sql<{ table: string; indexes: string }>`
        SELECT pg_size_pretty(sum(pg_table_size(c.oid))) AS table, pg_size_pretty(sum(pg_indexes_size(c.oid))) AS indexes
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'audit_entries'::regclass`.execute(db);
      console.log(`seeded ${rows.toLocaleString('en-US')} entries in ${(seedMs / 1000).toFixed(1)} s (${size.rows[0]!.table} table, ${size.rows[0]!.indexes} indexes)`);
    }
    const backendPid = (await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(db)).rows[0]!.pid;

    const viewer: Viewer = {
      workspaceId,
      actor: 'bench',
      apiKeyId: null,
      roleId: ownerRole,
      capabilities: new Set(['reporting.view', 'logging.view', 'logging.view_bodies']),
    };
    const reports = new AuditReportService(database);
    const logs = new AuditLogService(database);
    const windowOf = (bucket: 'day' | 'hour', extra: Partial<ReportWindow> = {}): ReportWindow => ({
      ...reports.window(viewer, { from: new Date(to.getTime() - 31 * DAY_MS), to, bucket }),
      ...extra,
    });
    const day = windowOf('day');
    const hour = windowOf('hour');
    const cases: [string, () => Promise<unknown>][] = [
      ['callsOverTime (day buckets)', () => reports.callsOverTime(day)],
      ['callsOverTime (hour buckets)', () => reports.callsOverTime(hour)],
      ['tokensOverTime (day buckets)', () => reports.tokensOverTime(day)],
      ['errorRate (day buckets)', () => reports.errorRate(day)],
      ['featureCalls (top 10)', () => reports.featureCalls(day, 10)],
      ['latencyByFeature p50/p95 (top 10)', () => reports.latencyByFeature(day, 10)],
      ['serverPopularity (top 10)', () => reports.serverPopularity(day, 10)],
      ['usageByUser (top 10)', () => reports.usageByUser(day, 10)],
      ['usageByTeam (top 10)', () => reports.usageByTeam(day, 10)],
      ['usageByServer (top 10)', () => reports.usageByServer(day, 10)],
      ['callsOverTime, one gateway', () => reports.callsOverTime(windowOf('day', { gatewayId: gatewayIds[3]! }))],
      ['auditLogs first page (50)', () => logs.list(viewer, {}, { first: 50 })],
      ['auditLogs page 2, one server', async () => {
        const p1 = await logs.list(viewer, { serverId: serverIds[7]! }, { first: 50 });
        return logs.list(viewer, { serverId: serverIds[7]! }, { first: 50, after: p1.pageInfo.endCursor });
      }],
      ['auditLogs, one user, errors only', () => logs.list(viewer, { userId: userIds[150]!, status: ['error'] }, { first: 50 })],
      ['auditLogs, free text (31 days)', () => logs.list(viewer, { search: 'call 12345', from: day.from, to: day.to }, { first: 50 })],
    ];

    const table: { query: string; median: number; max: number; cpu: number | null; ok: boolean }[] = [];
    for (const [label, fn] of cases) {
      await fn(); // warm-up
      const samples: number[] = [];
      const cpu: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const before = backendCpuNs(backendPid);
        samples.push((await time(fn))[0]);
        const after = backendCpuNs(backendPid);
        if (before !== null && after !== null) cpu.push((after - before) / 1e6);
      }
      const isReport = !label.startsWith('auditLogs');
      table.push({ query: label, median: median(samples), max: Math.max(...samples), cpu: cpu.length ? median(cpu) : null, ok: !isReport || median(samples) <= TARGET_MS });
    }

    const total = (await sql<{ n: string }>`SELECT count(*)::text AS n FROM audit_entries WHERE workspace_id = ${workspaceId}`.execute(db)).rows[0]!.n;
    const version = (await sql<{ server_version: string }>`SHOW server_version`.execute(db)).rows[0]!.server_version;
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    console.log(`\n${Number(total).toLocaleString('en-US')} entries, 31-day window, ${RUNS} runs each after a warm-up; Postgres ${version}; load average ${load}\n`);
    console.log(`| query | median ms | max ms | DB CPU ms (median) | ≤ ${TARGET_MS} ms |`);
    console.log('|---|---:|---:|---:|:---:|');
    for (const r of table) console.log(`| ${r.query} | ${r.median.toFixed(1)} | ${r.max.toFixed(1)} | ${r.cpu === null ? '–' : r.cpu.toFixed(1)} | ${r.query.startsWith('auditLogs') ? '–' : r.ok ? 'yes' : 'NO'} |`);

    if (EXPLAIN) {
      const explain = async (label: string, q: string) => {
        const plan = await sql.raw<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS) ${q}`).execute(db);
        const lines = plan.rows.map((r) => r['QUERY PLAN']);
        // Partition scans repeat per day: show the first two and the totals.
        const shown = lines.filter((l, i) => !/->  (Index Only Scan|Seq Scan|Index Scan)/.test(l) || lines.slice(0, i).filter((x) => /->  (Index Only Scan|Seq Scan|Index Scan)/.test(x)).length < 2);
        console.log(`\n-- ${label}\n${shown.filter((l) => !/^\s+(Index Cond|Heap Fetches|Buffers|Filter):/.test(l)).join('\n')}`);
      };
      const w = `workspace_id = '${workspaceId}' AND occurred_at >= '${day.from.toISOString()}' AND occurred_at < '${day.to.toISOString()}'`;
      await explain('calls by day', `SELECT date_trunc('day', occurred_at AT TIME ZONE 'UTC'), count(*) FROM audit_entries WHERE ${w} AND leg = 'client_response' GROUP BY 1`);
      await explain('latency', `SELECT feature_name, percentile_cont(ARRAY[0.5,0.95]) WITHIN GROUP (ORDER BY duration_ms) FROM audit_entries WHERE ${w} AND leg = 'client_response' GROUP BY 1`);
    }

    // What the read-side indexes cost the ingest: the same batches with and without them.
    const ingest = async (label: string) => {
      const batches = 40;
      const entries = Array.from({ length: batches }, () =>
        Array.from({ length: 1000 }, (_, i) =>
          auditEntry({ workspaceId, occurredAt: new Date(now.getTime() - (i % 3600) * 1000).toISOString(), gatewayId: gatewayIds[i % 20]!, serverId: serverIds[i % 50]!, hostId: hostIds[i % 100]!, connectionId: connectionIds[i % 100]!, userId: userIds[i % 200]!, leg: (['client_request', 'upstream_request', 'upstream_response', 'client_response'] as const)[i % 4], inputTokens: 40, outputTokens: 90 }),
        ),
      );
      const [ms] = await time(async () => {
        for (const batch of entries) await store.insert(null, batch);
      });
      console.log(`ingest ${label}: ${Math.round((batches * 1000) / (ms / 1000)).toLocaleString('en-US')} entries/s (${batches} batches of 1,000 through AuditStore.insert, one connection)`);
    };
    console.log('');
    if (KEEP || reuse) console.log(`kept database ${dbName}`);
    else await ingest('with the read-side indexes (migration 0010)');
    if (!KEEP && !reuse) {
      for (const ix of ['gateway', 'server', 'connection', 'host', 'user']) await sql`DROP INDEX ${sql.id(`audit_entries_${ix}_time_ix`)}`.execute(db);
      for (const ix of ['audit_entries_report_calls_ix', 'audit_entries_report_requests_ix', 'audit_entries_ingested_ix']) await sql`DROP INDEX ${sql.id(ix)}`.execute(db);
      await ingest('without them (migration 0006 indexes only)');
    }

    const failed = table.filter((r) => !r.ok);
    if (failed.length) {
      console.log(`\n${failed.length} report(s) over ${TARGET_MS} ms`);
      process.exitCode = 1;
    }
  } finally {
    await database?.close();
    if (!KEEP && !reuse) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
    await admin.end();
  }
}

await main();
