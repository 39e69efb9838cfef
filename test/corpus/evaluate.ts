/**
 * Precision and recall of the PII recognizers (per entity type, matching entity type and
 * exact text) and of the prompt-injection detector (at its default threshold), on the
 * tuned and the held-out corpora:
 *
 *   npx tsx test/corpus/evaluate.ts [--verbose]
 *
 * With --verbose, every false positive and false negative is listed.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createInjectionDetector } from '../../schema/rules/detectors/index.js';
import { createPiiScanner, ENTITY_TYPES, type EntityType } from '../../schema/rules/pii/index.js';
import type { InjectionSample } from './injection/templates.js';
import type { PiiSample } from './pii/templates.js';

const ROOT = fileURLToPath(new URL('./', import.meta.url));

export function loadJsonl<T>(relativePath: string): T[] {
  return readFileSync(`${ROOT}${relativePath}`, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as T);
}

export interface Score {
  tp: number;
  fp: number;
  fn: number;
  precision: number;
  recall: number;
}

export interface Miss {
  readonly id: string;
  readonly kind: 'false-positive' | 'false-negative';
  readonly entityType: string;
  readonly text: string;
}

function score(tp: number, fp: number, fn: number): Score {
  return { tp, fp, fn, precision: tp + fp === 0 ? 1 : tp / (tp + fp), recall: tp + fn === 0 ? 1 : tp / (tp + fn) };
}

/** Multiset matching of `entityType + text` per sample. */
export function evaluatePii(samples: readonly PiiSample[]): { perEntity: Map<EntityType | 'ALL', Score>; misses: Miss[] } {
  const scanner = createPiiScanner();
  const counts = new Map<EntityType, { tp: number; fp: number; fn: number }>(ENTITY_TYPES.map((t) => [t, { tp: 0, fp: 0, fn: 0 }]));
  const misses: Miss[] = [];
  for (const sample of samples) {
    const expected = sample.expected.map((e) => `${e.entityType}\u0000${e.text}`);
    for (const finding of scanner.scan(sample.text)) {
      const key = `${finding.entityType}\u0000${finding.text}`;
      const at = expected.indexOf(key);
      const c = counts.get(finding.entityType)!;
      if (at >= 0) {
        expected.splice(at, 1);
        c.tp++;
      } else {
        c.fp++;
        misses.push({ id: sample.id, kind: 'false-positive', entityType: finding.entityType, text: finding.text ?? '' });
      }
    }
    for (const key of expected) {
      const [entityType, text] = key.split('\u0000') as [EntityType, string];
      counts.get(entityType)!.fn++;
      misses.push({ id: sample.id, kind: 'false-negative', entityType, text });
    }
  }
  const perEntity = new Map<EntityType | 'ALL', Score>();
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (const [type, c] of counts) {
    if (c.tp + c.fp + c.fn === 0) continue;
    perEntity.set(type, score(c.tp, c.fp, c.fn));
    tp += c.tp;
    fp += c.fp;
    fn += c.fn;
  }
  perEntity.set('ALL', score(tp, fp, fn));
  return { perEntity, misses };
}

export function evaluateInjection(samples: readonly InjectionSample[]): { score: Score; misses: Miss[] } {
  const detector = createInjectionDetector();
  let tp = 0;
  let fp = 0;
  let fn = 0;
  const misses: Miss[] = [];
  for (const sample of samples) {
    const verdict = detector.score(sample.text);
    const flagged = verdict.score >= 0.5;
    const detail = `${verdict.score} [${verdict.signals.map((s) => s.id).join(', ')}] ${sample.text.slice(0, 100)}`;
    if (flagged && sample.label === 'injection') tp++;
    else if (flagged) {
      fp++;
      misses.push({ id: sample.id, kind: 'false-positive', entityType: 'INJECTION', text: detail });
    } else if (sample.label === 'injection') {
      fn++;
      misses.push({ id: sample.id, kind: 'false-negative', entityType: 'INJECTION', text: detail });
    }
  }
  return { score: score(tp, fp, fn), misses };
}

function pad(s: string | number, n: number): string {
  return String(s).padEnd(n);
}

function printTable(title: string, rows: ReadonlyArray<[string, Score]>): void {
  console.log(`\n${title}`);
  console.log(`${pad('entity', 22)}${pad('tp', 6)}${pad('fp', 6)}${pad('fn', 6)}${pad('precision', 11)}recall`);
  for (const [name, s] of rows) {
    console.log(`${pad(name, 22)}${pad(s.tp, 6)}${pad(s.fp, 6)}${pad(s.fn, 6)}${pad(s.precision.toFixed(3), 11)}${s.recall.toFixed(3)}`);
  }
}

function main(): void {
  const verbose = process.argv.includes('--verbose');
  for (const [label, file] of [['tuned', 'pii/tuned.jsonl'], ['held-out', 'pii/held-out.jsonl']] as const) {
    const samples = loadJsonl<PiiSample>(file);
    const { perEntity, misses } = evaluatePii(samples);
    printTable(`PII recognizers — ${label} (${samples.length} payloads, ${file})`, [...perEntity]);
    if (verbose) for (const m of misses) console.log(`  ${m.kind} ${m.entityType} ${JSON.stringify(m.text)} in ${m.id}`);
  }
  for (const [label, file] of [['tuned', 'injection/tuned.jsonl'], ['held-out', 'injection/held-out.jsonl']] as const) {
    const samples = loadJsonl<InjectionSample>(file);
    const { score: s, misses } = evaluateInjection(samples);
    printTable(`Prompt-injection detector at threshold 0.5 — ${label} (${samples.length} texts, ${file})`, [['INJECTION', s]]);
    if (verbose) for (const m of misses) console.log(`  ${m.kind} ${m.id}: ${JSON.stringify(m.text)}`);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
