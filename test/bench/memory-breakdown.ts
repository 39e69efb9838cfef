/**
 * Where a data plane's memory goes, and whether it grows:
 *
 *   node --import tsx test/bench/memory-breakdown.ts [options]
 *
 *   --calls N          calls per soak round (default 200000)
 *   --rounds R         soak rounds (default 2: 200k, then another 200k)
 *   --sessions N       sessions held open at once (default 1000)
 *   --bench-like       before the memory phases, run what `npm run bench` runs before its
 *                      memory scenario against the data plane (64 KiB payloads, 128
 *                      concurrent sessions, session setup), which sizes V8's heap up
 *   --snapshots        heap snapshots after warm-up and after each round, diffed (needs inspect)
 *   --alloc-profile    sample allocations during round 1 (V8's sampling heap profiler, garbage
 *                      included) and print the functions that allocate most per call
 *   --no-inspect       no inspector in the data plane: readings from /proc and /metrics only
 *   --node-flag F      a Node/V8 flag for the data-plane process (repeatable)
 *   --env K=V          an environment variable for the data-plane process (repeatable)
 *   --policy P         full (default: PII pack + 10 regex rules, as the bench) | audit
 *   --rate R           pace the soak at R calls/s (32 sessions, from this process) instead of
 *                      flat out from the load generator: CPU per call then compares across
 *                      runs on a busy machine (it depends on the load level)
 *   --json FILE        also write the readings as JSON
 *
 * Topology as test/bench/lib/gatehouse.ts starts it: a control plane process (Postgres
 * when DATABASE_URL is set, else the embedded database), the echo upstream over HTTP and
 * a `gatehouse data-plane` process (`node --import tsx control-plane/cli/main.ts
 * data-plane`). The load comes from the bench's load generator (a process of its own).
 *
 * Each reading has the data plane's RSS (anon and file-backed, from /proc), V8's heap
 * (used, committed, per space, from its /metrics), external memory and array buffers
 * (`process.memoryUsage()` over the inspector), and, with the inspector, the same after a
 * forced full GC: what is live versus what V8 merely keeps. With `--snapshots` it writes
 * heap snapshots under test/bench/results/heap/ and prints the groups that grew, and the
 * objects allocated during round 1 that are still alive after round 2 (a leak shows
 * there; heap that grew and plateaus does not). With the inspector it also counts the
 * data plane's GCs during each load (a PerformanceObserver installed over the inspector):
 * scavenges and mark-compacts, and their pause time. Heap snapshots leave glibc holding
 * the memory they used: readings after the first snapshot overstate RSS (not the heap).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { applyFullPolicy } from './lib/full-policy.js';
import { addGateway, addServer, registerDataPlaneToken, startControlPlane, startDataPlane, waitForGateway, type ControlPlaneProcess } from './lib/gatehouse.js';
import { diffSummaries, largestGroups, summarizeSnapshot, survivors, type HeapSummary } from './lib/heap-snapshot.js';
import { InspectorSession, inspectorUrl } from './lib/inspector.js';
import { REPO, loadGenerator, startBenchServer, type Spawned } from './lib/processes.js';
import { LeanMcpSession, closePools } from './load/lean-client.js';

// ── options ──
const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(name);
const value = (name: string, fallback: string) => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
};
const values = (name: string) => argv.flatMap((a, i) => (a === name && argv[i + 1] !== undefined ? [argv[i + 1]!] : []));
const CALLS = Number(value('--calls', '200000'));
const ROUNDS = Number(value('--rounds', '2'));
const SESSIONS = Number(value('--sessions', '1000'));
const INSPECT = !flag('--no-inspect');
const SNAPSHOTS = INSPECT && flag('--snapshots');
const ALLOC_PROFILE = INSPECT && flag('--alloc-profile');
const BENCH_LIKE = flag('--bench-like');
const POLICY = value('--policy', 'full');
const NODE_FLAGS = values('--node-flag');
const DP_ENV = Object.fromEntries(values('--env').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
const JSON_OUT = value('--json', '');
const RATE = Number(value('--rate', '0'));
const HEAP_DIR = path.join(REPO, 'test/bench/results/heap');

const cleanups: (() => Promise<void>)[] = [];

// ── readings ──
interface Reading {
  readonly label: string;
  /** MiB: resident set, its anonymous and file-backed parts, and the peak. */
  readonly rss: number;
  readonly rssAnon: number;
  readonly rssFile: number;
  readonly peakRss: number;
  readonly threads: number;
  /** MiB, V8 (main isolate): used and committed heap, per space committed / used. */
  readonly heapUsed: number;
  readonly heapTotal: number;
  readonly spaces: Record<string, { total: number; used: number }>;
  readonly external?: number;
  readonly arrayBuffers?: number;
  /** The same after a forced full GC (inspector only). */
  readonly afterGc?: { rss: number; heapUsed: number; heapTotal: number; external: number; arrayBuffers: number; newSpace: number; oldSpace: number };
  /** Of the load that led here: calls/s and the data plane's CPU µs per call. */
  readonly load?: { calls: number; callsPerSecond: number; cpuMicrosPerCall: number; errors: number };
  /** GCs of the data plane since the previous reading (inspector only). */
  readonly gc?: GcStats;
}

interface GcStats {
  scavenges: number;
  markCompacts: number;
  scavengeMs: number;
  markCompactMs: number;
}

/** Installed in the data plane over the inspector: GC counts and pauses by kind. */
const GC_OBSERVER = `(() => {
  const stats = (globalThis.__memoryBreakdownGc = { scavenges: 0, markCompacts: 0, scavengeMs: 0, markCompactMs: 0 });
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = entry.detail?.kind ?? entry.kind;
      if (kind === 1) { stats.scavenges++; stats.scavengeMs += entry.duration; }
      else if (kind === 4) { stats.markCompacts++; stats.markCompactMs += entry.duration; }
    }
  }).observe({ entryTypes: ['gc'] });
  return true;
})()`;
const GC_TAKE = `(() => { const s = globalThis.__memoryBreakdownGc; const copy = JSON.stringify(s); s.scavenges = s.markCompacts = s.scavengeMs = s.markCompactMs = 0; return copy; })()`;

const MiB = 1024 * 1024;
const readings: Reading[] = [];

function procStatus(pid: number): { rss: number; rssAnon: number; rssFile: number; peakRss: number; threads: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? Number.NaN) / 1024;
  return { rss: kb('VmRSS'), rssAnon: kb('RssAnon'), rssFile: kb('RssFile') + kb('RssShmem'), peakRss: kb('VmHWM'), threads: kb('Threads') * 1024 };
}

/** CPU seconds (user + system) the process has used. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Heap figures from the data plane's Prometheus metrics (prom-client's default metrics). */
async function heapFromMetrics(url: string): Promise<{ heapUsed: number; heapTotal: number; external: number; spaces: Record<string, { total: number; used: number }> }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const metric = (name: string) => Number(new RegExp(`^gatehouse_data_plane_${name} (\\S+)`, 'm').exec(text)?.[1] ?? Number.NaN) / MiB;
  const spaces: Record<string, { total: number; used: number }> = {};
  for (const match of text.matchAll(/^gatehouse_data_plane_nodejs_heap_space_size_(total|used)_bytes\{space="([^"]+)"\} (\S+)/gm)) {
    const space = (spaces[match[2]!] ??= { total: 0, used: 0 });
    space[match[1] as 'total' | 'used'] = Number(match[3]) / MiB;
  }
  return { heapUsed: metric('nodejs_heap_size_used_bytes'), heapTotal: metric('nodejs_heap_size_total_bytes'), external: metric('nodejs_external_memory_bytes'), spaces };
}

interface MemoryUsage {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}
const USAGE = 'JSON.stringify(process.memoryUsage())';

async function read(label: string, dp: { url: string; pid: number; inspector?: InspectorSession }, load?: Reading['load']): Promise<Reading> {
  await new Promise((resolve) => setTimeout(resolve, 1_000)); // let in-flight audit batches and timers settle
  const proc = procStatus(dp.pid);
  const heap = await heapFromMetrics(dp.url);
  let usage: MemoryUsage | undefined;
  let afterGc: Reading['afterGc'];
  let gc: GcStats | undefined;
  if (dp.inspector) {
    usage = JSON.parse(await dp.inspector.evaluate<string>(USAGE)) as MemoryUsage;
    gc = JSON.parse(await dp.inspector.evaluate<string>(GC_TAKE)) as GcStats;
    await dp.inspector.collectGarbage();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const collected = JSON.parse(await dp.inspector.evaluate<string>(USAGE)) as MemoryUsage;
    const gcHeap = await heapFromMetrics(dp.url);
    afterGc = {
      rss: procStatus(dp.pid).rss,
      heapUsed: collected.heapUsed / MiB,
      heapTotal: collected.heapTotal / MiB,
      external: collected.external / MiB,
      arrayBuffers: collected.arrayBuffers / MiB,
      newSpace: gcHeap.spaces.new?.total ?? Number.NaN,
      oldSpace: gcHeap.spaces.old?.total ?? Number.NaN,
    };
    await dp.inspector.evaluate<string>(GC_TAKE); // the forced GC is not the load's
  }
  const reading: Reading = {
    label,
    ...proc,
    heapUsed: heap.heapUsed,
    heapTotal: heap.heapTotal,
    spaces: heap.spaces,
    external: usage ? usage.external / MiB : heap.external,
    ...(usage ? { arrayBuffers: usage.arrayBuffers / MiB } : {}),
    ...(afterGc ? { afterGc } : {}),
    ...(load ? { load } : {}),
    ...(gc && load ? { gc } : {}),
  };
  readings.push(reading);
  const f = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '—' : n.toFixed(1));
  process.stderr.write(
    `  ${label}: RSS ${f(reading.rss)} (anon ${f(reading.rssAnon)}, file ${f(reading.rssFile)}), heap ${f(reading.heapUsed)}/${f(reading.heapTotal)}, new space ${f(heap.spaces.new?.total)}, ext ${f(reading.external)}, ab ${f(reading.arrayBuffers)}` +
      (afterGc ? ` | after GC: RSS ${f(afterGc.rss)}, heap ${f(afterGc.heapUsed)}/${f(afterGc.heapTotal)}` : '') +
      (load ? ` | ${load.callsPerSecond.toFixed(0)} calls/s, ${load.cpuMicrosPerCall.toFixed(0)} µs CPU/call, ${load.errors} errors` : '') +
      (reading.gc ? ` | GC: ${reading.gc.scavenges} scavenges (${reading.gc.scavengeMs.toFixed(0)} ms), ${reading.gc.markCompacts} mark-compacts (${reading.gc.markCompactMs.toFixed(0)} ms)` : '') +
      '\n',
  );
  return reading;
}

// ── the load generator ──
/** Runs one job in the load generator (one long-lived process, started on first use). */
const runWorker = loadGenerator(cleanups);

/** Runs `calls` tools/call over 32 sessions and measures throughput and the data plane's CPU per call. */
async function soak(target: { url: string; headers: Record<string, string> }, pid: number, calls: number): Promise<NonNullable<Reading['load']>> {
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  let errors = 0;
  if (RATE > 0) {
    errors = await pacedSoak(target, calls, RATE);
  } else {
    const result = await runWorker({ kind: 'soak', url: target.url, headers: target.headers, sessions: 32, calls, payloadBytes: 64 });
    errors = result.kind === 'done' ? result.errors : 0;
    if (result.kind === 'done' && result.firstError) process.stderr.write(`  first error: ${result.firstError}\n`);
  }
  const seconds = (performance.now() - t0) / 1000;
  return { calls, callsPerSecond: calls / seconds, cpuMicrosPerCall: ((cpuSeconds(pid) - cpu0) * 1e6) / calls, errors };
}

/** `calls` tools/call over 32 sessions at `rate` calls/s in all (each session on its own schedule). */
async function pacedSoak(target: { url: string; headers: Record<string, string> }, calls: number, rate: number): Promise<number> {
  const sessions = await Promise.all(
    Array.from({ length: 32 }, async () => {
      const session = new LeanMcpSession(target.url, target.headers);
      await session.initialize();
      return session;
    }),
  );
  const interval = (sessions.length * 1000) / rate;
  const args = { text: 'x'.repeat(64) };
  let remaining = calls;
  let errors = 0;
  const started = performance.now();
  await Promise.all(
    sessions.map(async (session, i) => {
      let due = started + (i * interval) / sessions.length;
      while (remaining-- > 0) {
        const wait = due - performance.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        due += interval;
        await session.callTool('echo', args).catch(() => errors++);
      }
    }),
  );
  await Promise.all(sessions.map((s) => s.close().catch(() => undefined)));
  await closePools();
  return errors;
}

/** Resident memory of a process by mapping: anonymous, the node binary, other files, stacks. */
function mappings(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  let current = '';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const header = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header) {
      const name = header[1]!.trim();
      current = name === '' ? '[anonymous: V8 heap pages, malloc arenas, thread stacks]' : name.startsWith('[') ? name : path.basename(name);
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) out[current] = (out[current] ?? 0) + Number(rss[1]) / 1024;
  }
  return Object.fromEntries(Object.entries(out).sort((a, b) => b[1] - a[1]).filter(([, v]) => v >= 0.5));
}

interface AllocationNode {
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly selfSize: number;
  readonly children: readonly AllocationNode[];
}

/** Bytes allocated per call by function (self), from a sampling heap profile that kept garbage. */
function allocationReport(head: AllocationNode, calls: number): string[] {
  const byFrame = new Map<string, number>();
  let total = 0;
  const visit = (node: AllocationNode) => {
    if (node.selfSize > 0) {
      const { functionName, url, lineNumber } = node.callFrame;
      const where = url ? `${path.relative(REPO, url.replace(/^file:\/\//, ''))}:${lineNumber + 1}` : '(native)';
      const key = `${functionName || '(anonymous)'} ${where}`;
      byFrame.set(key, (byFrame.get(key) ?? 0) + node.selfSize);
      total += node.selfSize;
    }
    for (const child of node.children) visit(child);
  };
  visit(head);
  const lines = [`Allocated per call during round 1 (sampled, garbage included): ${((total / calls) / 1024).toFixed(1)} KiB; the top allocating functions (KiB per call, share):`, ''];
  for (const [key, bytes] of [...byFrame.entries()].sort((a, b) => b[1] - a[1]).slice(0, 30)) {
    lines.push(`  ${(bytes / calls / 1024).toFixed(2).padStart(7)}  ${((100 * bytes) / total).toFixed(1).padStart(5)}%  ${key}`);
  }
  return lines;
}

// ── the run ──
async function main(): Promise<void> {
  process.stderr.write(`memory breakdown: ${ROUNDS} × ${CALLS} calls, ${SESSIONS} open sessions, policy ${POLICY}, node flags [${NODE_FLAGS.join(' ')}]${BENCH_LIKE ? ', bench-like warm-up' : ''}\n`);
  const echo = await startBenchServer('echo upstream', 'test/bench/upstreams/echo.ts', ['--http', '0']);
  cleanups.push(() => echo.spawned.stop());
  const cp: ControlPlaneProcess = await startControlPlane();
  cleanups.push(() => cp.stop());
  const serverId = await addServer(cp, { name: 'echo-http', remoteUrl: echo.url });
  const gateway = await addGateway(cp, 'memory', [serverId], { pin: POLICY !== 'audit' });
  if (POLICY === 'full') await applyFullPolicy(cp, [gateway.gatewayId]);
  const flags = [...NODE_FLAGS, ...(INSPECT ? ['--inspect=127.0.0.1:0'] : [])];
  const dp = await startDataPlane(cp, await registerDataPlaneToken(cp, 'memory'), DP_ENV, flags);
  const spawned: Spawned = dp.spawned;
  cleanups.push(() => spawned.stop());
  const pid = spawned.child.pid!;
  const target = { url: `${dp.url}/mcp/${gateway.slug}`, headers: { authorization: `Bearer ${gateway.token}` } };
  let inspector: InspectorSession | undefined;
  if (INSPECT) {
    const ws = inspectorUrl(spawned.tail);
    if (!ws) throw new Error(`the data plane printed no inspector URL:\n${spawned.tail.join('\n')}`);
    inspector = await InspectorSession.connect(ws);
    cleanups.push(async () => inspector!.close());
    await inspector.evaluate<boolean>(GC_OBSERVER);
  }
  const probe = { url: dp.url, pid, ...(inspector ? { inspector } : {}) };
  const started = await read('started, snapshot held, no call yet', probe);
  await waitForGateway(target.url, gateway.token);
  const mappingsAtStart = mappings(pid);

  if (BENCH_LIKE) {
    // What the bench runs against this data plane before its memory scenario (full profile).
    await runWorker({ kind: 'sequential', ...target, calls: 5_000, warmup: 1_000, payloadBytes: 16 });
    for (const sessions of [1, 8, 32, 128]) await runWorker({ kind: 'concurrent', ...target, sessions, durationMs: 4_000, warmupMs: 1_000, payloadBytes: 16 });
    for (const bytes of [1024, 65_536]) await runWorker({ kind: 'sequential', ...target, calls: 1_000, warmup: 100, payloadBytes: bytes });
    await runWorker({ kind: 'setup', ...target, count: 300, warmup: 10, maxMs: 10_000 });
    await read('after the bench scenarios', probe);
  }

  const warm = await soak(target, pid, 5_000);
  await read('warm-up: 5,000 calls', probe, warm);
  const snapshots: HeapSummary[] = [];
  const snapshot = async (name: string) => {
    if (!SNAPSHOTS || !inspector) return;
    mkdirSync(HEAP_DIR, { recursive: true });
    const file = path.join(HEAP_DIR, `${new Date().toISOString().replace(/[:.]/g, '-')}-${name}.heapsnapshot`);
    await inspector.heapSnapshot(file);
    snapshots.push(summarizeSnapshot(file));
    process.stderr.write(`  heap snapshot ${path.relative(REPO, file)}: ${(snapshots.at(-1)!.totalBytes / MiB).toFixed(1)} MiB in ${snapshots.at(-1)!.nodes} objects\n`);
  };
  await snapshot('warm');

  await runWorker({ kind: 'open-sessions', ...target, count: SESSIONS }, async () => {
    await read(`${SESSIONS} sessions open`, probe);
  });
  await read(`${SESSIONS} sessions closed`, probe);

  let allocations: string[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const profiling = ALLOC_PROFILE && inspector && round === 1;
    if (profiling) await inspector!.send('HeapProfiler.startSampling', { samplingInterval: 16_384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    const load = await soak(target, pid, CALLS);
    if (profiling) allocations = allocationReport((await inspector!.send<{ profile: { head: AllocationNode } }>('HeapProfiler.stopSampling')).profile.head, CALLS);
    await read(`after ${(round * CALLS).toLocaleString('en')} calls`, probe, load);
    await snapshot(`after-${round * CALLS}`);
  }
  const mappingsAtEnd = mappings(pid);

  // ── report ──
  const out: string[] = [];
  const f = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '—' : n.toFixed(1));
  out.push(
    `Data-plane memory, ${new Date().toISOString()}; Node ${process.version}; control plane on ${cp.databaseKind}; policy ${POLICY}; data-plane node flags: ${NODE_FLAGS.join(' ') || '(none)'}${INSPECT ? ' (+ --inspect)' : ''}; env: ${JSON.stringify(DP_ENV)}; load: ${RATE > 0 ? `${RATE} calls/s paced` : 'flat out'}, 32 sessions`,
    '',
    '| moment | RSS | RSS anon | RSS file | heapUsed | heapTotal | new space | old space | code space | large objects | external | arrayBuffers | after GC: RSS / heapUsed / heapTotal | calls/s | CPU µs/call | scavenges / mark-compacts (pause ms) |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const r of readings) {
    const s = (name: string) => r.spaces[name]?.total;
    out.push(
      `| ${r.label} | ${f(r.rss)} | ${f(r.rssAnon)} | ${f(r.rssFile)} | ${f(r.heapUsed)} | ${f(r.heapTotal)} | ${f(s('new'))} | ${f(s('old'))} | ${f(s('code'))} | ${f(s('large_object'))} | ${f(r.external)} | ${f(r.arrayBuffers)} | ` +
        `${r.afterGc ? `${f(r.afterGc.rss)} / ${f(r.afterGc.heapUsed)} / ${f(r.afterGc.heapTotal)}` : '—'} | ${r.load ? r.load.callsPerSecond.toFixed(0) : ''} | ${r.load ? r.load.cpuMicrosPerCall.toFixed(0) : ''} | ` +
        `${r.gc ? `${r.gc.scavenges} (${r.gc.scavengeMs.toFixed(0)}) / ${r.gc.markCompacts} (${r.gc.markCompactMs.toFixed(0)})` : ''} |`,
    );
  }
  out.push('', `Peak RSS (VmHWM): ${f(readings.at(-1)!.peakRss)} MiB; threads: ${readings.at(-1)!.threads}. All figures MiB.`, '');
  out.push('Resident memory by mapping (MiB), at start → at the end:', '');
  for (const name of new Set([...Object.keys(mappingsAtEnd), ...Object.keys(mappingsAtStart)])) {
    out.push(`  ${name.padEnd(60)} ${f(mappingsAtStart[name] ?? 0).padStart(7)} → ${f(mappingsAtEnd[name] ?? 0).padStart(7)}`);
  }
  out.push('');
  if (snapshots.length >= 2) {
    const [warmSnap, ...rest] = snapshots;
    out.push('Largest heap groups after warm-up (self size, MiB / objects):', '');
    for (const [key, g] of largestGroups(warmSnap!, 12)) out.push(`  ${key.padEnd(70)} ${(g.bytes / MiB).toFixed(2).padStart(7)} / ${g.count}`);
    for (const later of rest) {
      out.push('', `Heap groups that changed most, warm-up → ${path.basename(later.file)} (MiB, objects):`, '');
      for (const d of diffSummaries(warmSnap!, later, 15)) {
        out.push(`  ${d.key.padEnd(70)} ${(d.bytesA / MiB).toFixed(2).padStart(7)} → ${(d.bytesB / MiB).toFixed(2).padStart(7)}   ${d.countA} → ${d.countB}`);
      }
    }
    if (snapshots.length >= 3) {
      const [a, b, c] = [snapshots[0]!, snapshots[1]!, snapshots.at(-1)!];
      const alive = survivors(c.file, a.maxId, b.maxId);
      out.push(
        '',
        `Allocated during round 1 and still alive after round ${ROUNDS} (three-snapshot test): ${(alive.totalBytes / MiB).toFixed(2)} MiB in ${alive.count} objects; largest groups:`,
        '',
      );
      for (const [key, g] of [...alive.groups.entries()].sort((x, y) => y[1].bytes - x[1].bytes).slice(0, 15)) {
        out.push(`  ${key.padEnd(70)} ${(g.bytes / 1024).toFixed(1).padStart(9)} KiB / ${g.count}`);
      }
    }
  }
  if (allocations.length > 0) out.push('', ...allocations);
  const report = out.join('\n');
  process.stdout.write(`${report}\n`);
  if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify({ flags: NODE_FLAGS, env: DP_ENV, policy: POLICY, calls: CALLS, rounds: ROUNDS, readings, mappingsAtStart, mappingsAtEnd, started }, null, 2));
}

try {
  await main();
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
}
process.exit(0);
