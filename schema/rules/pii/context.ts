import type { EntityType } from './finding.js';

/** How far before a candidate the scanner looks for context words, in UTF-16 units. */
export const CONTEXT_WINDOW = 40;

/** Added to a candidate's base confidence when a context word precedes it (capped at 1). */
export const CONTEXT_BOOST = 0.3;

/**
 * Lowercase words that make a nearby candidate more likely to be the entity. Secrets are
 * absent: their recognizers either need no context or already require it.
 */
export const CONTEXT_WORDS: Readonly<Partial<Record<EntityType, readonly string[]>>> = {
  EMAIL_ADDRESS: ['email', 'e-mail', 'mail', 'contact', 'reply-to', 'from', 'to'],
  PHONE_NUMBER: [
    'phone', 'tel', 'telephone', 'mobile', 'cell', 'fax', 'call', 'contact', 'whatsapp', 'sms',
    'telefon', 'téléphone', 'portable', 'handy', 'mob', 'ph', 'dial',
  ],
  US_SSN: ['ssn', 'social security', 'social sec', 'ss#', 'ss no', 'tin', 'taxpayer', 'tax id'],
  CREDIT_CARD: ['card', 'credit', 'debit', 'visa', 'mastercard', 'amex', 'cc', 'pan', 'payment', 'cardnumber', 'card_number'],
  IBAN_CODE: ['iban', 'bank', 'account', 'sepa', 'transfer'],
  IP_ADDRESS: ['ip', 'ipv4', 'ipv6', 'address', 'addr', 'host', 'server', 'client', 'remote', 'peer', 'from', 'src', 'dst'],
};

function isLetter(c: number): boolean {
  return ((c | 0x20) >= 97 && (c | 0x20) <= 122) || c > 0xbf;
}

/** Looks for context words before a position; built once per word list. */
export type ContextMatcher = (text: string, start: number) => boolean;

/**
 * Compiles `words` into a matcher for "does one of them occur in the `window` characters
 * before `start`", compared case-insensitively without allocating. A word must start at a
 * word boundary (or a camelCase hump: `userEmail`); words of three letters or fewer (`ip`,
 * `cc`, `tel`) must also end at one. The window is walked once; only words whose first
 * letter matches are compared.
 */
export function compileContextWords(words: readonly string[], window = CONTEXT_WINDOW): ContextMatcher {
  // Words by their (lowercase) first UTF-16 unit, in a dense table for ASCII: the window walk
  // is one array read per character, no hashing.
  const ascii: Array<readonly string[] | undefined> = new Array(128).fill(undefined);
  const other = new Map<number, string[]>();
  for (const word of words) {
    const first = word.charCodeAt(0);
    if (first < 128) ascii[first] = [...(ascii[first] ?? []), word];
    else other.set(first, [...(other.get(first) ?? []), word]);
  }
  const firstLetters = new Uint8Array(128);
  for (let c = 0; c < 128; c++) if (ascii[c | 0x20] !== undefined && ((c | 0x20) === c || (c >= 65 && c <= 90))) firstLetters[c] = 1;
  return (text, start) => {
    const from = Math.max(0, start - window);
    for (let i = from; i < start; i++) {
      const c0 = text.charCodeAt(i);
      let candidates: readonly string[] | undefined;
      if (c0 < 128) {
        if (firstLetters[c0] === 0) continue;
        candidates = ascii[c0 | 0x20];
      } else {
        candidates = other.get(c0);
      }
      if (candidates === undefined) continue;
      if (i > 0) {
        const before = text.charCodeAt(i - 1);
        const hump = c0 >= 65 && c0 <= 90 && before >= 97 && before <= 122;
        if (isLetter(before) && !hump) continue;
      }
      for (const word of candidates) {
        const n = word.length;
        if (i + n > start) continue;
        let k = 1;
        while (k < n) {
          const c = text.charCodeAt(i + k);
          const w = word.charCodeAt(k);
          if (c !== w && (c | 0x20) !== w) break;
          k++;
        }
        if (k < n) continue;
        if (n <= 3 && i + n < text.length) {
          const after = text.charCodeAt(i + n);
          const last = text.charCodeAt(i + n - 1);
          const hump = after >= 65 && after <= 90 && last >= 97 && last <= 122;
          if (isLetter(after) && !hump) continue;
        }
        return true;
      }
    }
    return false;
  };
}
