import { compileContextWords } from '../context.js';
import { ipv4ValidAt, isDigitCode, isWordCode, knownIin, luhnValid, ssnValid } from '../validators.js';
import type { FindingSink, Recognizer } from './sink.js';
import { triggeredRecognizer } from './triggered.js';

/**
 * Phone numbers, US SSNs, credit cards and IPv4 addresses share one pass: every run of digit
 * groups (digits joined by at most three of ` -./()`) is cut into groups once, then spans
 * of up to MAX_SPAN consecutive groups are classified by hand-written validators. Each
 * character is visited a constant number of times.
 */
const MAX_GROUPS = 16;
const MAX_SPAN = 8;

const SEP_NONE = 0;
const SEP_SPACE = 1;
const SEP_DASH = 2;
const SEP_DOT = 3;
const SEP_SLASH = 4;
/** `)` or `) ` after an area code in parentheses. */
const SEP_PAREN = 5;
const SEP_OTHER = 6;

const nearVersionWord = compileContextWords(['version', 'release', 'build', 'ver', 'firmware'], 16);

function isSepCode(c: number): boolean {
  return c === 32 || c === 45 || c === 46 || c === 47 || c === 40 || c === 41;
}

export function createNumericRecognizer(): Recognizer {
  // The trigger: a digit that starts a word and can begin something of ours: eight digits
  // in a row, or fewer followed by up to three separators and another digit (checked once
  // the run is cut into groups). A lone short number (`42`, `2024,`) or one glued to
  // letters (`50b3…`, `v2x`) could only end in the "fewer than 8 digits in fewer than 4
  // groups" exit below, so it is not a trigger.
  const groupStart = new Int32Array(MAX_GROUPS);
  const groupEnd = new Int32Array(MAX_GROUPS);
  const sepKind = new Uint8Array(MAX_GROUPS);
  /** `digitsBefore[g]`: digits in groups 0..g-1 of the current run. */
  const digitsBefore = new Int32Array(MAX_GROUPS + 1);
  const digits = new Uint8Array(32);

  let codes: Uint8Array = new Uint8Array(0);
  let length = 0;
  let sink: FindingSink;
  let wantPhone = false;
  let wantSsn = false;
  let wantCard = false;
  let wantIp = false;
  /** Where the next run may start: runs are read whole. */
  let next = 0;
  const len = (g: number): number => groupEnd[g]! - groupStart[g]!;
  const nanp = (o: number): boolean => digits[o]! >= 2 && digits[o + 3]! >= 2;

  function at(first: number): void {
    if (first < next) return;
    // Cut the run into groups (closure state read once into locals: this loop is hot).
    const units = codes;
    const n = length;
    let groups = 0;
    let i = first;
    for (;;) {
      const gs = i;
      while (i < n && isDigitCode(units[i]!)) i++;
      groupStart[groups] = gs;
      groupEnd[groups] = i;
      groups++;
      if (groups === MAX_GROUPS) break;
      let j = i;
      while (j < n && j - i < 3 && isSepCode(units[j]!)) j++;
      if (j === i || j >= n || !isDigitCode(units[j]!)) break;
      sepKind[groups - 1] = classifySeparator(units, i, j);
      i = j;
    }
    sepKind[groups - 1] = SEP_NONE;
    // The trigger's shape: eight digits in a row, or a second group (one to three
    // separators, then a digit). Without it there is no trigger here: `next` stays.
    if (groups < 2 && groupEnd[0]! - first < 8) return;
    next = groupEnd[groups - 1]!;

    const before = first > 0 ? codes[first - 1]! : 32;
    const plus = before === 43;
    const paren = before === 40;
    const lead = plus || paren ? first - 1 : first;
    const beforeLead = lead > 0 ? codes[lead - 1]! : 32;
    // `ORD-5551234567`, `v1.2.3.4`, `x1234` and `/2024/` are parts of something else.
    // A colon glues only digits (`10:30`), so `tel:555-…` still counts.
    const beforeThat = lead > 1 ? codes[lead - 2]! : 32;
    const glued =
      isWordCode(beforeLead) ||
      ((beforeLead === 45 || beforeLead === 46 || beforeLead === 47) && isWordCode(beforeThat)) ||
      (beforeLead === 58 && isDigitCode(beforeThat));
    // Groups printed after `DE89` or `X12` continue that code (a printed IBAN, a part number).
    if (glued || (beforeLead === 32 && isDigitCode(beforeThat) && codeWordBefore(codes, lead - 1))) return;

    for (let g = 0; g < groups; g++) digitsBefore[g + 1] = digitsBefore[g]! + groupEnd[g]! - groupStart[g]!;
    if (digitsBefore[groups]! < 8 && groups < 4) return;
    let a = 0;
    while (a < groups) {
      let matched = -1;
      const top = Math.min(groups - 1, a + MAX_SPAN - 1);
      for (let b = top; b >= a; b--) {
        // Fewer than 8 digits can only be an IPv4 address (exactly four groups).
        const count = digitsBefore[b + 1]! - digitsBefore[a]!;
        if (count < 8 && b - a !== 3) {
          if (b - a < 3) break;
          b = a + 4;
          continue;
        }
        if (b === groups - 1 && groupEnd[b]! < length && isWordCode(codes[groupEnd[b]!]!)) continue;
        if (classify(a, b, a === 0 && plus, a === 0 && paren)) {
          matched = b;
          break;
        }
      }
      a = matched >= 0 ? nextSpaceStart(matched + 1, groups) : nextSpaceStart(a + 1, groups);
    }
  }

  return triggeredRecognizer({
    types: ['PHONE_NUMBER', 'US_SSN', 'CREDIT_CARD', 'IP_ADDRESS'],
    trigger: (before, c) => isDigitCode(c) && !isWordCode(before),
    // The shape's first unit after the digit is a digit or a separator.
    triggerNext: (_c, next) => isDigitCode(next) || isSepCode(next),
    begin(scanned, n, findings, wants) {
      codes = scanned;
      length = n;
      sink = findings;
      next = 0;
      [wantPhone, wantSsn, wantCard, wantIp] = wants as [boolean, boolean, boolean, boolean];
    },
    at,
  });

  function nextSpaceStart(from: number, groups: number): number {
    // Spans may begin inside a run only after a plain space: "ref 12 555-123-4567".
    let k = from;
    while (k < groups && sepKind[k - 1] !== SEP_SPACE) k++;
    return k;
  }

  function classify(a: number, b: number, plus: boolean, paren: boolean): boolean {
    let count = 0;
    for (let g = a; g <= b; g++) count += groupEnd[g]! - groupStart[g]!;
    if (count > 19) return false;
    const start = plus || paren ? groupStart[a]! - 1 : groupStart[a]!;
    const end = groupEnd[b]!;
    const spans = b - a + 1;
    let uniform = spans > 1 ? sepKind[a]! : SEP_NONE;
    for (let g = a + 1; g < b; g++) if (sepKind[g] !== uniform) uniform = SEP_OTHER;

    if (wantIp && spans === 4 && uniform === SEP_DOT) {
      if (!ipv4ValidAt(codes, start, end)) return false;
      const version = (start > 0 && (codes[start - 1]! | 0x20) === 118) || nearVersionWord(codes, start);
      return sink!.emit('IP_ADDRESS', start, end, version ? 0.2 : 0.6);
    }
    if (uniform === SEP_DOT && spans === 4) return false;
    // Nothing below has fewer than 8 digits (dates, times, counts end here).
    if (count < 8) return false;

    let n = 0;
    for (let g = a; g <= b; g++) {
      for (let k = groupStart[g]!; k < groupEnd[g]!; k++) digits[n++] = codes[k]! - 48;
    }

    // An opening parenthesis before a card or SSN is punctuation: `(card 4111 … on file)`.
    if (wantCard && !plus && count >= 13 && cardGrouping(a, b, uniform) && knownIin(digits, count) && luhnValid(digits, count)) {
      if (sink!.emit('CREDIT_CARD', groupStart[a]!, end, 0.8)) return true;
    }
    if (wantSsn && !plus && count === 9 && ssnValid(digits)) {
      let base = -1;
      if (spans === 3 && len(a) === 3 && len(a + 1) === 2 && (uniform === SEP_DASH || uniform === SEP_SPACE)) {
        base = uniform === SEP_DASH ? 0.6 : 0.4;
      } else if (spans === 1) {
        base = 0.25;
      }
      if (base > 0 && sink!.emit('US_SSN', groupStart[a]!, end, base)) return true;
    }
    if (wantPhone) {
      const base = phoneConfidence(a, b, count, spans, uniform, plus, paren);
      if (base > 0 && sink!.emit('PHONE_NUMBER', start, end, base)) return true;
    }
    return false;
  }

  function cardGrouping(a: number, b: number, uniform: number): boolean {
    const spans = b - a + 1;
    if (spans === 1) return true;
    if (uniform !== SEP_SPACE && uniform !== SEP_DASH) return false;
    if (spans === 3 && len(a) === 4 && len(a + 1) === 6 && (len(b) === 5 || len(b) === 4)) return true;
    for (let g = a; g < b; g++) if (len(g) !== 4) return false;
    return len(b) >= 1 && len(b) <= 4;
  }

  function phoneConfidence(a: number, b: number, count: number, spans: number, uniform: number, plus: boolean, paren: boolean): number {
    for (let g = a; g < b; g++) if (sepKind[g] === SEP_OTHER) return 0;
    if (plus) {
      if (count < 8 || count > 15 || digits[0] === 0) return 0;
      if (spans > 1 && uniform === SEP_SLASH) return 0;
      return spans === 1 ? 0.65 : 0.7;
    }
    if (paren) {
      return count === 10 && spans === 3 && len(a) === 3 && len(a + 1) === 3 && sepKind[a] === SEP_PAREN && nanp(0) ? 0.65 : 0;
    }
    if (count === 10 && spans === 3 && len(a) === 3 && len(a + 1) === 3 && nanp(0)) {
      if (uniform === SEP_DASH || uniform === SEP_DOT) return 0.6;
      if (uniform === SEP_SPACE) return 0.5;
      return 0;
    }
    if (count === 11 && spans === 4 && digits[0] === 1 && len(a) === 1 && len(a + 1) === 3 && len(a + 2) === 3 && nanp(1)) {
      return uniform === SEP_DASH || uniform === SEP_SPACE || uniform === SEP_DOT ? 0.6 : 0;
    }
    if (digits[0] === 0 && digits[1] !== 0 && count >= 9 && count <= 12) {
      if (spans === 1) return count >= 10 ? 0.3 : 0;
      if (len(a) < 2 || len(a) > 6) return 0;
      // Dates: 05/06/2024, 2024-01-15, 01.02.2024.
      if (spans === 3 && len(a) === 2 && len(a + 1) === 2 && (len(b) === 4 || len(b) === 2) && uniform !== SEP_SPACE) return 0;
      if (uniform === SEP_OTHER && spans > 2) return 0;
      return 0.5;
    }
    if (count === 10 && spans === 2 && len(a) === 5 && digits[0]! >= 6 && (uniform === SEP_SPACE || uniform === SEP_DASH)) return 0.5;
    if (count === 10 && spans === 1 && nanp(0)) return 0.3;
    return 0;
  }
}

/**
 * Whether the word ending just before `end` mixes letters and digits, like the `DE89` that
 * opens a printed IBAN or a part number: digit groups after it belong to that code.
 */
function codeWordBefore(codes: Uint8Array, end: number): boolean {
  let letters = false;
  let digits = false;
  for (let i = end - 1; i >= 0 && end - i <= 12; i--) {
    const c = codes[i]!;
    if (isDigitCode(c)) digits = true;
    else if (isWordCode(c)) letters = true;
    else break;
  }
  return letters && digits;
}

function classifySeparator(codes: Uint8Array, from: number, to: number): number {
  const c = codes[from]!;
  if (to - from === 1) {
    switch (c) {
      case 32: return SEP_SPACE;
      case 45: return SEP_DASH;
      case 46: return SEP_DOT;
      case 47: return SEP_SLASH;
      case 41: return SEP_PAREN;
      default: return SEP_OTHER;
    }
  }
  if (c === 41 && (to - from === 2) && (codes[from + 1]! === 32 || codes[from + 1]! === 45)) return SEP_PAREN;
  // "+44 (0)20 …" and " - " count as a space.
  if (to - from === 2 && c === 32 && codes[from + 1]! === 40) return SEP_SPACE;
  if (to - from === 2 && c === 41 && codes[from + 1]! === 32) return SEP_SPACE;
  if (to - from === 3 && c === 32 && codes[from + 2]! === 32) {
    const m = codes[from + 1]!;
    if (m === 45 || m === 47) return SEP_SPACE;
  }
  return SEP_OTHER;
}
