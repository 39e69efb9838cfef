import { NO_CODES, unitCodes } from './codes.js';
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
  /**
   * The same findings as `scan`, as spans and entity types only (no confidence, no text):
   * what a rule acts on. Cheaper on dense text: a context word that could only raise an
   * already sufficient confidence is looked up only where findings overlap.
   */
  scanSpans(text: string): PiiSpan[];
}

/** A finding as `scanSpans` reports it. */
export interface PiiSpan {
  readonly start: number;
  readonly end: number;
  readonly type: EntityType;
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

/**
 * A candidate finding. `rank` is the index in RECOGNIZERS of the recognizer that found it,
 * so ties are broken in the recognizers' order; `pending` means its confidence is the base
 * confidence still to be raised if a context word precedes it (it passes `minConfidence`
 * either way, see `emit`).
 */
interface Candidate {
  entityType: EntityType;
  start: number;
  end: number;
  confidence: number;
  rank: number;
  pending: boolean;
}

/**
 * The trigger tables of the single pass: bit r of `TRIGGERS[(codes[i - 1] << 8) | codes[i]]`
 * and of `TRIGGERS_NEXT[(codes[i] << 8) | codes[i + 1]]` say whether recognizer r of
 * RECOGNIZERS wants to look at position i. Built once from the recognizers' predicates
 * (64 KiB each).
 */
const TRIGGERS = new Uint8Array(65536);
const TRIGGERS_NEXT = new Uint8Array(65536);
{
  const probes = RECOGNIZERS.map((r) => r.create());
  for (let a = 0; a < 256; a++) {
    for (let b = 0; b < 256; b++) {
      let bits = 0;
      let nextBits = 0;
      for (let r = 0; r < probes.length; r++) {
        if (probes[r]!.trigger(a, b)) bits |= 1 << r;
        if (probes[r]!.triggerNext(a, b)) nextBits |= 1 << r;
      }
      TRIGGERS[(a << 8) | b] = bits;
      TRIGGERS_NEXT[(a << 8) | b] = nextBits;
    }
  }
}

/** Trigger positions are collected this many units at a time before the recognizers run: bounds the lists' memory. */
const STRETCH = 8192;

/**
 * The trigger pass over `codes[from, to)`: writes each position where some recognizer of
 * `mask` wants to look, and which ones, to `hitAt`/`hitBits`; returns how many. Four units
 * per iteration and no calls: V8 then checks each array once per iteration, not per unit,
 * and the common case (none of the four pairs is a trigger) is one branch.
 */
function collectTriggers(codes: Uint8Array, from: number, to: number, mask: number, hitAt: Int32Array, hitBits: Uint8Array): number {
  const table = TRIGGERS;
  const tableNext = TRIGGERS_NEXT;
  let before = from === 0 ? 32 : codes[from - 1]!; // a space before the text
  let count = 0;
  let i = from;
  for (; i + 4 <= to; i += 4) {
    const c0 = codes[i]!;
    const c1 = codes[i + 1]!;
    const c2 = codes[i + 2]!;
    const c3 = codes[i + 3]!;
    let b0 = table[(before << 8) | c0]! & mask;
    let b1 = table[(c0 << 8) | c1]! & mask;
    let b2 = table[(c1 << 8) | c2]! & mask;
    let b3 = table[(c2 << 8) | c3]! & mask;
    before = c3;
    if ((b0 | b1 | b2 | b3) === 0) continue;
    b0 &= tableNext[(c0 << 8) | c1]!;
    b1 &= tableNext[(c1 << 8) | c2]!;
    b2 &= tableNext[(c2 << 8) | c3]!;
    b3 &= tableNext[(c3 << 8) | codes[i + 4]!]!;
    if (b0 !== 0) { hitAt[count] = i; hitBits[count++] = b0; }
    if (b1 !== 0) { hitAt[count] = i + 1; hitBits[count++] = b1; }
    if (b2 !== 0) { hitAt[count] = i + 2; hitBits[count++] = b2; }
    if (b3 !== 0) { hitAt[count] = i + 3; hitBits[count++] = b3; }
  }
  for (; i < to; i++) {
    const c = codes[i]!;
    const bits = table[(before << 8) | c]! & mask & tableNext[(c << 8) | codes[i + 1]!]!;
    before = c;
    if (bits !== 0) { hitAt[count] = i; hitBits[count++] = bits; }
  }
  return count;
}

/**
 * Copies each hit to the position list of every recognizer whose bit it has. Branch-free
 * (every list is written, only the wanted ones advance): which recognizer a hit is for is
 * data, and branching on it was mispredicted about once per hit.
 */
function splitHits(hitAt: Int32Array, hitBits: Uint8Array, count: number, lists: readonly Int32Array[], counts: Int32Array): void {
  const [l0, l1, l2, l3, l4, l5] = lists as [Int32Array, Int32Array, Int32Array, Int32Array, Int32Array, Int32Array];
  let n0 = 0;
  let n1 = 0;
  let n2 = 0;
  let n3 = 0;
  let n4 = 0;
  let n5 = 0;
  for (let k = 0; k < count; k++) {
    const at = hitAt[k]!;
    const bits = hitBits[k]!;
    l0[n0] = at;
    n0 += bits & 1;
    l1[n1] = at;
    n1 += (bits >> 1) & 1;
    l2[n2] = at;
    n2 += (bits >> 2) & 1;
    l3[n3] = at;
    n3 += (bits >> 3) & 1;
    l4[n4] = at;
    n4 += (bits >> 4) & 1;
    l5[n5] = at;
    n5 += (bits >> 5) & 1;
  }
  counts[0] = n0;
  counts[1] = n1;
  counts[2] = n2;
  counts[3] = n3;
  counts[4] = n4;
  counts[5] = n5;
}

/**
 * Builds a scanner once: recognizers, their triggers and buffers are created here and
 * reused by every `scan`, which compiles nothing. The text is read as code-unit bytes
 * (`codes.ts`) in one pass that looks each adjacent pair of units up in TRIGGERS and hands
 * the positions to the recognizers that asked for them; everything after a trigger is
 * hand-written validation with bounded loops (see README.md).
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
  // One slot per entry of RECOGNIZERS (undefined when none of its types is wanted), so each
  // call site of the pass below always calls the same recognizer.
  const slots = RECOGNIZERS.map((r) => (r.types.some((t) => wanted.has(t)) ? r.create() : undefined));
  const [email, numeric, iban, ipv6, secrets, entropy] = slots;

  let text = '';
  let codes: Uint8Array = NO_CODES;
  let rank = 0;
  // Candidates per recognizer (`found[r][0..foundCount[r])`, each in the order it found
  // them), from a pool of objects reused by every scan: they never leave the scanner.
  const found: Candidate[][] = RECOGNIZERS.map(() => []);
  const foundCount = new Int32Array(RECOGNIZERS.length);
  const pool: Candidate[] = [];
  let pooled = 0;
  const merged: Candidate[] = [];
  const heads = new Int32Array(RECOGNIZERS.length);
  /** Gives a pending candidate its final confidence (while `codes` holds its text). */
  const settle = (c: Candidate): void => {
    if (!c.pending) return;
    c.pending = false;
    if (contextFor.get(c.entityType)!(codes, c.start)) c.confidence = Math.min(1, c.confidence + CONTEXT_BOOST);
    c.confidence = Math.round(c.confidence * 100) / 100;
  };
  const sink: FindingSink = {
    wants: (type) => wanted.has(type),
    emit(type, start, end, baseConfidence) {
      if (!wanted.has(type)) return false;
      let confidence = baseConfidence;
      let pending = false;
      if (confidence + CONTEXT_BOOST >= minConfidence && confidence < 1) {
        const nearContext = contextFor.get(type);
        if (nearContext !== undefined) {
          // Below the minimum, a context word decides whether there is a finding at all;
          // above it, only how confident it is: that is looked up when needed (`settle`).
          if (confidence >= minConfidence) pending = true;
          else if (nearContext(codes, start)) confidence = Math.min(1, confidence + CONTEXT_BOOST);
        }
      }
      if (confidence < minConfidence) return false;
      if (allowed.size > 0 && allowed.has(text.slice(start, end).toLowerCase())) return false;
      let c = pool[pooled];
      if (c === undefined) {
        c = { entityType: type, start, end, confidence: 0, rank, pending };
        pool.push(c);
      } else {
        c.entityType = type;
        c.start = start;
        c.end = end;
        c.rank = rank;
        c.pending = pending;
      }
      pooled++;
      c.confidence = pending ? confidence : Math.round(confidence * 100) / 100;
      found[rank]![foundCount[rank]!++] = c;
      return true;
    },
  };

  // Trigger positions of one stretch of text and which recognizers want each; then the
  // positions of each recognizer.
  const hitAt = new Int32Array(STRETCH);
  const hitBits = new Uint8Array(STRETCH);
  const lists = RECOGNIZERS.map(() => new Int32Array(STRETCH));
  const counts = new Int32Array(RECOGNIZERS.length);

  function pass(): void {
    let mask = 0;
    for (let r = 0; r < slots.length; r++) if (slots[r]?.begin(text, codes, sink) === true) mask |= 1 << r;
    if (mask === 0) return;
    const n = text.length;
    const [toEmail, toNumeric, toIban, toIpv6, toSecrets, toEntropy] = lists as [Int32Array, Int32Array, Int32Array, Int32Array, Int32Array, Int32Array];
    for (let from = 0; from < n; from += STRETCH) {
      const count = collectTriggers(codes, from, Math.min(n, from + STRETCH), mask, hitAt, hitBits);
      if (count === 0) continue;
      splitHits(hitAt, hitBits, count, lists, counts);
      // Recognizers are independent: each sees its own positions in order; `rank` keeps
      // ties between their findings in the order of RECOGNIZERS.
      if (counts[0]! > 0) { rank = 0; email!.run(toEmail, counts[0]!); }
      if (counts[1]! > 0) { rank = 1; numeric!.run(toNumeric, counts[1]!); }
      if (counts[2]! > 0) { rank = 2; iban!.run(toIban, counts[2]!); }
      if (counts[3]! > 0) { rank = 3; ipv6!.run(toIpv6, counts[3]!); }
      if (counts[4]! > 0) { rank = 4; secrets!.run(toSecrets, counts[4]!); }
      if (counts[5]! > 0) { rank = 5; entropy!.run(toEntropy, counts[5]!); }
    }
  }

  /** Runs the recognizers over `input`: the kept candidates, still pending where no overlap needed their confidence. */
  function run(input: string): Candidate[] {
    text = input;
    codes = unitCodes(input);
    pass();
    mergeInOrder(found, foundCount, merged, heads);
    return keepBest(merged, settle);
  }

  function release(): void {
    // Recognizers drop their references to the text and its codes (a large text's buffer is its own).
    if (text.length > RELEASE_AFTER) for (const r of slots) r?.begin('', NO_CODES, sink);
    text = '';
    codes = NO_CODES;
    foundCount.fill(0);
    merged.length = 0;
    pooled = 0;
    if (pool.length > MAX_POOLED) {
      pool.length = MAX_POOLED;
      for (const list of found) if (list.length > MAX_POOLED) list.length = MAX_POOLED;
    }
  }

  return Object.freeze({
    scan(input: string): Finding[] {
      try {
        const kept = run(input);
        const out: Finding[] = new Array(kept.length);
        for (let k = 0; k < kept.length; k++) {
          const c = kept[k]!;
          settle(c);
          out[k] = includeText
            ? { entityType: c.entityType, start: c.start, end: c.end, confidence: c.confidence, text: input.slice(c.start, c.end) }
            : { entityType: c.entityType, start: c.start, end: c.end, confidence: c.confidence };
        }
        return out;
      } finally {
        release();
      }
    },
    scanSpans(input: string): PiiSpan[] {
      try {
        const kept = run(input);
        const out: PiiSpan[] = new Array(kept.length);
        for (let k = 0; k < kept.length; k++) {
          const c = kept[k]!;
          out[k] = { start: c.start, end: c.end, type: c.entityType };
        }
        return out;
      } finally {
        release();
      }
    },
  });
}

/** After a scan of a text longer than this, recognizers drop their references to it and its codes (which may be a buffer of their own). */
const RELEASE_AFTER = 1024 * 1024;

/** Candidate objects kept for reuse between scans, at most. */
const MAX_POOLED = 16384;

const byStart = <T extends { start: number; end: number }>(x: T, y: T): number => x.start - y.start || y.end - x.end;

/** Which of two overlapping candidates to keep first: higher confidence, then longer, then earlier. */
const byPreference = <T extends { start: number; end: number; confidence: number }>(x: T, y: T): number =>
  y.confidence - x.confidence || y.end - y.start - (x.end - x.start) || x.start - y.start;

/**
 * Merges the recognizers' candidate lists (`lists[r][0..counts[r])`) into `out`, by start,
 * longer first, then in the recognizers' order: the order one stable sort of all of them
 * would give. Each list is in text order already but for rare exceptions (an address that
 * grew left past an earlier one), which a stable sort of that list settles first.
 */
function mergeInOrder(lists: Candidate[][], counts: Int32Array, out: Candidate[], heads: Int32Array): void {
  heads.fill(0);
  let remaining = 0;
  for (let r = 0; r < lists.length; r++) {
    const list = lists[r]!;
    const n = counts[r]!;
    for (let k = 1; k < n; k++) {
      if (byStart(list[k - 1]!, list[k]!) > 0) {
        const sorted = list.slice(0, n).sort(byStart);
        for (let j = 0; j < n; j++) list[j] = sorted[j]!;
        break;
      }
    }
    remaining += n;
  }
  for (; remaining > 0; remaining--) {
    let best = -1;
    let bestStart = 0;
    let bestEnd = 0;
    for (let r = 0; r < lists.length; r++) {
      if (heads[r]! === counts[r]!) continue;
      const c = lists[r]![heads[r]!]!;
      if (best < 0 || c.start < bestStart || (c.start === bestStart && c.end > bestEnd)) {
        best = r;
        bestStart = c.start;
        bestEnd = c.end;
      }
    }
    out.push(lists[best]![heads[best]!++]!);
  }
}

/**
 * Keeps, among overlapping candidates, the higher confidence, then the longer span, then
 * the earlier one. Candidates are sorted by start (longer first, then by `order` when
 * given, else as given) and cut into clusters of overlapping spans first, so the quadratic
 * choice only runs inside a cluster (usually one or two findings).
 */
export function resolveOverlaps<T extends { start: number; end: number; confidence: number }>(candidates: T[], order: (x: T, y: T) => number = byStart): T[] {
  if (candidates.length <= 1) return candidates;
  candidates.sort(order);
  return keepBest(candidates);
}

/** {@link resolveOverlaps} of candidates already in order; `settle` is called on the members of a cluster before their confidences are compared. */
function keepBest<T extends { start: number; end: number; confidence: number }>(candidates: T[], settle?: (candidate: T) => void): T[] {
  if (candidates.length <= 1) return candidates.slice();
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
    } else if (i - clusterStart === 2) {
      // The common cluster: two readings of one span (a token and a high-entropy string),
      // which overlap, so one is kept: the first of the two in `byPreference` order.
      const x = candidates[clusterStart]!;
      const y = candidates[clusterStart + 1]!;
      if (settle !== undefined) {
        settle(x);
        settle(y);
      }
      kept.push(byPreference(x, y) > 0 ? y : x);
    } else {
      const cluster = candidates.slice(clusterStart, i);
      if (settle !== undefined) for (const member of cluster) settle(member);
      cluster.sort(byPreference);
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
