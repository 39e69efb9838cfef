/**
 * Where the latency of sequential calls goes, and A/B of data-plane settings under it:
 *
 *   node --import tsx test/bench/latency-tail.ts [--rounds 10] [--calls 1000] [--variant K=V,K2=V2]… [--gc] [--alloc]
 *
 * Paths: the echo upstream called directly, the floor (a bare HTTP forwarder in its own
 * process, test/bench/upstreams/forwarder.ts) and one data plane per `--variant` (its
 * environment; none given: one data plane as shipped), each under the full policy. The
 * paths take turns, `--calls` sequential calls each per round, so noise on a shared machine
 * falls on all of them alike; a variant's row is comparable with the others of the same
 * run only. Prints p50/p90/p99/p99.9 per path.
 *
 * `--gc`: each data plane's GCs during the run (count and pause by kind, from a
 * PerformanceObserver installed over the inspector) and how many of its calls slower
 * than 2 ms overlapped one. `--alloc`: what the first data plane allocates per call, by
 * function (V8's sampling heap profiler, collected objects included); the profiler slows
 * that data plane down, so its latencies in the same run mean nothing.
 */
import { performance } from 'node:perf_hooks';
import { applyFullPolicy } from './lib/full-policy.js';
import { addGateway, addServer, registerDataPlaneToken, startControlPlane, startDataPlane, waitForGateway, type DataPlaneProcess } from './lib/gatehouse.js';
import { InspectorSession, inspectorUrl } from './lib/inspector.js';
import { startBenchServer } from './lib/processes.js';
import { LeanMcpSession, closePools } from './load/lean-client.js';

const argv = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const ROUNDS = option('--rounds', 10);
const CALLS = option('--calls', 1000);
const GC = argv.includes('--gc');
const ALLOC = argv.includes('--alloc');
const variants = argv.flatMap((arg, i) => (argv[i - 1] === '--variant' ? [arg] : []));
if (variants.length === 0) variants.push('');

/** Installed in a data plane over the inspector: every GC with its wall-clock start, pause and kind. */
const GC_OBSERVER = `(() => {
  const gcs = (globalThis.__latencyTailGcs = []);
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push([performance.timeOrigin + e.startTime, e.duration, e.detail?.kind ?? e.kind]);
  }).observe({ entryTypes: ['gc'] });
  return true;
})()`;
const GC_KINDS: Record<number, string> = { 1: 'scavenge', 2: 'minor mark-compact', 4: 'mark-compact', 8: 'incremental marking', 16: 'weak callbacks' };

interface AllocNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: AllocNode[];
}

interface Path {
  readonly name: string;
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly dp?: DataPlaneProcess;
  inspector?: InspectorSession;
  session?: LeanMcpSession;
  /** Wall-clock start (ms since the epoch) and duration of every measured call. */
  readonly samples: { at: number; ms: number }[];
}

const cleanups: (() => Promise<void>)[] = [];

async function main(): Promise<void> {
  const echo = await startBenchServer('echo', 'test/bench/upstreams/echo.ts', ['--http', '0']);
  cleanups.push(() => echo.spawned.stop());
  const floor = await startBenchServer('forwarder', 'test/bench/upstreams/forwarder.ts', ['--target', echo.url]);
  cleanups.push(() => floor.spawned.stop());
  const cp = await startControlPlane();
  cleanups.push(() => cp.stop());
  const gateway = await addGateway(cp, 'tail', [await addServer(cp, { name: 'echo', remoteUrl: echo.url })], { pin: true });
  await applyFullPolicy(cp, [gateway.gatewayId]);

  const paths: Path[] = [
    { name: 'direct', url: echo.url, headers: {}, samples: [] },
    { name: 'floor (bare forwarder)', url: floor.url, headers: {}, samples: [] },
  ];
  for (const [i, variant] of variants.entries()) {
    const env = Object.fromEntries(variant.split(',').filter(Boolean).map((pair) => pair.split('=', 2) as [string, string]));
    const dp = await startDataPlane(cp, await registerDataPlaneToken(cp, `tail-${i}`), env, GC || ALLOC ? ['--inspect=127.0.0.1:0'] : []);
    cleanups.push(() => dp.spawned.stop());
    const url = `${dp.url}/mcp/${gateway.slug}`;
    await waitForGateway(url, gateway.token);
    const path: Path = { name: `gatehouse${variant ? ` ${variant}` : ''}`, url, headers: { authorization: `Bearer ${gateway.token}` }, dp, samples: [] };
    if (GC || ALLOC) path.inspector = await InspectorSession.connect(inspectorUrl(dp.spawned.tail)!);
    paths.push(path);
  }

  const args = { text: 'x'.repeat(16) };
  for (const path of paths) {
    path.session = new LeanMcpSession(path.url, path.headers);
    await path.session.initialize();
    for (let i = 0; i < 1000; i++) await path.session.callTool('echo', args); // warm-up
    if (GC) await path.inspector?.evaluate(GC_OBSERVER);
  }
  const profiled = ALLOC ? paths.find((path) => path.inspector) : undefined;
  if (profiled) {
    await profiled.inspector!.send('HeapProfiler.enable');
    await profiled.inspector!.send('HeapProfiler.startSampling', { samplingInterval: 512, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const path of paths) {
      for (let i = 0; i < CALLS; i++) {
        const started = performance.now();
        await path.session!.callTool('echo', args);
        path.samples.push({ at: performance.timeOrigin + started, ms: performance.now() - started });
      }
    }
  }

  console.log(`${ROUNDS} rounds of ${CALLS} sequential tools/call per path, 16-byte payload, full policy; ms`);
  const floorP = percentiles(paths[1]!.samples.map((s) => s.ms));
  for (const path of paths) {
    const p = percentiles(path.samples.map((s) => s.ms));
    const overFloor = path === paths[0] || path === paths[1] ? '' : `   over the floor: p50 +${(p.p50 - floorP.p50).toFixed(3)}, p99 +${(p.p99 - floorP.p99).toFixed(3)}`;
    console.log(`${path.name.padEnd(44)} p50 ${p.p50.toFixed(3)}  p90 ${p.p90.toFixed(3)}  p99 ${p.p99.toFixed(3)}  p99.9 ${p.p999.toFixed(3)}${overFloor}`);
  }
  if (GC) {
    for (const path of paths.filter((p) => p.inspector)) {
      const gcs = await path.inspector!.evaluate<[number, number, number][]>('globalThis.__latencyTailGcs.splice(0)');
      const first = path.samples[0]!.at;
      const measured = gcs.filter(([at]) => at >= first);
      const byKind = new Map<number, number[]>();
      for (const [, duration, kind] of measured) byKind.set(kind, [...(byKind.get(kind) ?? []), duration]);
      const slow = path.samples.filter((s) => s.ms > 2);
      const hit = slow.filter((s) => measured.some(([at, duration]) => at < s.at + s.ms && at + duration > s.at));
      const kinds = [...byKind].map(([kind, durations]) => `${durations.length} ${GC_KINDS[kind] ?? `kind ${kind}`} (mean ${(durations.reduce((a, b) => a + b, 0) / durations.length).toFixed(2)} ms)`);
      console.log(`${path.name}: GCs during its calls and the others': ${kinds.join(', ') || 'none'}; of its ${slow.length} calls over 2 ms, ${hit.length} overlapped a GC`);
    }
  }
  if (profiled) {
    const { profile } = await profiled.inspector!.send<{ profile: { head: AllocNode } }>('HeapProfiler.stopSampling');
    printAllocations(profile.head, ROUNDS * CALLS, profiled.name);
  }
  for (const path of paths) {
    await path.session?.close();
    path.inspector?.close();
  }
}

function percentiles(values: number[]): { p50: number; p90: number; p99: number; p999: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), p999: at(0.999) };
}

/** Bytes allocated per call by function (self) and under it (inclusive), heaviest first. */
function printAllocations(head: AllocNode, calls: number, name: string): void {
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  const walk = (node: AllocNode, stack: ReadonlySet<string>): number => {
    const key = `${node.callFrame.functionName || '(anonymous)'} ${node.callFrame.url.replace(/.*\//, '')}:${node.callFrame.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + node.selfSize);
    total += node.selfSize;
    let sum = node.selfSize;
    const inner = new Set(stack).add(key);
    for (const child of node.children) sum += walk(child, inner);
    if (!stack.has(key)) inclusive.set(key, (inclusive.get(key) ?? 0) + sum);
    return sum;
  };
  walk(head, new Set());
  // Every path's calls ran while the profile was on; only this data plane's allocations are in it.
  console.log(`\n${name}: ~${(total / calls / 1024).toFixed(1)} KiB allocated per call (sampled)`);
  const top = (map: Map<string, number>, n: number) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([key, bytes]) => `  ${(bytes / calls).toFixed(0).padStart(7)} B/call  ${key}`)
      .join('\n');
  console.log(`self:\n${top(self, 30)}\ninclusive:\n${top(inclusive, 40)}`);
}

main()
  .catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(async () => {
    await closePools();
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  });
