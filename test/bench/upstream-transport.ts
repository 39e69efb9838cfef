/**
 * The data plane's upstream leg alone: the SDK `Client` over the SDK's fetch-based
 * `StreamableHTTPClientTransport` versus over `UndiciStreamableHttpTransport` (what the
 * gateway uses), against the same upstream process, in interleaved rounds. Two upstreams:
 * the lean JSON echo (test/bench/upstreams/echo.ts) and the SDK echo fixture (SSE answers).
 *
 *   npx tsx test/bench/upstream-transport.ts [--calls 2000] [--rounds 3]
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { Agent } from 'undici';
import { UndiciStreamableHttpTransport } from '../../data-plane/upstream/http-transport.js';
import { summarize } from './lib/stats.js';

const arg = (name: string, fallback: number) => {
  const at = process.argv.indexOf(`--${name}`);
  return at === -1 ? fallback : Number(process.argv[at + 1]);
};
const CALLS = arg('calls', 2_000);
const ROUNDS = arg('rounds', 3);
const CONCURRENCY = 32;

async function startUpstream(args: string[]): Promise<{ url: string; stop: () => void }> {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args, '--http', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`upstream exited with ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const match = /^LISTENING (\S+)$/.exec(line);
      if (match) resolve(match[1]!);
    });
  });
  return { url, stop: () => child.kill() };
}

async function measure(label: string, makeTransport: () => Transport): Promise<{ label: string; p50: number; p99: number; perSecond: number }> {
  const client = new Client({ name: 'bench', version: '1' });
  await client.connect(makeTransport());
  const call = (i: number) => client.callTool({ name: 'echo', arguments: { text: `call ${i}` } });
  for (let i = 0; i < 200; i += 1) await call(i);
  const latencies: number[] = [];
  for (let i = 0; i < CALLS; i += 1) {
    const started = performance.now();
    await call(i);
    latencies.push(performance.now() - started);
  }
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < CALLS) await call(next++);
    }),
  );
  const perSecond = CALLS / ((performance.now() - started) / 1000);
  await client.close();
  const summary = summarize(latencies);
  return { label, p50: summary.p50, p99: summary.p99, perSecond };
}

const agent = new Agent({ connections: 128, pipelining: 1 });
const upstreams = [
  { name: 'lean JSON echo', args: ['test/bench/upstreams/echo.ts'] },
  { name: 'SDK echo (SSE)', args: ['test/fixtures/mcp/echo-server.ts'] },
];
for (const upstream of upstreams) {
  const running = await startUpstream(upstream.args);
  const url = new URL(running.url);
  const results: Record<string, { p50: number[]; p99: number[]; perSecond: number[] }> = {};
  for (let round = 0; round < ROUNDS; round += 1) {
    for (const [label, make] of [
      ['SDK fetch transport', () => new StreamableHTTPClientTransport(url)],
      ['undici transport', () => new UndiciStreamableHttpTransport({ url, dispatcher: agent })],
    ] as const) {
      const result = await measure(label, make);
      const row = (results[label] ??= { p50: [], p99: [], perSecond: [] });
      row.p50.push(result.p50);
      row.p99.push(result.p99);
      row.perSecond.push(result.perSecond);
    }
  }
  running.stop();
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  console.log(`\n${upstream.name}: ${CALLS} sequential calls (then ${CALLS} at ${CONCURRENCY} in flight on one session), median of ${ROUNDS} rounds`);
  for (const [label, row] of Object.entries(results)) {
    console.log(`  ${label.padEnd(20)} p50 ${median(row.p50).toFixed(3)} ms  p99 ${median(row.p99).toFixed(3)} ms  ${Math.round(median(row.perSecond))} calls/s at ${CONCURRENCY}`);
  }
}
await agent.close();
