import { compileContextWords } from '../context.js';
import { isWordCode, shannonEntropyAt } from '../validators.js';
import type { FindingSink, Recognizer } from './sink.js';

/**
 * High-entropy strings near a word that names a credential ("api_key": "…", `Bearer …`,
 * `password=…`). Without such a word nothing is reported: git SHAs, sha256 digests, UUIDs
 * and base64 blobs are everywhere in tool traffic and are not secrets on their own; next to
 * `token` or `secret` they are treated as one.
 *
 * The trigger is the first of these words (ASCII, any case) that starts at a position, as the
 * alternation `apikey|secretkey|…|key` would match it: compound words come before their
 * parts. From the end of a word the next 40 characters of the same line are searched for a
 * token of `[A-Za-z0-9+/_.~-]` (plus trailing `=`) at least MIN_LENGTH long that looks
 * random: Shannon entropy ≥ MIN_ENTROPY bits/char, both letters and digits, and frequent
 * switches between lower case, upper case and digits (which identifiers such as
 * `user_profile_v2_backup` lack).
 */
const WORDS = ['apikey', 'secretkey', 'accesskey', 'privatekey', 'authorization', 'passphrase', 'password', 'passwd', 'credential', 'secret', 'bearer', 'token', 'auth', 'pwd', 'key'];

/** The words by their first two letters (lowercase), in alternation order. */
const WORDS_BY_PAIR = new Map<number, Uint8Array[]>();
for (const word of WORDS) {
  const key = (word.charCodeAt(0) << 8) | word.charCodeAt(1);
  WORDS_BY_PAIR.set(key, [...(WORDS_BY_PAIR.get(key) ?? []), Uint8Array.from(word, (ch) => ch.charCodeAt(0))]);
}
/** Second and third letters of the words (lowercase), for the trigger pass's second table. */
const NEXT_PAIRS = new Set(WORDS.map((word) => (word.charCodeAt(1) << 8) | word.charCodeAt(2)));
/** The first two letters' table, dense, indexed by the two lowercase letters' offsets from `a`. */
const WORDS_AT = new Array<Uint8Array[] | undefined>(26 * 26).fill(undefined);
for (const [key, words] of WORDS_BY_PAIR) WORDS_AT[((key >> 8) - 97) * 26 + (key & 0xff) - 97] = words;

export const MIN_LENGTH = 20;
export const MIN_ENTROPY = 3.2;
const MIN_SWITCH_RATE = 0.28;
const LOOKAHEAD = 40;
const MAX_TOKEN = 512;
const nearAws = compileContextWords(['aws'], 100);

function isAsciiLetter(c: number): boolean {
  return (c | 0x20) >= 97 && (c | 0x20) <= 122;
}

/** Token units by class: 0 not in a token, 1 digit, 2 upper case, 3 lower case, 4 `+/_.~-`. */
const TOKEN_CLASS = new Uint8Array(256);
for (let c = 48; c <= 57; c++) TOKEN_CLASS[c] = 1;
for (let c = 65; c <= 90; c++) TOKEN_CLASS[c] = 2;
for (let c = 97; c <= 122; c++) TOKEN_CLASS[c] = 3;
for (const c of '+/_.~-') TOKEN_CLASS[c.charCodeAt(0)] = 4;

function isLower(c: number): boolean {
  return c >= 97 && c <= 122;
}

/** The length of the first word of WORDS that starts at `start` (case-insensitive), or 0. */
function wordAt(codes: Uint8Array, start: number): number {
  const words = WORDS_AT[((codes[start]! | 0x20) - 97) * 26 + (codes[start + 1]! | 0x20) - 97];
  if (words === undefined) return 0;
  for (const word of words) {
    let k = 2;
    while (k < word.length && (codes[start + k]! | 0x20) === word[k]) k++;
    if (k === word.length) return k;
  }
  return 0;
}

export function createEntropyRecognizer(): Recognizer {
  let codes: Uint8Array = new Uint8Array(0);
  let length = 0;
  let sink: FindingSink | undefined;
  let wantGeneric = false;
  let wantAws = false;
  /** Where the next word may start (the former RegExp's `lastIndex`). */
  let next = 0;
  /** Tokens before this were already searched after an earlier word. */
  let searchedTo = 0;
  function at(second: number): void {
    const start = second - 1;
    if (start < next) return;
    const size = wordAt(codes, start);
    if (size === 0) return;
    const wordEnd = start + size;
    next = wordEnd;
    // Past the end the padding reads 0: neither lower case nor `s`.
    const after = codes[wordEnd]!;
    // `keyboard`, `tokenizer`, `monkey`, `author` are not credential words; `tokens`, `apiKey` are.
    if (isLower(after) && !(after === 115 && !isLower(codes[wordEnd + 1]!))) return;
    if (!startsAtBoundary(codes, start)) return;
    let i = Math.max(wordEnd, searchedTo);
    const limit = Math.min(length, wordEnd + LOOKAHEAD);
    while (i < limit) {
      const c = codes[i]!;
      if (c === 10) break;
      if (TOKEN_CLASS[c] === 0) {
        i++;
        continue;
      }
      // Read the token and, on the way, what looksRandom needs: letters, digits and
      // switches between digits, upper and lower case (other token units do not count).
      let end = i;
      let letters = 0;
      let digitCount = 0;
      let switches = 0;
      let previous = 0;
      const tokenLimit = Math.min(length, i + MAX_TOKEN);
      while (end < tokenLimit) {
        const k = TOKEN_CLASS[codes[end]!]!;
        if (k === 0) break;
        end++;
        // Branch-free (in random tokens these tests go either way at random): 1 for a
        // digit, 1 for a letter or digit, 1 when the class differs from the previous one.
        const digit = (k - 2) >>> 31;
        const alnum = (k - 4) >>> 31;
        const change = k ^ previous;
        digitCount += digit;
        letters += alnum - digit;
        switches += alnum & (-previous >>> 31) & ((change | -change) >>> 31);
        previous ^= change & -alnum;
      }
      // A full stop ends a sentence, not a token; `=` is base64 padding only at the end.
      // Neither changes the counts.
      while (end > i && codes[end - 1] === 46) end--;
      while (end < tokenLimit && end - i >= MIN_LENGTH && codes[end] === 61) end++;
      if (end - i >= MIN_LENGTH && looksRandom(codes, i, end, letters, digitCount, switches)) {
        const aws = wantAws && end - i === 40 && isBase64(codes, i, end) && nearAws(codes, i);
        if (aws ? sink!.emit('AWS_SECRET_KEY', i, end, 0.9) : wantGeneric && sink!.emit('HIGH_ENTROPY_SECRET', i, end, 0.7)) {
          searchedTo = end;
          next = Math.max(next, end);
          break;
        }
      }
      i = Math.max(end, i + 1);
    }
  }

  return {
    trigger: (before, c) => isAsciiLetter(before) && isAsciiLetter(c) && WORDS_BY_PAIR.has(((before | 0x20) << 8) | (c | 0x20)),
    triggerNext: (c, next) => isAsciiLetter(c) && isAsciiLetter(next) && NEXT_PAIRS.has(((c | 0x20) << 8) | (next | 0x20)),
    begin(text, scanned, findings) {
      codes = scanned;
      length = text.length;
      next = 0;
      searchedTo = 0;
      // The sink (the scanner's) and what it wants never change: asked once.
      if (findings !== sink) {
        sink = findings;
        wantGeneric = sink.wants('HIGH_ENTROPY_SECRET');
        wantAws = sink.wants('AWS_SECRET_KEY');
      }
      return wantGeneric || wantAws;
    },
    run(positions, count) {
      for (let k = 0; k < count; k++) at(positions[k]!);
    },
  };
}

/**
 * Whether the matched word starts at a word boundary: `api_key`, `x-api-key`, `apiKey`,
 * `AWS_SECRET_ACCESS_KEY` do; `monkey`, `MYTOKEN` do not. Compound words come before their
 * parts, so the match is the longest word there (`apikey`, not `key`).
 */
function startsAtBoundary(codes: Uint8Array, start: number): boolean {
  if (start === 0) return true;
  const before = codes[start - 1]!;
  if (!isWordCode(before) || before === 95) return true;
  const head = codes[start]!;
  return isLower(before) && head >= 65 && head <= 90;
}

function isBase64(codes: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = codes[i]!;
    if (!((c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 43 || c === 47)) return false;
  }
  return true;
}

/** Random-looking: letters and digits, at least MIN_LENGTH of them, switching often, with high entropy. */
function looksRandom(codes: Uint8Array, start: number, end: number, letters: number, digitCount: number, switches: number): boolean {
  const alnum = letters + digitCount;
  if (letters === 0 || digitCount === 0 || alnum < MIN_LENGTH) return false;
  if (switches / (alnum - 1) < MIN_SWITCH_RATE) return false;
  return shannonEntropyAt(codes, start, end) >= MIN_ENTROPY;
}
