/**
 * `npm run bench` — what Gatehouse costs per call, against the upstream called directly
 * and against the npm MCP proxies a user would otherwise pick, all measured in one run on
 * this machine. Prints one table per scenario (median of the repetitions, min–max, ratio
 * to the direct path) and writes the JSON under test/bench/results/.
 *
 *   npm run bench              # full run (several minutes)
 *   npm run bench -- --quick   # smoke run (< 1 min; CI runs it; asserts no timing)
 *
 * Beside the direct path, a floor: a bare HTTP forwarder (test/bench/upstreams/forwarder.ts,
 * no MCP, no policy) in front of the same upstream, in its own process. What one more
 * process hop costs on this machine (two more socket writes and wake-ups per call) is
 * what no proxy can go below; `vs floor` is each path against it.
 *
 * Topology: every path runs in its own process, and so does the load generator
 * (test/bench/load/worker.ts, a lean MCP client checked against the SDK's Client in
 * test/integration/bench/lean-client.test.ts). Gatehouse runs as production does: a
 * control plane process and data-plane processes fed over the push channel.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { applyFullPolicy } from './lib/full-policy.js';
import { addGateway, addServer, registerDataPlaneToken, startControlPlane, startDataPlane, waitForGateway, type ControlPlaneProcess } from './lib/gatehouse.js';
import { ECHO_STDIO, startMcpProxy, startSupergateway, type Peer } from './lib/peers.js';
import { REPO, loadGenerator, rssMiB, startBenchServer, treeRssMiB, type Spawned } from './lib/processes.js';
import { startRoundRobin } from './lib/round-robin.js';
import { repeated, type Repeated } from './lib/stats.js';
import type { Job, JobResult } from './load/worker.js';

const QUICK = process.argv.includes('--quick');
const SKIP_PEERS = process.argv.includes('--no-peers');
/** `--only <regex>`: run only the scenarios whose name matches (case-insensitive), e.g. `--only 'sequential|32 conc'`. */
const ONLY = (() => {
  const i = process.argv.indexOf('--only');
  return i >= 0 && process.argv[i + 1] ? new RegExp(process.argv[i + 1]!, 'i') : undefined;
})();
const selected = (name: string) => ONLY === undefined || ONLY.test(name);

const PROFILE = QUICK
  ? { reps: 1, seqWarmup: 100, seqCalls: 500, payloadCalls: 100, concurrency: [1, 32], durationMs: 500, warmupMs: 200, listCalls: 50, setupCount: 30, openSessions: 200, soakCalls: 2_000 }
  : { reps: 3, seqWarmup: 1_000, seqCalls: 5_000, payloadCalls: 1_000, concurrency: [1, 8, 32, 128], durationMs: 4_000, warmupMs: 1_000, listCalls: 500, setupCount: 300, openSessions: 1_000, soakCalls: 200_000 };

interface BenchPath {
  readonly name: string;
  readonly url: string;
  readonly headers: Record<string, string>;
  /** Process whose RSS is reported for this path. */
  readonly pid?: number;
  readonly peer?: boolean;
}

interface Row {
  readonly path: string;
  readonly metrics: Record<string, Repeated>;
  readonly errors: number;
  readonly note?: string;
}

interface Scenario {
  readonly name: string;
  /** The metric the ratio column uses and whether higher is better. */
  readonly ratioMetric: string;
  readonly higherIsBetter: boolean;
  readonly rows: Row[];
}

const scenarios: Scenario[] = [];
const cleanups: (() => Promise<void>)[] = [];

/** Runs one job in the load generator (one long-lived process, started on first use). */
const runWorker = loadGenerator(cleanups);

async function measure(name: string, ratioMetric: string, higherIsBetter: boolean, paths: readonly BenchPath[], jobOf: (p: BenchPath) => Job): Promise<void> {
  if (!selected(name)) return;
  const scenario: Scenario = { name, ratioMetric, higherIsBetter, rows: [] };
  scenarios.push(scenario);
  process.stderr.write(`▸ ${name}\n`);
  for (const p of paths) {
    const runs: Record<string, number[]> = {};
    let errors = 0;
    let note: string | undefined;
    for (let rep = 0; rep < PROFILE.reps; rep++) {
      let result: JobResult;
      try {
        result = await runWorker(jobOf(p));
      } catch (error) {
        note = `failed: ${String(error).split('\n')[0]}`;
        break;
      }
      const add = (metric: string, value: number) => (runs[metric] ??= []).push(value);
      if (result.kind === 'latency') {
        add('p50 ms', result.latency.p50);
        add('p95 ms', result.latency.p95);
        add('p99 ms', result.latency.p99);
        add('max ms', result.latency.max);
        errors += result.errors;
        note ??= result.firstError;
      } else if (result.kind === 'throughput') {
        add('calls/s', result.callsPerSecond);
        add('p99 ms', result.latency.p99);
        errors += result.errors;
        note ??= result.firstError;
      }
    }
    scenario.rows.push({ path: p.name, metrics: Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, repeated(v)])), errors, ...(note ? { note } : {}) });
  }
}

function format(value: number): string {
  if (!Number.isFinite(value)) return '—';
  if (value >= 1000) return value.toFixed(0);
  if (value >= 100) return value.toFixed(1);
  return value.toFixed(3);
}

function printTables(): string {
  const out: string[] = [];
  for (const scenario of scenarios) {
    const metrics = [...new Set(scenario.rows.flatMap((row) => Object.keys(row.metrics)))];
    const direct = scenario.rows[0]?.metrics[scenario.ratioMetric]?.median;
    const floor = scenario.rows.find((row) => row.path === FLOOR_NAME)?.metrics[scenario.ratioMetric]?.median;
    const ratioTo = (base: number | undefined, mine: number | undefined) => (base && mine ? `${(mine / base).toFixed(2)}×` : '—');
    const header = ['path', ...metrics.map((m) => `${m} (min–max)`), `vs direct (${scenario.ratioMetric})`, ...(floor ? [`vs floor`] : []), 'errors'];
    const lines = scenario.rows.map((row) => {
      const mine = row.metrics[scenario.ratioMetric]?.median;
      return [
        row.path,
        ...metrics.map((m) => {
          const r = row.metrics[m];
          return r ? (PROFILE.reps > 1 ? `${format(r.median)} (${format(r.min)}–${format(r.max)})` : format(r.median)) : '—';
        }),
        ratioTo(direct, mine),
        ...(floor ? [ratioTo(floor, mine)] : []),
        row.note ? `${row.errors} ${row.note.slice(0, 60)}` : String(row.errors),
      ];
    });
    const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
    const fmt = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
    out.push(`### ${scenario.name}`, '', fmt(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(fmt), '');
  }
  return out.join('\n');
}

/**
 * The floor: a bare HTTP forwarder in its own process in front of the same echo
 * (test/bench/upstreams/forwarder.ts). What one more process hop costs on this machine,
 * which no gateway can go below; the `vs floor` column compares each path with it.
 */
const FLOOR_NAME = 'floor: bare HTTP forwarder (no MCP, no policy)';

/** A benchmark server (`startBenchServer`) stopped with the run. */
async function spawnServer(name: string, script: string, args: readonly string[]): Promise<{ url: string; spawned: Spawned }> {
  const server = await startBenchServer(name, script, args);
  cleanups.push(() => server.spawned.stop());
  return server;
}

const spawnEcho = (args: string[] = []) => spawnServer('echo upstream', 'test/bench/upstreams/echo.ts', ['--http', '0', ...args]);
const spawnForwarder = (target: string) => spawnServer('forwarder', 'test/bench/upstreams/forwarder.ts', ['--target', target]);

async function main(): Promise<void> {
  const startedAt = new Date();
  const t0 = performance.now();
  process.stderr.write(`Gatehouse benchmark (${QUICK ? 'quick' : 'full'}), ${PROFILE.reps} repetition(s) per measurement\n`);

  // Upstreams: the echo server over HTTP, and ten with ten tools each for the fan-out.
  const echo = await spawnEcho();
  const listUpstreams = await Promise.all(Array.from({ length: 10 }, () => spawnEcho(['--tools', '9'])));
  const forwarder = await spawnForwarder(echo.url);

  // Gatehouse: control plane + one data plane, provisioned through the SDK.
  const cp: ControlPlaneProcess = await startControlPlane();
  cleanups.push(() => cp.stop());
  const echoHttpId = await addServer(cp, { name: 'echo-http', remoteUrl: echo.url });
  const echoStdioId = await addServer(cp, { name: 'echo-stdio', command: ECHO_STDIO[0], args: ECHO_STDIO.slice(1) });
  const listIds: string[] = [];
  for (const [i, upstream] of listUpstreams.entries()) listIds.push(await addServer(cp, { name: `list-${i}`, remoteUrl: upstream.url }));
  const auditOnly = await addGateway(cp, 'bench-audit', [echoHttpId], { pin: false });
  const full = await addGateway(cp, 'bench-full', [echoHttpId], { pin: true });
  const fullStdio = await addGateway(cp, 'bench-full-stdio', [echoStdioId], { pin: true });
  const fanout = await addGateway(cp, 'bench-list', listIds, { pin: false });
  const policy = await applyFullPolicy(cp, [full.gatewayId, fullStdio.gatewayId]);
  const dpToken = await registerDataPlaneToken(cp, 'bench-1');
  const dp = await startDataPlane(cp, dpToken);
  cleanups.push(() => dp.spawned.stop());
  const gw = (g: { slug: string; token: string }) => ({ url: `${dp.url}/mcp/${g.slug}`, headers: { authorization: `Bearer ${g.token}` } });
  for (const g of [auditOnly, full, fullStdio, fanout]) await waitForGateway(gw(g).url, g.token);

  const peers: Peer[] = [];
  if (!SKIP_PEERS) {
    for (const startPeer of [startMcpProxy, startSupergateway]) {
      try {
        const peer = await startPeer();
        cleanups.push(() => peer.spawned.stop());
        peers.push(peer);
      } catch (error) {
        process.stderr.write(`could not start a peer proxy: ${String(error).split('\n')[0]}\n`);
      }
    }
  }

  const dpPid = dp.spawned.child.pid!;
  const direct: BenchPath = { name: 'direct (echo over HTTP)', url: echo.url, headers: {}, pid: echo.spawned.child.pid! };
  const floor: BenchPath = { name: FLOOR_NAME, url: forwarder.url, headers: {}, pid: forwarder.spawned.child.pid! };
  const gatehouseAudit: BenchPath = { name: 'gatehouse: auth + audit', ...gw(auditOnly), pid: dpPid };
  const gatehouseFull: BenchPath = { name: `gatehouse: full policy${policy.applied ? '' : ' (rules unavailable)'}`, ...gw(full), pid: dpPid };
  const gatehouseFullStdio: BenchPath = { name: 'gatehouse: full policy, stdio upstream', ...gw(fullStdio), pid: dpPid };
  const peerPaths: BenchPath[] = peers.map((peer) => ({ name: `${peer.name} (stdio upstream, no policy)`, url: peer.url, headers: {}, pid: peer.spawned.child.pid!, peer: true }));
  const all = [direct, floor, gatehouseAudit, gatehouseFull, gatehouseFullStdio, ...peerPaths];

  const seq = (payloadBytes: number, calls: number, warmup: number) => (p: BenchPath): Job => ({ kind: 'sequential', url: p.url, headers: p.headers, calls, warmup, payloadBytes });
  await measure('Sequential tools/call (latency)', 'p50 ms', false, all, seq(16, PROFILE.seqCalls, PROFILE.seqWarmup));
  for (const sessions of PROFILE.concurrency) {
    await measure(`${sessions} concurrent session${sessions > 1 ? 's' : ''} (throughput)`, 'calls/s', true, all, (p) => ({
      kind: 'concurrent', url: p.url, headers: p.headers, sessions, durationMs: PROFILE.durationMs, warmupMs: PROFILE.warmupMs, payloadBytes: 16,
    }));
  }
  for (const bytes of [1024, 65_536]) {
    await measure(`${bytes / 1024} KiB payload, sequential`, 'p50 ms', false, all, seq(bytes, PROFILE.payloadCalls, Math.min(100, PROFILE.payloadCalls)));
  }
  await measure('Session setup (initialize + initialized)', 'p50 ms', false, all, (p) => ({ kind: 'setup', url: p.url, headers: p.headers, count: PROFILE.setupCount, warmup: 10, maxMs: 10_000 }));
  await measure('tools/list across 10 upstreams', 'p50 ms', false, [
    { name: 'direct (10 upstreams in parallel; the slowest)', url: listUpstreams[0]!.url, headers: {} },
    { name: 'gatehouse: one gateway over the 10', ...gw(fanout) },
  ], (p) =>
    p.name.startsWith('direct')
      ? { kind: 'list-many', url: p.url, headers: {}, urls: listUpstreams.map((u) => u.url), calls: PROFILE.listCalls, warmup: 20 }
      : { kind: 'list', url: p.url, headers: p.headers, calls: PROFILE.listCalls, warmup: 20 },
  );

  // Memory: RSS of the data plane with N sessions open, and before/after a long run of calls.
  const memory: Scenario = { name: 'Memory (RSS of the serving process, MiB)', ratioMetric: 'RSS MiB', higherIsBetter: false, rows: [] };
  const memPaths = selected(memory.name) ? [gatehouseFull] : [];
  for (const p of memPaths) {
    const before = rssMiB(p.pid!);
    let open = Number.NaN;
    await runWorker({ kind: 'open-sessions', url: p.url, headers: p.headers, count: PROFILE.openSessions }, async () => {
      await new Promise((resolve) => setTimeout(resolve, 500));
      open = rssMiB(p.pid!);
    });
    const beforeSoak = rssMiB(p.pid!);
    await runWorker({ kind: 'soak', url: p.url, headers: p.headers, sessions: 32, calls: PROFILE.soakCalls, payloadBytes: 64 });
    global.gc?.();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const afterSoak = rssMiB(p.pid!);
    const one = (v: number) => repeated([v]);
    memory.rows.push({ path: `${p.name}: after the scenarios above, no session open`, metrics: { 'RSS MiB': one(before) }, errors: 0 });
    memory.rows.push({ path: `${p.name}: ${PROFILE.openSessions} open sessions`, metrics: { 'RSS MiB': one(open) }, errors: 0 });
    memory.rows.push({ path: `${p.name}: before ${PROFILE.soakCalls} calls`, metrics: { 'RSS MiB': one(beforeSoak) }, errors: 0 });
    memory.rows.push({ path: `${p.name}: after ${PROFILE.soakCalls} calls`, metrics: { 'RSS MiB': one(afterSoak) }, errors: 0 });
  }
  for (const p of peerPaths) memory.rows.push({ path: `${p.name}: after the run (process tree)`, metrics: { 'RSS MiB': repeated([treeRssMiB(p.pid!)]) }, errors: 0 });
  if (memPaths.length > 0) scenarios.push(memory);

  // Two replicas behind a round-robin proxy: one session's messages alternate between them.
  if (selected('Two replicas')) await twoReplicas(cp, dp, full, gw);

  const table = printTables();
  const seconds = ((performance.now() - t0) / 1000).toFixed(0);
  const preamble = [
    `Gatehouse benchmark — ${startedAt.toISOString()} — ${QUICK ? 'quick' : 'full'} profile, ${PROFILE.reps} repetition(s), ${seconds} s`,
    `Node ${process.version}, ${(await import('node:os')).cpus().length} CPUs, control plane on ${cp.databaseKind === 'postgres' ? 'Postgres' : 'the embedded database'}. Full policy: ${policy.description}.`,
    '',
  ].join('\n');
  process.stdout.write(`${preamble}\n${table}\n`);
  const dir = path.join(REPO, 'test/bench/results');
  mkdirSync(dir, { recursive: true });
  const json = JSON.stringify({ startedAt, quick: QUICK, profile: PROFILE, policy, scenarios }, null, 2);
  writeFileSync(path.join(dir, `bench-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`), json);
  writeFileSync(path.join(dir, QUICK ? 'latest-quick.json' : 'latest.json'), json);
  writeFileSync(path.join(dir, QUICK ? 'latest-quick.md' : 'latest.md'), `${preamble}\n${table}\n`);
}

async function twoReplicas(
  cp: ControlPlaneProcess,
  dp: { url: string },
  full: { slug: string; token: string },
  gw: (g: { slug: string; token: string }) => { url: string; headers: Record<string, string> },
): Promise<void> {
  const dp2 = await startDataPlane(cp, await registerDataPlaneToken(cp, 'bench-2'));
  cleanups.push(() => dp2.spawned.stop());
  await waitForGateway(`${dp2.url}/mcp/${full.slug}`, full.token);
  const one = await startRoundRobin([dp.url]);
  const two = await startRoundRobin([dp.url, dp2.url]);
  cleanups.push(one.close, two.close);
  const behind = (proxy: { url: string }, name: string): BenchPath => ({ name, url: `${proxy.url}/mcp/${full.slug}`, headers: gw(full).headers });
  await measure('Two replicas behind a round-robin proxy (32 sessions, full policy)', 'calls/s', true, [behind(one, 'one replica behind the proxy'), behind(two, 'two replicas, alternating per request')], (p) => ({
    kind: 'concurrent', url: p.url, headers: p.headers, sessions: 32, durationMs: PROFILE.durationMs, warmupMs: PROFILE.warmupMs, payloadBytes: 16,
  }));
}

try {
  await main();
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
}
process.exit(0);
