/**
 * Throughput of the full built-in PII pack (every entity type, default options) over
 * realistic payloads of 1 KiB, 64 KiB and 1 MiB, alone and together with 10 regex rules of
 * the kind admins write. Target (issue 5): ≥ 100 MB/s per core for the pack plus 10 rules.
 *
 *   npx tsx test/bench/pii-scan.ts
 *
 * Payloads are the PII corpus (test/corpus/pii/tuned.jsonl) concatenated and cut to size,
 * so they are denser in PII than most traffic. MB/s = 10^6 UTF-16 code units per second,
 * median of 5 timed runs after warm-up. The 10 rules use JS RegExp as a stand-in for the
 * RE2 engine the rules will use; their cost is reported separately.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createPiiScanner } from '../../schema/rules/pii/index.js';

const corpusFile = fileURLToPath(new URL('../corpus/pii/tuned.jsonl', import.meta.url));
const corpus = readFileSync(corpusFile, 'utf8')
  .split('\n')
  .filter((l) => l !== '')
  .map((l) => (JSON.parse(l) as { text: string }).text)
  .join('\n');

function payload(size: number): string {
  let s = '';
  while (s.length < size) s += corpus;
  return s.slice(0, size);
}

const RULES = [
  /\b(?:confidential|internal only|do not distribute)\b/gi,
  /\bproject[-_ ]?(?:falcon|orion|atlas)\b/gi,
  /\bDROP\s+TABLE\b/gi,
  /\brm\s+-rf\s+\//g,
  /\b(?:password|passwd)\s*[:=]\s*\S{1,64}/gi,
  /\bemployee[-_ ]id\s*[:=]\s*E\d{6}\b/gi,
  /\bacct_[A-Za-z0-9]{16}\b/g,
  /\bBEGIN CERTIFICATE\b/g,
  /\b(?:curl|wget)\s+https?:\/\/\S{1,200}\|\s*sh\b/gi,
  /\bpatient\s+(?:id|number)\b/gi,
];

function runRules(text: string): number {
  let n = 0;
  for (const rule of RULES) {
    rule.lastIndex = 0;
    while (rule.test(text)) n++;
  }
  return n;
}

const scanner = createPiiScanner();

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function measure(text: string, work: (t: string) => number): { mbps: number; findings: number } {
  const iterations = Math.max(1, Math.round((4 * 1024 * 1024) / text.length));
  let findings = 0;
  for (let i = 0; i < Math.min(iterations, 50); i++) findings = work(text);
  const samples: number[] = [];
  for (let run = 0; run < 5; run++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) work(text);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    samples.push((text.length * iterations) / seconds / 1e6);
  }
  return { mbps: median(samples), findings };
}

console.log(`node ${process.version}, one core; median of 5 runs`);
console.log('size      PII pack MB/s  findings  10 rules MB/s  pack + rules MB/s');
for (const [label, size] of [['1 KiB', 1024], ['64 KiB', 64 * 1024], ['1 MiB', 1024 * 1024]] as const) {
  const text = payload(size);
  const pack = measure(text, (t) => scanner.scan(t).length);
  const rules = measure(text, runRules);
  const both = measure(text, (t) => scanner.scan(t).length + runRules(t));
  console.log(`${label.padEnd(10)}${pack.mbps.toFixed(1).padEnd(15)}${String(pack.findings).padEnd(10)}${rules.mbps.toFixed(1).padEnd(15)}${both.mbps.toFixed(1)}`);
}

// Low-PII traffic: the same sizes of prose-like JSON with no entities, for comparison.
const plain = JSON.stringify({ content: [{ type: 'text', text: 'The quarterly report shows steady growth across all regions, with notable gains in the enterprise segment. '.repeat(12000) }] });
const plainResult = measure(plain.slice(0, 1024 * 1024), (t) => scanner.scan(t).length);
console.log(`1 MiB prose (no PII): PII pack ${plainResult.mbps.toFixed(1)} MB/s`);
