/**
 * What each big module costs a data-plane process in memory:
 *
 *   node --import tsx test/bench/memory-modules.ts [repetitions]
 *
 * Every measurement is a fresh process (`node --expose-gc [--import tsx] -e …`, in the
 * repository so bare names resolve as the data plane's do) that imports its modules,
 * runs a full GC, waits for the allocator to settle and prints `process.memoryUsage()`.
 * Two tables: **cumulative**, in the order a `gatehouse data-plane` process loads them
 * (so each row is what that layer adds on top of the previous ones, shared dependencies
 * counted once, where they first load), and **alone**, each module over a bare tsx
 * process (what it costs by itself, shared dependencies included). Medians of the
 * repetitions (default 3). RSS is the process's resident set; the heap columns are the
 * main isolate's (tsx's module hooks run in a worker thread with its own heap, which
 * shows in RSS only).
 */
import { execFileSync } from 'node:child_process';
import { REPO } from './lib/processes.js';

interface Usage {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

interface Layer {
  readonly name: string;
  /** Modules imported (bare names, or paths from the repository root). */
  readonly imports: readonly string[];
  /** Code run after the imports, e.g. to make a lazy module build its tables. */
  readonly then?: string;
  readonly tsx?: boolean;
}

const SAMPLE = JSON.stringify(JSON.stringify({ name: 'echo', arguments: { text: 'hello, governed world' } }));
const GPT_TOKENIZER = `(await import('gpt-tokenizer/encoding/cl100k_base')).countTokens(${SAMPLE});`;
const COUNTER = `(await (await import('./data-plane/audit/cl100k-counter.ts')).Cl100kCounter.load()).count(${SAMPLE});`;
/** What the data plane's audit shipper loads on its first flush. */
const ESTIMATOR = `{ const { TokenEstimator } = await import('./data-plane/audit/token-estimator.ts'); const t = new TokenEstimator(); await t.ready(); t.estimate(${SAMPLE}); }`;

/** In the order `control-plane/cli/main.ts data-plane` loads them. */
const CUMULATIVE: readonly Layer[] = [
  { name: 'node, nothing imported', imports: [], tsx: false },
  { name: '+ tsx (--import tsx: its hooks thread, esbuild)', imports: [] },
  { name: '+ CLI: zod, pino, control-plane/config + logger', imports: ['zod', 'pino', './control-plane/config.ts', './control-plane/logger.ts', './data-plane/config.ts'] },
  { name: '+ @modelcontextprotocol/sdk (client, types)', imports: ['@modelcontextprotocol/sdk/client/index.js', '@modelcontextprotocol/sdk/types.js'] },
  { name: '+ undici', imports: ['undici'] },
  { name: '+ graphql-ws + ws (push channel)', imports: ['graphql-ws', 'ws'] },
  { name: '+ re2 + the rule library (schema/rules)', imports: ['re2', './schema/rules/engine/index.ts', './schema/rules/pii/index.ts'] },
  { name: '+ prom-client', imports: ['prom-client'] },
  { name: '+ the data plane (app, launcher, audit)', imports: ['./control-plane/cli/start-data-plane.ts', './data-plane/app.ts'] },
  { name: '+ the audit token estimator, loaded, first count', imports: [], then: ESTIMATOR },
];

const ALONE: readonly Layer[] = [
  { name: 'gpt-tokenizer cl100k_base (+ first count)', imports: [], then: GPT_TOKENIZER },
  { name: 'Cl100kCounter (data-plane/audit, + first count)', imports: [], then: COUNTER },
  { name: '@modelcontextprotocol/sdk client + types', imports: ['@modelcontextprotocol/sdk/client/index.js', '@modelcontextprotocol/sdk/types.js'] },
  { name: 'zod', imports: ['zod'] },
  { name: 'undici', imports: ['undici'] },
  { name: 'prom-client', imports: ['prom-client'] },
  { name: 're2', imports: ['re2'] },
  { name: 'rule library (schema/rules, re2, PII)', imports: ['./schema/rules/engine/index.ts', './schema/rules/pii/index.ts'] },
  { name: 'ioredis (only with REDIS_URL)', imports: ['ioredis'] },
  { name: 'jose (not loaded by the data plane)', imports: ['jose'] },
  { name: 'pino', imports: ['pino'] },
  { name: 'graphql-ws + ws', imports: ['graphql-ws', 'ws'] },
];

function measure(imports: readonly string[], then: string, tsx: boolean): Usage {
  const code = [
    ...imports.map((spec) => `await import(${JSON.stringify(spec)});`),
    then,
    'globalThis.gc(); await new Promise((r) => setTimeout(r, 300)); globalThis.gc();',
    'process.stdout.write(JSON.stringify(process.memoryUsage()));',
  ].join('\n');
  const args = ['--expose-gc', ...(tsx ? ['--import', 'tsx'] : []), '--input-type=module', '-e', code];
  return JSON.parse(execFileSync(process.execPath, args, { cwd: REPO, encoding: 'utf8', env: { ...process.env, GATEHOUSE_LOG_LEVEL: 'silent' } })) as Usage;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function medianUsage(runs: Usage[]): Usage {
  const keys = ['rss', 'heapUsed', 'heapTotal', 'external', 'arrayBuffers'] as const;
  return Object.fromEntries(keys.map((k) => [k, median(runs.map((r) => r[k]))])) as unknown as Usage;
}

const mib = (bytes: number) => (bytes / 1048576).toFixed(1);
const signed = (bytes: number) => `${bytes >= 0 ? '+' : ''}${mib(bytes)}`;

function table(title: string, rows: { name: string; usage: Usage; delta: Usage }[]): string {
  const header = ['layer', 'RSS MiB', 'Δ RSS', 'heapUsed', 'Δ heapUsed', 'heapTotal', 'external', 'arrayBuffers'];
  const lines = rows.map((r) => [r.name, mib(r.usage.rss), signed(r.delta.rss), mib(r.usage.heapUsed), signed(r.delta.heapUsed), mib(r.usage.heapTotal), mib(r.usage.external), mib(r.usage.arrayBuffers)]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [`### ${title}`, '', fmt(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(fmt), ''].join('\n');
}

const repetitions = Number(process.argv[2] ?? 3);
const run = (layer: Layer, imports: readonly string[], then: string) =>
  medianUsage(Array.from({ length: repetitions }, () => measure(imports, then, layer.tsx ?? true)));

const cumulativeRows: { name: string; usage: Usage; delta: Usage }[] = [];
let imports: string[] = [];
let then = '';
let previous: Usage | undefined;
for (const layer of CUMULATIVE) {
  imports = [...imports, ...layer.imports];
  then += layer.then ?? '';
  const usage = run(layer, imports, then);
  const base = previous ?? usage;
  cumulativeRows.push({ name: layer.name, usage, delta: { rss: usage.rss - base.rss, heapUsed: usage.heapUsed - base.heapUsed, heapTotal: 0, external: 0, arrayBuffers: 0 } });
  previous = usage;
}

const bare = run({ name: 'tsx', imports: [] }, [], '');
const aloneRows = [{ name: 'bare tsx process', usage: bare, delta: { rss: 0, heapUsed: 0, heapTotal: 0, external: 0, arrayBuffers: 0 } }];
for (const layer of ALONE) {
  const usage = run(layer, layer.imports, layer.then ?? '');
  aloneRows.push({ name: layer.name, usage, delta: { rss: usage.rss - bare.rss, heapUsed: usage.heapUsed - bare.heapUsed, heapTotal: 0, external: 0, arrayBuffers: 0 } });
}

process.stdout.write(`Node ${process.version}; medians of ${repetitions} fresh processes per row; after a full GC.\n\n`);
process.stdout.write(`${table('Cumulative, in data-plane load order', cumulativeRows)}\n${table('Each alone, over a bare tsx process', aloneRows)}\n`);
