/**
 * Throughput of gateway rule evaluation as the data plane runs it (`evaluateLeg`: JSON walk,
 * one-pass regex set, PII pack, rewrites, rebuild), for the issue-5 targets:
 *
 * - the default PII pack (every entity type) plus 10 regex rules over 1 KiB, 64 KiB and
 *   1 MiB payloads: ≥ 100 MB/s per core;
 * - a 1 MiB input shaped for catastrophic backtracking: ≤ 50 ms.
 *
 *   npx tsx test/bench/rules-eval.ts [--runs 7] [--compare <checkout>]
 *
 * `--compare` also evaluates every cell with the rule engine of another checkout (say, the
 * code before a change, copied outside the repo), round by round in this same process, and
 * prints its MB/s and the ratio next to each figure: on a shared machine, load changes
 * absolute figures from one run to the next, not much a ratio measured in the same rounds.
 *
 * MB/s is 10^6 UTF-16 code units of scanned text per second of this process's CPU time
 * (user + system, so other load on the machine does not count against it), best of
 * `--runs` timed rounds after warm-up. Payload kinds:
 *
 * - `dense`: the labelled PII corpus (test/corpus/pii/tuned.jsonl) concatenated, one PII
 *   finding every ~145 characters: a tool result with one text block (worst case);
 * - `json`: the same corpus texts as string values of a tool-call's arguments (many values);
 * - `typical`: log/prose text with one email and one phone number per ~4 KiB, as a tool result.
 *
 * Rules run with `alert_only` (scanning cost) and with `redact` (scanning plus rewriting).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { compileRuleSet, evaluateLeg, type LegCall } from '../../schema/rules/engine/index.js';
import { ENTITY_TYPES } from '../../schema/rules/pii/index.js';
import type { RuleAction, SnapshotRule } from '../../schema/snapshot/index.js';

const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg >= 0 ? Number(process.argv[runsArg + 1]) : 7;
const compareArg = process.argv.indexOf('--compare');
const COMPARE = compareArg >= 0 ? resolve(process.argv[compareArg + 1] ?? '.') : undefined;

/** The part of a rule engine this benchmark drives (this checkout's, or the one compared with). */
interface Engine {
  compileRuleSet: typeof compileRuleSet;
  evaluateLeg: typeof evaluateLeg;
}

const corpusFile = fileURLToPath(new URL('../corpus/pii/tuned.jsonl', import.meta.url));
const samples = readFileSync(corpusFile, 'utf8')
  .split('\n')
  .filter((l) => l !== '')
  .map((l) => (JSON.parse(l) as { text: string }).text);
const corpus = samples.join('\n');

/** The 10 regex rules of the benchmark: the kind admins write (keywords, code names, commands, ids). */
export const BENCH_PATTERNS: readonly (readonly [string, boolean])[] = [
  ['\\b(?:confidential|internal only|do not distribute)\\b', true],
  ['\\bproject[-_ ]?(?:falcon|orion|atlas)\\b', true],
  ['\\bDROP\\s+TABLE\\b', true],
  ['\\brm\\s+-rf\\s+/', false],
  ['\\b(?:password|passwd)\\s*[:=]\\s*\\S{1,64}', true],
  ['\\bemployee[-_ ]id\\s*[:=]\\s*E\\d{6}\\b', true],
  ['\\bacct_[A-Za-z0-9]{16}\\b', false],
  ['\\bBEGIN CERTIFICATE\\b', false],
  ['\\b(?:curl|wget)\\s+https?://\\S{1,200}\\|\\s*sh\\b', true],
  ['\\bpatient\\s+(?:id|number)\\b', true],
];

function rules(action: RuleAction, withPii = true, patterns = BENCH_PATTERNS): SnapshotRule[] {
  const base = { gatewayId: 'gw', hooks: ['request', 'response'] as const, failureMode: 'closed' as const, raiseAlert: false };
  const scope = { assignmentIds: [], features: [], parts: ['toolArguments', 'toolResults'] as const };
  const list: SnapshotRule[] = patterns.map(([pattern, caseInsensitive], i) => ({
    ...base,
    id: `regex-${i}`,
    name: `Regex ${i}`,
    order: i + 1,
    scope,
    detection: { kind: 'regex', patterns: [pattern], caseInsensitive },
    action,
  }));
  if (withPii) {
    list.unshift({ ...base, id: 'pii', name: 'PII pack', order: 0, scope, detection: { kind: 'pii', entityTypes: [...ENTITY_TYPES], minConfidence: 0.5, allowList: [] }, action });
  }
  return list;
}

function cut(text: string, size: number): string {
  let s = '';
  while (s.length < size) s += text;
  return s.slice(0, size);
}

function typicalText(size: number): string {
  const lines = [
    '2026-03-02T10:15:22.114Z INFO request handled path=/api/v2/orders status=200 duration_ms=48 region=eu-west-1',
    'The deployment finished without errors; all health checks passed and traffic was shifted to the new version.',
    'function total(items) { return items.reduce((sum, item) => sum + item.price * item.quantity, 0); }',
    '2026-03-02T10:15:23.902Z WARN retrying upstream call attempt=2 backoff_ms=250 upstream=inventory',
    'Quarterly revenue grew 12% year over year, driven by the enterprise segment and lower churn in Q4.',
  ];
  let s = '';
  let n = 0;
  while (s.length < size) {
    s += `${lines[n % lines.length]}\n`;
    n += 1;
    if (n % 40 === 0) s += `Contact the owner at owner${n}@example.com or call +1 415 555 ${String(1000 + (n % 9000)).padStart(4, '0')}.\n`;
  }
  return s.slice(0, size);
}

interface Payload {
  readonly kind: string;
  readonly leg: 'request' | 'response';
  readonly message: Record<string, unknown>;
  /** Characters of text the rules scan. */
  readonly chars: number;
}

function payloads(size: number): Payload[] {
  const dense = cut(corpus, size);
  const values: string[] = [];
  let chars = 0;
  for (let i = 0; chars < size; i++) {
    const text = samples[i % samples.length]!;
    const piece = text.slice(0, size - chars);
    values.push(piece);
    chars += piece.length;
  }
  const typical = typicalText(size);
  return [
    { kind: 'dense', leg: 'response', message: { content: [{ type: 'text', text: dense }] }, chars: dense.length },
    { kind: 'json', leg: 'request', message: { name: 'crm.bulk_update', arguments: { records: values.map((text, i) => ({ id: i, note: text })) } }, chars },
    { kind: 'typical', leg: 'response', message: { content: [{ type: 'text', text: typical }] }, chars: typical.length },
  ];
}

function legCall(leg: 'request' | 'response'): LegCall {
  return {
    leg,
    method: 'tools/call',
    assignmentId: 'asg',
    featureNames: ['tool'],
    envelope: {
      workspace: { id: 'ws' },
      gateway: { id: 'gw', slug: 'gw' },
      server: { id: 'srv', name: 'srv' },
      feature: { type: 'tools', name: 'tool' },
      caller: { userId: null, connectionId: 'c', hostId: 'h' },
    },
    report: () => undefined,
  };
}

/**
 * Best-of-RUNS CPU milliseconds of one evaluation, for each of `works` (measured round by
 * round, so each round sees the same load). Evaluation is synchronous for text rules, so
 * CPU time is its cost.
 */
async function cpuMs(works: ReadonlyArray<() => Promise<unknown>>, chars: number): Promise<number[]> {
  const iterations = Math.max(1, Math.round((2 * 1024 * 1024) / chars));
  for (const work of works) for (let i = 0; i < Math.min(iterations, 20); i++) await work();
  const best = works.map(() => Infinity);
  for (let run = 0; run < RUNS; run++) {
    for (let w = 0; w < works.length; w++) {
      const start = process.cpuUsage();
      for (let i = 0; i < iterations; i++) await works[w]!();
      const used = process.cpuUsage(start);
      best[w] = Math.min(best[w]!, (used.user + used.system) / 1000 / iterations);
    }
  }
  return best;
}

const mbps = (chars: number, ms: number) => (chars / ms / 1000).toFixed(0);

async function main(): Promise<void> {
  console.log(`node ${process.version}; CPU time of this process, best of ${RUNS} rounds; MB/s = 10^6 chars/s of scanned text`);
  const engines: Engine[] = [{ compileRuleSet, evaluateLeg }];
  if (COMPARE !== undefined) {
    engines.push((await import(pathToFileURL(`${COMPARE}/schema/rules/engine/index.ts`).href)) as Engine);
    console.log(`each cell: this checkout (the compared one at ${COMPARE}, ratio)`);
  }
  const sets = (engine: Engine) => {
    const options = { hashSalt: 'salt', engines: new Map() };
    return [
      engine.compileRuleSet(rules({ kind: 'alert_only' }, true, []), options),
      engine.compileRuleSet(rules({ kind: 'alert_only' }, false), options),
      engine.compileRuleSet(rules({ kind: 'alert_only' }), options),
      engine.compileRuleSet(rules({ kind: 'redact' }), options),
    ];
  };
  const compiled = engines.map(sets);
  console.log('');
  console.log('| payload | size | PII pack only | 10 regex only | pack + 10 regex (alert_only) | pack + 10 regex (redact) |');
  console.log('|---|---|---|---|---|---|');
  for (const [label, size] of [['1 KiB', 1024], ['64 KiB', 64 * 1024], ['1 MiB', 1024 * 1024]] as const) {
    for (const payload of payloads(size)) {
      const call = legCall(payload.leg);
      const cells: string[] = [];
      for (let k = 0; k < compiled[0]!.length; k++) {
        const ms = await cpuMs(compiled.map((set, e) => () => engines[e]!.evaluateLeg(set[k]!, call, payload.message)), payload.chars);
        cells.push(ms.length === 1 ? `${mbps(payload.chars, ms[0]!)} MB/s` : `${mbps(payload.chars, ms[0]!)} MB/s (${mbps(payload.chars, ms[1]!)}, ×${(ms[1]! / ms[0]!).toFixed(2)})`);
      }
      console.log(`| ${payload.kind} | ${label} | ${cells.join(' | ')} |`);
    }
  }

  console.log('');
  console.log('Catastrophic-backtracking input: 1 MiB of "a" then "!" (tool argument), each pattern alone, block action');
  console.log('| pattern | ms per evaluation (RE2) |');
  console.log('|---|---|');
  const evil = `${'a'.repeat(1024 * 1024)}!`;
  for (const pattern of ['^(a+)+$', '(a|aa)+$', '(a*)*b', '^(a|a?)+$', '(.*a){12}$']) {
    const set = compileRuleSet(rules({ kind: 'block' }, false, [[pattern, false]]), { hashSalt: 'salt', engines: new Map() });
    const message = { name: 't', arguments: { text: evil } };
    const [ms] = await cpuMs([() => evaluateLeg(set, legCall('request'), message)], evil.length);
    console.log(`| \`${pattern}\` | ${ms!.toFixed(1)} |`);
  }
  // For contrast: a backtracking engine on 24 characters of the same shape.
  const t0 = performance.now();
  /^(a+)+$/.test(`${'a'.repeat(21)}!`);
  console.log(`(V8 RegExp \`^(a+)+$\` on 22 characters: ${(performance.now() - t0).toFixed(0)} ms)`);
  const [packOnEvil] = await cpuMs([() => evaluateLeg(compiled[0]![2]!, legCall('request'), { name: 't', arguments: { text: evil } })], evil.length);
  console.log(`PII pack + 10 regex rules on the same input: ${packOnEvil!.toFixed(1)} ms`);
}

await main();
