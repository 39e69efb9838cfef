import { IBAN_LENGTHS, ibanChecksumValid, isDigitCode, isWordCode } from '../validators.js';
import type { FindingSink, Recognizer } from './sink.js';
import { triggeredRecognizer } from './triggered.js';

/** Registered length by `(letter1 - 65) * 26 + (letter2 - 65)`, 0 where there is none. */
const LENGTH_BY_COUNTRY = new Uint8Array(26 * 26);
for (const [country, length] of IBAN_LENGTHS) {
  LENGTH_BY_COUNTRY[(country.charCodeAt(0) - 65) * 26 + (country.charCodeAt(1) - 65)] = length;
}

function isUpper(c: number): boolean {
  return c >= 65 && c <= 90;
}

/**
 * IBANs, electronic (`DE89370400440532013000`) or printed in groups of four. The trigger is
 * two capitals followed by two digits (`[A-Z]{2}[0-9]{2}`, fixed length), offered by the
 * trigger pass at its capital–digit pair (rarer than two capitals); the body is read by
 * hand up to the country's registered length and checked with mod-97.
 */
export function createIbanRecognizer(): Recognizer {
  const chars = new Uint8Array(34);
  let codes: Uint8Array = new Uint8Array(0);
  let length = 0;
  let sink: FindingSink;
  /** Where the next trigger may start (the former RegExp's `lastIndex`). */
  let next = 0;
  function at(third: number): void {
    // The trigger pass offers the capital and digit in the middle; the first capital is checked here.
    const start = third - 2;
    if (start < next || start < 0 || !isUpper(codes[start]!)) return;
    next = start + 4;
    if (start > 0 && isWordCode(codes[start - 1]!)) return;
    const expected = LENGTH_BY_COUNTRY[(codes[start]! - 65) * 26 + (codes[start + 1]! - 65)]!;
    if (expected === 0) return;
    let n = 0;
    let i = start;
    while (i < length && n < expected) {
      const c = codes[i]!;
      if ((c >= 48 && c <= 57) || (c >= 65 && c <= 90)) {
        chars[n++] = c;
        i++;
      } else if (c === 32 && n % 4 === 0 && n > 0 && i + 1 < length && codes[i + 1] !== 32) {
        i++;
      } else {
        break;
      }
    }
    if (n !== expected || (i < length && isWordCode(codes[i]!))) return;
    if (!ibanChecksumValid(chars, n)) return;
    if (sink!.emit('IBAN_CODE', start, i, 0.9)) next = i;
  }

  return triggeredRecognizer({
    types: ['IBAN_CODE'],
    trigger: (before, c) => isUpper(before) && isDigitCode(c),
    triggerNext: (c, next) => isDigitCode(c) && isDigitCode(next),
    begin(scanned, n, findings) {
      codes = scanned;
      length = n;
      sink = findings;
      next = 0;
    },
    at,
  });
}
