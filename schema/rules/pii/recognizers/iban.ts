import { IBAN_LENGTHS, ibanChecksumValid, isWordCode } from '../validators.js';

/** Registered length by `(letter1 - 65) * 26 + (letter2 - 65)`, 0 where there is none. */
const LENGTH_BY_COUNTRY = new Uint8Array(26 * 26);
for (const [country, length] of IBAN_LENGTHS) {
  LENGTH_BY_COUNTRY[(country.charCodeAt(0) - 65) * 26 + (country.charCodeAt(1) - 65)] = length;
}
import type { FindingSink, Recognizer } from './sink.js';

/**
 * IBANs, electronic (`DE89370400440532013000`) or printed in groups of four. The trigger
 * `/[A-Z]{2}[0-9]{2}/g` is fixed-length; the body is read by hand up to the country's
 * registered length and checked with mod-97.
 */
export function createIbanRecognizer(): Recognizer {
  const trigger = /[A-Z]{2}[0-9]{2}/g;
  const chars = new Uint8Array(34);
  return function scanIbans(text: string, sink: FindingSink): void {
    trigger.lastIndex = 0;
    while (trigger.test(text)) {
      const start = trigger.lastIndex - 4;
      if (start > 0 && isWordCode(text.charCodeAt(start - 1))) continue;
      const expected = LENGTH_BY_COUNTRY[(text.charCodeAt(start) - 65) * 26 + (text.charCodeAt(start + 1) - 65)]!;
      if (expected === 0) continue;
      let n = 0;
      let i = start;
      while (i < text.length && n < expected) {
        const c = text.charCodeAt(i);
        if ((c >= 48 && c <= 57) || (c >= 65 && c <= 90)) {
          chars[n++] = c;
          i++;
        } else if (c === 32 && n % 4 === 0 && n > 0 && i + 1 < text.length && text.charCodeAt(i + 1) !== 32) {
          i++;
        } else {
          break;
        }
      }
      if (n !== expected || (i < text.length && isWordCode(text.charCodeAt(i)))) continue;
      if (!ibanChecksumValid(chars, n)) continue;
      if (sink.emit('IBAN_CODE', start, i, 0.9)) trigger.lastIndex = i;
    }
  };
}
