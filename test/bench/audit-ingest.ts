/**
 * Audit ingest throughput into real Postgres: sustained entries/s through the ingest path,
 * (1) at the service level (`AuditIngestService.ingest` in this process: JSON parse,
 * validation, partition check, one insert per batch) and (2) over HTTP (`POST
 * /ingest/audit` with a data-plane token to a control plane in its own process:
 * authentication, body read, the same service), with several batches in flight as
 * several data planes would send them. Target (issue 6): ≥ 20,000 entries/s.
 *
 * Wall-clock rates are noisy on a shared machine, so it also reports CPU per entry: the
 * control plane's (user + system) and the Postgres backends' (`/proc/<pid>/stat`).
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npx tsx test/bench/audit-ingest.ts [seconds=10] [batch=1000] [concurrency=4]
 *
 * `BENCH_CP_NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/cp-prof"` passes node flags to the
 * control-plane process (to profile the HTTP path).
 *
 * Entries are metadata-only (as gateways record by default), ~1 KB of JSON each, with the
 * four legs of a call, realistic id spreads (5 gateways, 20 servers, 200 connections) and
 * every index of the migrations in place (the read side's too). A scratch database is
 * created and dropped.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Pool } from 'undici';
import { buildControlPlane } from '../../control-plane/app.js';
import { loadControlPlaneConfig } from '../../control-plane/config.js';
import { openDatabase } from '../../control-plane/db/database.js';
import { createLogger } from '../../control-plane/logger.js';
import type { AuditBatch, AuditEntry, AuditLeg } from '../../schema/audit/types.js';
import { freePort, gatehouseArgs, start, type Spawned } from './lib/processes.js';
import { createScratchDatabase } from './lib/scratch-database.js';

const base = process.env.DATABASE_URL;
if (!base) {
  console.error('DATABASE_URL must point at a Postgres server (a scratch database is created and dropped there)');
  process.exit(2);
}
const SECONDS = Number(process.argv[2] ?? 10);
const BATCH = Number(process.argv[3] ?? 1000);
const CONCURRENCY = Number(process.argv[4] ?? 4);
const KEY = `bench:${Buffer.alloc(32, 9).toString('base64')}`;

const scratch = await createScratchDatabase(base);
const { name, admin, url: databaseUrl } = scratch;

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;
const ids = (n: number) => Array.from({ length: n }, () => randomUUID());
const gateways = ids(5);
const servers = ids(20);
const connections = ids(200);
const users = ids(50);
const tools = Array.from({ length: 60 }, (_, i) => `server${i % 20}__tool_${i}`);
const LEGS: AuditLeg[] = ['client_request', 'upstream_request', 'upstream_response', 'client_response'];

function batchOf(workspaceId: string, size: number): string {
  const entries: AuditEntry[] = [];
  const now = Date.now();
  while (entries.length < size) {
    const correlationId = randomUUID();
    const connectionId = pick(connections);
    const common = {
      workspaceId,
      gatewayId: pick(gateways),
      serverId: pick(servers),
      assignmentId: pick(servers),
      hostId: connectionId,
      connectionId,
      tokenId: connectionId,
      userId: Math.random() < 0.7 ? pick(users) : null,
      clientName: 'claude-code',
      clientVersion: '2.0.14',
      sessionRef: correlationId.slice(0, 16),
      method: 'tools/call',
      featureName: pick(tools),
      jsonRpcId: String(entries.length),
      policyActions: [],
      body: null,
      bodyTruncated: false,
      originIp: '10.1.2.3',
      userAgent: 'claude-code/2.0.14 (darwin; arm64)',
      dataPlaneId: null,
      dataPlaneInstance: 'bench-host/4242/abcdef',
      snapshotVersion: 17,
    };
    const failed = Math.random() < 0.03;
    for (const [i, leg] of LEGS.entries()) {
      if (entries.length >= size) break;
      const response = leg === 'client_response';
      entries.push({
        ...common,
        id: randomUUID(),
        correlationId,
        leg,
        occurredAt: new Date(now + i).toISOString(),
        durationMs: leg === 'upstream_response' || response ? 1 + Math.random() * 200 : null,
        gatewayMs: response ? Math.random() : null,
        upstreamMs: leg === 'upstream_response' || response ? Math.random() * 200 : null,
        status: failed && (response || leg === 'upstream_response') ? 'error' : 'ok',
        errorCode: failed && response ? -32060 : null,
        errorMessage: failed && response ? 'upstream "github" timed out after 60000 ms' : null,
        headers: leg === 'client_request' ? { 'content-type': 'application/json', authorization: '[SCRUBBED]', 'user-agent': 'claude-code/2.0.14' } : null,
        inputTokens: leg === 'client_request' || response ? 40 + Math.floor(Math.random() * 400) : null,
        outputTokens: leg === 'upstream_response' || response ? 100 + Math.floor(Math.random() * 4000) : null,
        bytesIn: 200 + Math.floor(Math.random() * 2000),
        bytesOut: 200 + Math.floor(Math.random() * 20000),
      });
    }
  }
  const batch: AuditBatch = { formatVersion: 1, entries };
  // Only the text is kept: a few hundred batches as objects would make the garbage collector the bottleneck.
  return JSON.stringify(batch);
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

interface Result {
  readonly mode: string;
  readonly batches: number;
  readonly entries: number;
  readonly seconds: number;
  readonly latencies: number[];
  readonly cpu: CpuSpent;
}

/** CPU seconds spent during a run: the control plane, the scratch database's backends, and every postgres process. */
interface CpuSpent {
  readonly node: number;
  readonly backends: number;
  readonly allPostgres: number;
}

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const TICKS = 100;

/** utime + stime of a process in seconds, or undefined when it is gone. */
function processCpu(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS;
  } catch {
    return undefined;
  }
}

/** A process's CPU as `process.cpuUsage()` reports it (µs), from /proc. */
function cpuMicros(pid: number): NodeJS.CpuUsage {
  return { user: (processCpu(pid) ?? 0) * 1e6, system: 0 };
}

const collectGarbage: () => void = (() => {
  v8.setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

function postgresPids(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === 'postgres') pids.push(Number(entry));
    } catch {
      // gone
    }
  }
  return pids;
}

/**
 * Starts counting CPU; the returned function stops and returns what was spent. Backends
 * are those connected to the scratch database (pg_stat_activity), started before or during
 * the run; "all postgres" also counts the server's shared processes (WAL writer,
 * checkpointer, autovacuum) and any other database's work on this shared server, so it is
 * an upper bound.
 */
async function startCpu(controlPlaneCpu: () => NodeJS.CpuUsage): Promise<() => Promise<CpuSpent>> {
  const backendPids = async () => (await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1', [name])).rows.map((row) => row.pid);
  const readAll = (pids: readonly number[]) => {
    const cpu = new Map<number, number>();
    for (const pid of pids) {
      const seconds = processCpu(pid);
      if (seconds !== undefined) cpu.set(pid, seconds);
    }
    return cpu;
  };
  const nodeBefore = controlPlaneCpu();
  const backendsBefore = readAll(await backendPids());
  const allBefore = readAll(postgresPids());
  return async () => {
    const nodeAfter = controlPlaneCpu();
    const node = { user: nodeAfter.user - nodeBefore.user, system: nodeAfter.system - nodeBefore.system };
    const allAfter = readAll(postgresPids());
    const backendsAfter = readAll(await backendPids());
    const spent = (before: Map<number, number>, after: Map<number, number>) => {
      let total = 0;
      // A pid new since `before` (or reused by a new process) counts whole.
      for (const [pid, cpu] of after) total += cpu - Math.min(cpu, before.get(pid) ?? 0);
      return total;
    };
    return { node: (node.user + node.system) / 1e6, backends: spent(backendsBefore, backendsAfter), allPostgres: spent(allBefore, allAfter) };
  };
}

/** Runs `send` from `CONCURRENCY` workers for `SECONDS`, each with batches generated ahead. */
async function sustained(mode: string, workspaceId: string, controlPlaneCpu: () => NodeJS.CpuUsage, send: (text: string) => Promise<number>): Promise<Result> {
  const perWorker = Math.ceil((SECONDS * 30_000) / BATCH / CONCURRENCY) + 2;
  const prepared = Array.from({ length: CONCURRENCY }, () => Array.from({ length: perWorker }, () => batchOf(workspaceId, BATCH)));
  // One batch per worker first, unmeasured: pooled connections are open and warm (generating batches may have outlasted their idle timeout).
  await Promise.all(prepared.map((queue) => send(queue.shift()!)));
  collectGarbage();
  const latencies: number[] = [];
  let entries = 0;
  let batches = 0;
  const stopCpu = await startCpu(controlPlaneCpu);
  const started = performance.now();
  const deadline = started + SECONDS * 1000;
  await Promise.all(
    prepared.map(async (queue) => {
      for (const item of queue) {
        if (performance.now() >= deadline) break;
        const t0 = performance.now();
        const stored = await send(item);
        entries += stored;
        latencies.push(performance.now() - t0);
        batches += 1;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const cpu = await stopCpu();
  return { mode, batches, entries, seconds, latencies: latencies.sort((a, b) => a - b), cpu };
}

const results: Result[] = [];
const databaseHandles: Awaited<ReturnType<typeof openDatabase>>[] = [];
let child: Spawned | undefined;
const dataDir = mkdtempSync(path.join(tmpdir(), 'gatehouse-audit-bench-'));
try {
  // The HTTP mode's control plane runs as production runs it: its own process (so its CPU
  // is measured apart from the load generator's), started first so it sets up the database.
  const port = await freePort();
  const adminKey = `gh_admin_${randomBytes(24).toString('hex')}`;
  child = (
    await start('control plane', process.execPath, [...(process.env.BENCH_CP_NODE_FLAGS?.split(' ').filter(Boolean) ?? []), ...gatehouseArgs(['control-plane'])], {
      env: {
        GATEHOUSE_LOG_LEVEL: 'warn',
        GATEHOUSE_DATA_DIR: dataDir,
        DATABASE_URL: databaseUrl,
        GATEHOUSE_CONTROL_PLANE_PORT: String(port),
        GATEHOUSE_BOOTSTRAP_ADMIN_KEY: adminKey,
        GATEHOUSE_ENCRYPTION_KEY: KEY,
        GATEHOUSE_DISCOVERY_INTERVAL_SECONDS: '0',
        GATEHOUSE_GRAPHIQL: 'false',
      },
      ready: /control plane is up/i,
      timeoutMs: 120_000,
    })
  ).spawned;
  const cpUrl = `http://127.0.0.1:${port}`;
  const cpPid = child.child.pid!;

  const database = await openDatabase({ databaseUrl, poolSize: 10 });
  databaseHandles.push(database);
  const config = loadControlPlaneConfig({
    GATEHOUSE_CONTROL_PLANE_PORT: '0',
    GATEHOUSE_LOG_LEVEL: 'silent',
    GATEHOUSE_ENCRYPTION_KEY: KEY,
    GATEHOUSE_DISCOVERY_INTERVAL_SECONDS: '0',
    DATABASE_URL: databaseUrl,
  });
  const plane = await buildControlPlane(config, { database, logger: createLogger('silent') });
  try {
    const ws = await database.db.selectFrom('workspaces').select('id').executeTakeFirstOrThrow();
    const registered = await fetch(`${cpUrl}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${adminKey}` },
      body: JSON.stringify({ query: `mutation { registerDataPlane(input: { name: "bench" }) { ... on RegisterDataPlaneSuccess { registered { token dataPlane { id } } } } }` }),
    });
    const { data } = (await registered.json()) as { data: any };
    const token: string = data.registerDataPlane.registered.token;
    const dataPlaneId = Buffer.from(data.registerDataPlane.registered.dataPlane.id, 'base64url').toString().split(':')[1]!;
    const ingest = plane.services.auditIngest;
    const principal = { workspaceId: ws.id, dataPlaneId };

    // Warm-up: first partitions, plans, the pool.
    for (let i = 0; i < 3; i++) {
      const warm = batchOf(ws.id, BATCH);
      await ingest.ingest(principal, JSON.parse(warm), warm);
    }

    results.push(
      await sustained('service (parse + validate + insert), in this process', ws.id, () => process.cpuUsage(), async (text) => {
        const receipt = await ingest.ingest(principal, JSON.parse(text), text);
        if (receipt.accepted !== BATCH) throw new Error(`stored ${receipt.accepted} of ${BATCH}`);
        return receipt.accepted;
      }),
    );

    const http = new Pool(cpUrl, { connections: CONCURRENCY, keepAliveTimeout: 30_000 });
    results.push(
      await sustained('HTTP POST /ingest/audit, control-plane process', ws.id, () => cpuMicros(cpPid), async (text) => {
        const response = await http.request({
          path: '/ingest/audit',
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: text,
        });
        const receipt = (await response.body.json()) as { accepted: number };
        if (response.statusCode !== 200 || receipt.accepted !== BATCH) throw new Error(`HTTP ${response.statusCode}: ${JSON.stringify(receipt)}`);
        return receipt.accepted;
      }),
    );
    await http.close();

    const stored = await database.db.selectFrom('audit_entries' as never).select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow() as { n: string };
    const partitions = await plane.services.auditStore.listPartitions();
    console.log(`\naudit ingest into Postgres (${new URL(base).host}), ${SECONDS} s per mode, batches of ${BATCH}, ${CONCURRENCY} in flight\n`);
    console.log('| path | batches | entries | entries/s | batch p50 ms | batch p99 ms | control plane CPU µs/entry | backend CPU µs/entry | control plane + backends µs/entry | all postgres µs/entry |');
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    const perEntry = (seconds: number, entries: number) => ((seconds * 1e6) / entries).toFixed(1);
    for (const r of results) {
      console.log(
        `| ${r.mode} | ${r.batches} | ${r.entries} | ${Math.round(r.entries / r.seconds).toLocaleString('en-US')} | ${quantile(r.latencies, 0.5).toFixed(1)} | ${quantile(r.latencies, 0.99).toFixed(1)} | ${perEntry(r.cpu.node, r.entries)} | ${perEntry(r.cpu.backends, r.entries)} | ${perEntry(r.cpu.node + r.cpu.backends, r.entries)} | ${perEntry(r.cpu.allPostgres, r.entries)} |`,
      );
    }
    console.log(
      '\nCPU (user + system): control plane = process.cpuUsage() of this process in the service mode (after a forced GC, so generating the batches is not counted), /proc/<pid>/stat of the control-plane process in the HTTP mode; backends = /proc/<pid>/stat of the scratch database\'s connections; all postgres = every process named postgres (WAL writer, checkpointer, autovacuum too, and anything else using this server: an upper bound).',
    );
    console.log(`\nrows stored: ${Number(stored.n).toLocaleString('en-US')} in ${partitions.length} day partitions; target ≥ 20,000 entries/s`);
  } finally {
    await plane.close();
  }
} finally {
  await child?.stop();
  rmSync(dataDir, { recursive: true, force: true });
  for (const handle of databaseHandles) await handle.close().catch(() => undefined);
  await scratch.drop();
}
