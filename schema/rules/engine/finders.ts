import type { RuleDetection } from '../../snapshot/index.js';
import { createInjectionDetector } from '../detectors/index.js';
import { createPiiScanner, isEntityType, type EntityType } from '../pii/index.js';
import { compilePattern } from '../regex.js';
import type { Match } from './actions.js';
import type { Slot } from './parts.js';

/**
 * The text detections of a rule, compiled once per snapshot. `find` takes every string
 * slot of a part at once and answers the matches per slot (in slot coordinates, sorted,
 * non-overlapping), so a part with many small strings costs one pass, not one per string.
 */
export interface TextFinder {
  /**
   * `matches[i]` belongs to `slots[i]`; undefined or empty when nothing matched there.
   * `texts`, when given, holds the joined forms of these very slots (built at most once
   * per evaluation and shared by the finders and the regex set).
   */
  find(slots: readonly Slot[], texts?: SlotTexts): FinderResult;
  /** Detectors act on the whole string value a signal was found in, not on the signal's span. */
  readonly wholeValue: boolean;
  /**
   * Regex finders: an RE2 source (flags inline, multiline) that matches somewhere in the
   * slots' values joined with `\n` whenever `find` would find anything. The rule set puts
   * the sources of a leg's regex rules in one `RE2.Set`, so one pass tells which rules
   * can match at all. Undefined when the pattern's meaning depends on where text ends.
   */
  readonly prefilterSource?: string;
}

export interface FinderResult {
  readonly matches: ReadonlyArray<readonly Match[] | undefined>;
  /** Extra audit detail (a detector's score and signal ids), never matched text. */
  readonly detail?: string;
}

const NO_MATCHES: FinderResult = Object.freeze({ matches: [] });

/** Thrown at compile time for a detection that cannot run; the rule then applies its failure mode at run time. */
export class RuleCompileError extends Error {
  override readonly name = 'RuleCompileError';
}

export function compileFinder(detection: Exclude<RuleDetection, { kind: 'engine' }>): TextFinder {
  switch (detection.kind) {
    case 'regex':
      return regexFinder(detection.patterns, detection.caseInsensitive);
    case 'pii':
      return piiFinder(detection.entityTypes, detection.minConfidence, detection.allowList);
    case 'detector':
      return injectionFinder(detection.threshold);
  }
}

// ---------------------------------------------------------------- joined text

/**
 * Several slots as one text: each value (optionally preceded by `key: `) then `\n`.
 * `starts[i]`/`ends[i]` delimit value i in the joined text.
 */
export interface Joined {
  readonly text: string;
  readonly starts: Int32Array;
  readonly ends: Int32Array;
}

/**
 * The joined forms of one list of slots, each built on first use: one evaluation shares
 * them between its rules (the PII finder, the regex set, regex and detector finders) for
 * as long as no rule has rewritten a value. Joining thousands of values costs about as
 * much as scanning them with the regex set (≈ 0.8 ms per MiB), so it is done once.
 */
export class SlotTexts {
  private keyedJoin: Joined | undefined;
  private bareJoin: Joined | undefined;
  constructor(readonly slots: readonly Slot[]) {}

  /** Each value preceded by `key: ` when it has a key (the PII finder's text). */
  get keyed(): Joined {
    return (this.keyedJoin ??= join(this.slots, true));
  }

  /** Whether `keyed` was built already. */
  get hasKeyed(): boolean {
    return this.keyedJoin !== undefined;
  }

  /** The values alone, each followed by `\n`. */
  get bare(): Joined {
    return (this.bareJoin ??= join(this.slots, false));
  }
}

function join(slots: readonly Slot[], withKeys: boolean): Joined {
  const starts = new Int32Array(slots.length);
  const ends = new Int32Array(slots.length);
  // Concatenated rather than collected and joined: V8 builds a rope and flattens it once,
  // which costs less than `Array#join` over thousands of pieces.
  let text = '';
  for (let i = 0; i < slots.length; i++) {
    const slot = slots[i]!;
    if (withKeys && slot.key !== '') {
      text += slot.key;
      text += ': ';
    }
    starts[i] = text.length;
    text += slot.value;
    ends[i] = text.length;
    text += '\n';
  }
  return { text, starts, ends };
}

/** The last slot whose value starts at or before `offset` (0 when none does). */
function slotAt(joined: Joined, offset: number): number {
  let lo = 0;
  let hi = joined.starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (joined.starts[mid]! <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * Distributes matches of the joined text to the slots they cover, clipped to the value
 * parts: what fell on a key or a separator is dropped, a match spanning values is cut.
 */
function distribute(joined: Joined, found: Iterable<Match>, count: number): Array<Match[] | undefined> {
  const out: Array<Match[] | undefined> = new Array(count);
  // Matches come in text order: the slot of the next one is found by walking on from the
  // last one's (a binary search only when one starts earlier).
  let at = 0;
  for (const m of found) {
    if (m.start < joined.starts[at]!) at = slotAt(joined, m.start);
    else while (at + 1 < count && joined.starts[at + 1]! <= m.start) at++;
    for (let i = at; i < count && joined.starts[i]! < m.end; i++) {
      const start = Math.max(m.start, joined.starts[i]!);
      const end = Math.min(m.end, joined.ends[i]!);
      if (end <= start) continue;
      (out[i] ??= []).push({ start: start - joined.starts[i]!, end: end - joined.starts[i]!, type: m.type });
    }
  }
  return out;
}

// ---------------------------------------------------------------- regex

interface GlobalRegex {
  lastIndex: number;
  exec(text: string): RegExpExecArray | null;
}

/** Inline flags or text anchors that make a match depend on where the text ends: the joined pre-pass would not be sound. */
const CONTEXT_SENSITIVE = /\\[Az]|\(\?[a-zA-Z]*-[a-zA-Z]*m/;

/**
 * Patterns OR'd into one RE2 expression (linear time), matched globally. Over several
 * slots, one pass over the joined values (multiline, so `^`/`$` still hold at each
 * value's edges) finds the slots that can match at all; only those are scanned alone,
 * which keeps the per-value semantics exact while paying one pass for the rest.
 */
function regexFinder(patterns: readonly string[], caseInsensitive: boolean): TextFinder {
  if (patterns.length === 0) throw new RuleCompileError('a regex rule needs at least one pattern');
  const source = patterns.length === 1 ? patterns[0]! : patterns.map((p) => `(?:${p})`).join('|');
  const exact = toGlobal(compilePattern(source, caseInsensitive));
  const looseSource = CONTEXT_SENSITIVE.test(source) ? undefined : `(?m)(?:${source})`;
  const loose = looseSource === undefined ? undefined : toGlobal(compilePattern(looseSource, caseInsensitive));

  function scan(re: GlobalRegex, text: string, out: Match[]): void {
    re.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(text)) !== null) {
      const start = m.index;
      const end = start + m[0]!.length;
      if (end === start) {
        // An empty match acts on nothing; step over it (and over a whole surrogate pair).
        const c = text.charCodeAt(start);
        re.lastIndex = start + (c >= 0xd800 && c <= 0xdbff ? 2 : 1);
        if (re.lastIndex > text.length) break;
        continue;
      }
      out.push({ start, end, type: 'REGEX' });
    }
  }

  return Object.freeze({
    wholeValue: false,
    ...(looseSource === undefined ? {} : { prefilterSource: `(?${caseInsensitive ? 'i' : ''}m:${source})` }),
    find(slots: readonly Slot[], texts?: SlotTexts): FinderResult {
      if (slots.length === 0) return NO_MATCHES;
      const matches: Array<Match[] | undefined> = new Array(slots.length);
      if (slots.length === 1 || loose === undefined) {
        for (let i = 0; i < slots.length; i++) {
          const out: Match[] = [];
          scan(exact, slots[i]!.value, out);
          if (out.length > 0) matches[i] = out;
        }
        return { matches };
      }
      const joined = texts !== undefined ? texts.bare : join(slots, false);
      const candidates = new Uint8Array(slots.length);
      const coarse: Match[] = [];
      scan(loose, joined.text, coarse);
      for (const m of coarse) {
        for (let i = slotAt(joined, m.start); i < slots.length && joined.starts[i]! < m.end; i++) {
          if (joined.ends[i]! > m.start) candidates[i] = 1;
        }
      }
      for (let i = 0; i < slots.length; i++) {
        if (candidates[i] === 0) continue;
        const out: Match[] = [];
        scan(exact, slots[i]!.value, out);
        if (out.length > 0) matches[i] = out;
      }
      return { matches };
    },
  });
}

/** The compiled pattern as a global matcher (`lastIndex` honoured by `exec`). */
function toGlobal(compiled: unknown): GlobalRegex {
  const re = compiled as GlobalRegex & { global?: boolean };
  if (re.global !== true) throw new RuleCompileError('the regex engine returned a non-global pattern');
  return re;
}

// ---------------------------------------------------------------- PII

/**
 * The built-in recognizers restricted to the rule's entity types. Scanned over the
 * joined slots *with their keys* (`phone: 555…`), so a property name counts as a context
 * word the way a label does in prose; findings on a key are dropped.
 */
function piiFinder(entityTypes: readonly string[], minConfidence: number, allowList: readonly string[]): TextFinder {
  const unknown = entityTypes.filter((t) => !isEntityType(t));
  if (unknown.length > 0) throw new RuleCompileError(`unknown PII entity type ${unknown.map((t) => `"${t}"`).join(', ')}`);
  const scanner = createPiiScanner({
    entities: entityTypes.length === 0 ? undefined : (entityTypes as readonly EntityType[]),
    minConfidence,
    allowList,
    includeText: false,
  });
  return Object.freeze({
    wholeValue: false,
    find(slots: readonly Slot[], texts?: SlotTexts): FinderResult {
      if (slots.length === 0) return NO_MATCHES;
      // Spans only: a rule acts on where entities are, not on how confident each one is.
      if (slots.length === 1 && slots[0]!.key === '') {
        const found = scanner.scanSpans(slots[0]!.value);
        return found.length === 0 ? NO_MATCHES : { matches: [found] };
      }
      const joined = texts !== undefined ? texts.keyed : join(slots, true);
      const found = scanner.scanSpans(joined.text);
      if (found.length === 0) return NO_MATCHES;
      return { matches: distribute(joined, found, slots.length) };
    },
  });
}

// ---------------------------------------------------------------- detectors

export const PROMPT_INJECTION = 'PROMPT_INJECTION';

/**
 * The prompt-injection detector over all string values of the part at once (an
 * instruction split over two fields still scores), threshold from the rule. When the
 * score reaches it, every value holding a signal is a match as a whole.
 */
function injectionFinder(threshold: number): TextFinder {
  const detector = createInjectionDetector({ threshold });
  return Object.freeze({
    wholeValue: true,
    find(slots: readonly Slot[], texts?: SlotTexts): FinderResult {
      if (slots.length === 0) return NO_MATCHES;
      const joined = texts !== undefined ? texts.bare : join(slots, false);
      const verdict = detector.score(joined.text);
      if (verdict.score < threshold || verdict.signals.length === 0) return NO_MATCHES;
      const spans = verdict.signals.map((s) => ({ start: s.start, end: Math.max(s.end, s.start + 1), type: PROMPT_INJECTION }));
      spans.sort((a, b) => a.start - b.start);
      const ids = [...new Set(verdict.signals.map((s) => s.id))].join(', ');
      return { matches: distribute(joined, spans, slots.length), detail: `prompt-injection score ${verdict.score} ≥ ${threshold} (${ids})` };
    },
  });
}
