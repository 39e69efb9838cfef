import { compileContextWords, CONTEXT_BOOST, CONTEXT_WORDS, type ContextMatcher } from './context.js';
import { ENTITY_TYPES, isEntityType, type EntityType, type Finding } from './finding.js';
import { createEmailRecognizer } from './recognizers/email.js';
import { createEntropyRecognizer } from './recognizers/entropy.js';
import { createIbanRecognizer } from './recognizers/iban.js';
import { createIpv6Recognizer } from './recognizers/ipv6.js';
import { createNumericRecognizer } from './recognizers/numeric.js';
import { createSecretRecognizer } from './recognizers/secrets.js';
import type { FindingSink, Recognizer } from './recognizers/sink.js';

export interface PiiScannerOptions {
  /** Entity types to report. Default: all of `ENTITY_TYPES`. */
  readonly entities?: readonly EntityType[];
  /** Findings below this confidence (after context boosting) are dropped. Default 0.5. */
  readonly minConfidence?: number;
  /** Known-safe values never reported, compared with the finding's text case-insensitively. Default none. */
  readonly allowList?: readonly string[];
  /** Whether findings carry `text`. Default true; false saves a string per finding. */
  readonly includeText?: boolean;
}

export interface PiiScanner {
  /** Non-overlapping findings in text order. Pure: the same text always gives the same findings. */
  scan(text: string): Finding[];
}

export const DEFAULT_MIN_CONFIDENCE = 0.5;

/** Which recognizer serves which entity types; a recognizer runs when any of its types is wanted. */
const RECOGNIZERS: ReadonlyArray<{ readonly create: () => Recognizer; readonly types: readonly EntityType[] }> = [
  { create: createEmailRecognizer, types: ['EMAIL_ADDRESS'] },
  { create: createNumericRecognizer, types: ['PHONE_NUMBER', 'US_SSN', 'CREDIT_CARD', 'IP_ADDRESS'] },
  { create: createIbanRecognizer, types: ['IBAN_CODE'] },
  { create: createIpv6Recognizer, types: ['IP_ADDRESS'] },
  {
    create: createSecretRecognizer,
    types: ['AWS_ACCESS_KEY', 'GITHUB_TOKEN', 'SLACK_TOKEN', 'STRIPE_KEY', 'JWT', 'PRIVATE_KEY'],
  },
  { create: createEntropyRecognizer, types: ['AWS_SECRET_KEY', 'HIGH_ENTROPY_SECRET'] },
];

interface Candidate {
  entityType: EntityType;
  start: number;
  end: number;
  confidence: number;
}

/**
 * Builds a scanner once: recognizers, their triggers and buffers are created here and
 * reused by every `scan`, which compiles nothing. Every RegExp in the recognizers is written
 * to run in linear time (see README.md); the rest is hand-written validation.
 *
 * A scanner is not re-entrant (its recognizers share scratch buffers), which is safe in
 * Node's single thread because `scan` is synchronous.
 */
export function createPiiScanner(options: PiiScannerOptions = {}): PiiScanner {
  const entities = options.entities ?? ENTITY_TYPES;
  for (const entity of entities) {
    if (!isEntityType(entity)) throw new TypeError(`createPiiScanner: option "entities" names an unknown entity type "${String(entity)}"`);
  }
  const minConfidence = options.minConfidence ?? DEFAULT_MIN_CONFIDENCE;
  if (!(minConfidence >= 0 && minConfidence <= 1)) {
    throw new RangeError(`createPiiScanner: option "minConfidence" must be between 0 and 1, got ${minConfidence}`);
  }
  const allowed = new Set((options.allowList ?? []).map((value) => value.toLowerCase()));
  const includeText = options.includeText ?? true;
  const wanted = new Set<EntityType>(entities);
  const contextFor = new Map<EntityType, ContextMatcher>();
  for (const [type, words] of Object.entries(CONTEXT_WORDS) as Array<[EntityType, readonly string[]]>) {
    contextFor.set(type, compileContextWords(words));
  }
  const recognizers = RECOGNIZERS.filter((r) => r.types.some((t) => wanted.has(t))).map((r) => r.create());

  let text = '';
  let candidates: Candidate[] = [];
  const sink: FindingSink = {
    wants: (type) => wanted.has(type),
    emit(type, start, end, baseConfidence) {
      if (!wanted.has(type)) return false;
      let confidence = baseConfidence;
      if (confidence + CONTEXT_BOOST >= minConfidence && confidence < 1) {
        const nearContext = contextFor.get(type);
        if (nearContext !== undefined && nearContext(text, start)) confidence = Math.min(1, confidence + CONTEXT_BOOST);
      }
      if (confidence < minConfidence) return false;
      if (allowed.size > 0 && allowed.has(text.slice(start, end).toLowerCase())) return false;
      candidates.push({ entityType: type, start, end, confidence: Math.round(confidence * 100) / 100 });
      return true;
    },
  };

  return Object.freeze({
    scan(input: string): Finding[] {
      text = input;
      candidates = [];
      try {
        for (const recognize of recognizers) recognize(input, sink);
        const kept = resolveOverlaps(candidates);
        // Candidates are fresh objects of this scan: handed out as they are unless text is wanted.
        return includeText ? kept.map((c) => ({ ...c, text: input.slice(c.start, c.end) })) : kept;
      } finally {
        text = '';
        candidates = [];
      }
    },
  });
}

/**
 * Keeps, among overlapping candidates, the higher confidence, then the longer span, then
 * the earlier one. Candidates are sorted by start and cut into clusters of overlapping spans
 * first, so the quadratic choice only runs inside a cluster (usually one or two findings).
 */
export function resolveOverlaps<T extends { start: number; end: number; confidence: number }>(candidates: T[]): T[] {
  if (candidates.length <= 1) return candidates;
  candidates.sort((x, y) => x.start - y.start || y.end - x.end);
  const kept: T[] = [];
  let clusterStart = 0;
  let clusterEnd = candidates[0]!.end;
  for (let i = 1; i <= candidates.length; i++) {
    const c = candidates[i];
    if (c !== undefined && c.start < clusterEnd) {
      clusterEnd = Math.max(clusterEnd, c.end);
      continue;
    }
    if (i - clusterStart === 1) {
      kept.push(candidates[clusterStart]!);
    } else {
      const cluster = candidates.slice(clusterStart, i);
      cluster.sort((x, y) => y.confidence - x.confidence || y.end - y.start - (x.end - x.start) || x.start - y.start);
      const chosen: T[] = [];
      for (const candidate of cluster) {
        if (chosen.every((k) => candidate.end <= k.start || candidate.start >= k.end)) chosen.push(candidate);
      }
      chosen.sort((x, y) => x.start - y.start);
      kept.push(...chosen);
    }
    if (c !== undefined) {
      clusterStart = i;
      clusterEnd = c.end;
    }
  }
  return kept;
}
