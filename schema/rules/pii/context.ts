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

/** Looks for context words before a position of the scanned text's code-unit bytes (`codes.ts`); built once per word list. */
export type ContextMatcher = (codes: Uint8Array, start: number) => boolean;

/**
 * Compiles `words` into a matcher for "does one of them occur in the `window` characters
 * before `start`", compared case-insensitively without allocating. A word must start at a
 * word boundary (or a camelCase hump: `userEmail`); words of three letters or fewer (`ip`,
 * `cc`, `tel`) must also end at one. The window is walked once; only words whose first
 * letter matches are compared. Words are lowercase Latin-1 without `ÿ` (the stand-in for
 * units above U+00FF in `codes.ts`, which therefore never match).
 */
export function compileContextWords(words: readonly string[], window = CONTEXT_WINDOW): ContextMatcher {
  // Words (as code arrays) by the byte that can start them, in a dense table: the window
  // walk is one array read per character, no hashing. ASCII words also start at their
  // first letter in upper case.
  const byFirst: Array<Uint8Array[] | undefined> = new Array(256).fill(undefined);
  for (const word of words) {
    if (word.length === 0 || /[^\u0000-\u00fe]/.test(word) || word !== word.toLowerCase()) {
      throw new TypeError(`compileContextWords: "${word}" must be a non-empty lowercase Latin-1 word without ÿ`);
    }
    const codes = Uint8Array.from(word, (ch) => ch.charCodeAt(0));
    const first = codes[0]!;
    const starts = first >= 97 && first <= 122 ? [first, first - 32] : first < 128 && (first | 0x20) !== first ? [] : [first];
    for (const c of starts) byFirst[c] = [...(byFirst[c] ?? []), codes];
  }
  return (codes, start) => {
    const from = Math.max(0, start - window);
    for (let i = from; i < start; i++) {
      const candidates = byFirst[codes[i]!];
      if (candidates === undefined) continue;
      if (i > 0) {
        const c0 = codes[i]!;
        const before = codes[i - 1]!;
        const hump = c0 >= 65 && c0 <= 90 && before >= 97 && before <= 122;
        if (isLetter(before) && !hump) continue;
      }
      for (const word of candidates) {
        const n = word.length;
        if (i + n > start) continue;
        let k = 1;
        while (k < n) {
          const c = codes[i + k]!;
          const w = word[k]!;
          if (c !== w && (c | 0x20) !== w) break;
          k++;
        }
        if (k < n) continue;
        if (n <= 3) {
          // Past the text's end the padding reads 0, which is no letter.
          const after = codes[i + n]!;
          const last = codes[i + n - 1]!;
          const hump = after >= 65 && after <= 90 && last >= 97 && last <= 122;
          if (isLetter(after) && !hump) continue;
        }
        return true;
      }
    }
    return false;
  };
}
