/**
 * Profiles a data plane under load: `node --import tsx test/bench/profile.ts [audit|full|stdio] [sessions] [seconds]`
 * starts the benchmark topology with the data plane under `--cpu-prof`, drives it with
 * the load generator, stops it and prints the heaviest functions (self time) from the
 * profile, which it leaves in test/bench/results/profiles/.
 */
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { applyFullPolicy } from './lib/full-policy.js';
import { addGateway, addServer, registerDataPlaneToken, startControlPlane, startDataPlane, waitForGateway } from './lib/gatehouse.js';
import { ECHO_STDIO } from './lib/peers.js';
import { REPO, loadGenerator, startBenchServer } from './lib/processes.js';

const [which = 'full', sessionsArg = '32', secondsArg = '8'] = process.argv.slice(2);
const dir = path.join(REPO, 'test/bench/results/profiles');
mkdirSync(dir, { recursive: true });

const echo = await startBenchServer('echo', 'test/bench/upstreams/echo.ts', ['--http', '0']);
const cp = await startControlPlane();
const serverId = which === 'stdio' ? await addServer(cp, { name: 'echo', command: ECHO_STDIO[0], args: ECHO_STDIO.slice(1) }) : await addServer(cp, { name: 'echo', remoteUrl: echo.url });
const gateway = await addGateway(cp, 'profiled', [serverId], { pin: which !== 'audit' });
if (which !== 'audit') await applyFullPolicy(cp, [gateway.gatewayId]);
const dp = await startDataPlane(cp, await registerDataPlaneToken(cp, 'profiled'), {}, ['--cpu-prof', '--cpu-prof-dir', dir]);
const url = `${dp.url}/mcp/profiled`;
await waitForGateway(url, gateway.token);
/** CPU seconds (user + system) a process has used, from /proc. */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}
function postgresPids(): number[] {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres';
    } catch {
      return false;
    }
  });
}
const watched = { 'data plane': dp.spawned.child.pid!, 'control plane': cp.spawned.child.pid!, 'echo upstream': echo.spawned.child.pid! };
const cleanups: (() => Promise<void>)[] = [];
const runWorker = loadGenerator(cleanups);
const runJob = (durationMs: number) =>
  runWorker({ kind: 'concurrent', url, headers: { authorization: `Bearer ${gateway.token}` }, sessions: Number(sessionsArg), durationMs, warmupMs: 500, payloadBytes: 1024 });
await runJob(3_000);
const cpuBefore = Object.fromEntries(Object.entries(watched).map(([k, pid]) => [k, cpuSeconds(pid)]));
const pgBefore = postgresPids().reduce((sum, pid) => sum + cpuSeconds(pid), 0);
const result = await runJob(Number(secondsArg) * 1000);
for (const cleanup of cleanups) await cleanup();
console.log(JSON.stringify(result));
const calls = result.kind === 'throughput' ? result.calls : 1;
console.log('CPU per measured call, after a separate warm-up (µs):');
for (const [name, pid] of Object.entries(watched)) console.log(`  ${name.padEnd(16)} ${(((cpuSeconds(pid) - cpuBefore[name]!) * 1e6) / calls).toFixed(0)}`);
if (result.kind === 'throughput' && result.cpuSeconds !== undefined) console.log(`  ${'load generator'.padEnd(16)} ${((result.cpuSeconds * 1e6) / calls).toFixed(0)}`);
console.log(`  ${'postgres'.padEnd(16)} ${(((postgresPids().reduce((sum, pid) => sum + cpuSeconds(pid), 0) - pgBefore) * 1e6) / calls).toFixed(0)}`);
const before = new Set(readdirSync(dir));
await dp.spawned.stop();
await cp.stop();
await echo.spawned.stop();
const file = readdirSync(dir).find((f) => !before.has(f)) ?? readdirSync(dir).sort().at(-1)!;
const profile = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
};
const self = new Map<number, number>();
for (const sample of profile.samples) self.set(sample, (self.get(sample) ?? 0) + 1);
const byFrame = new Map<string, number>();
for (const node of profile.nodes) {
  const key = `${node.callFrame.functionName || '(anonymous)'} ${node.callFrame.url.replace(/^.*node_modules\//, '~/').replace(`file://${REPO}/`, '')}:${node.callFrame.lineNumber + 1}`;
  byFrame.set(key, (byFrame.get(key) ?? 0) + (self.get(node.id) ?? 0));
}
const total = profile.samples.length;
console.log(`profile ${file}: ${total} samples`);
for (const [frame, count] of [...byFrame].sort((a, b) => b[1] - a[1]).slice(0, 45)) console.log(`${((100 * count) / total).toFixed(1).padStart(5)}%  ${frame}`);
const byFile = new Map<string, number>();
for (const node of profile.nodes) {
  const url = node.callFrame.url;
  const key = url === '' ? `(${node.callFrame.functionName || 'native'})` : url.includes('node_modules/') ? url.replace(/^.*node_modules\/((?:@[^/]+\/)?[^/]+).*$/, '~/$1') : url.startsWith('node:') ? url.replace(/^node:internal\/([^/]+).*$/, 'node:$1') : url.replace(`file://${REPO}/`, '');
  byFile.set(key, (byFile.get(key) ?? 0) + (self.get(node.id) ?? 0));
}
console.log('\nself time by file or package:');
for (const [file, count] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log(`${((100 * count) / total).toFixed(1).padStart(5)}%  ${file}`);
process.exit(0);
