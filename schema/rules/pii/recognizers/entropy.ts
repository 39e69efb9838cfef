import { compileContextWords } from '../context.js';
import { isWordCode, shannonEntropy } from '../validators.js';
import type { FindingSink, Recognizer } from './sink.js';

/**
 * High-entropy strings near a word that names a credential ("api_key": "…", `Bearer …`,
 * `password=…`). Without such a word nothing is reported: git SHAs, sha256 digests, UUIDs
 * and base64 blobs are everywhere in tool traffic and are not secrets on their own; next to
 * `token` or `secret` they are treated as one.
 *
 * The trigger is an alternation of literal words (no quantifiers). From the end of a word
 * the next 40 characters of the same line are searched for a token of `[A-Za-z0-9+/_.~-]` (plus trailing `=`)
 * at least MIN_LENGTH long that looks random: Shannon entropy ≥ MIN_ENTROPY bits/char, both
 * letters and digits, and frequent switches between lower case, upper case and digits
 * (which identifiers such as `user_profile_v2_backup` lack).
 */
const TRIGGER = /apikey|secretkey|accesskey|privatekey|authorization|passphrase|password|passwd|credential|secret|bearer|token|auth|pwd|key/gi;

export const MIN_LENGTH = 20;
export const MIN_ENTROPY = 3.2;
const MIN_SWITCH_RATE = 0.28;
const LOOKAHEAD = 40;
const MAX_TOKEN = 512;
const nearAws = compileContextWords(['aws'], 100);

function isTokenCode(c: number): boolean {
  return (
    (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) ||
    c === 43 || c === 47 || c === 95 || c === 46 || c === 126 || c === 45
  );
}

function isLower(c: number): boolean {
  return c >= 97 && c <= 122;
}

function charClass(c: number): number {
  if (c >= 48 && c <= 57) return 1;
  if (c >= 65 && c <= 90) return 2;
  if (c >= 97 && c <= 122) return 3;
  return 0;
}

export function createEntropyRecognizer(): Recognizer {
  const trigger = new RegExp(TRIGGER.source, 'gi');
  return function scanHighEntropy(text: string, sink: FindingSink): void {
    const wantGeneric = sink.wants('HIGH_ENTROPY_SECRET');
    const wantAws = sink.wants('AWS_SECRET_KEY');
    if (!wantGeneric && !wantAws) return;
    trigger.lastIndex = 0;
    let searchedTo = 0;
    let m: RegExpExecArray | null;
    while ((m = trigger.exec(text)) !== null) {
      const wordEnd = trigger.lastIndex;
      const after = wordEnd < text.length ? text.charCodeAt(wordEnd) : 32;
      // `keyboard`, `tokenizer`, `monkey`, `author` are not credential words; `tokens`, `apiKey` are.
      if (isLower(after) && !(after === 115 && !isLower(text.charCodeAt(wordEnd + 1)))) continue;
      if (!startsAtBoundary(text, m.index)) continue;
      let i = Math.max(wordEnd, searchedTo);
      const limit = Math.min(text.length, wordEnd + LOOKAHEAD);
      while (i < limit) {
        const c = text.charCodeAt(i);
        if (c === 10) break;
        if (!isTokenCode(c)) {
          i++;
          continue;
        }
        let end = i;
        const tokenLimit = Math.min(text.length, i + MAX_TOKEN);
        while (end < tokenLimit && isTokenCode(text.charCodeAt(end))) end++;
        // A full stop ends a sentence, not a token; `=` is base64 padding only at the end.
        while (end > i && text.charCodeAt(end - 1) === 46) end--;
        while (end < tokenLimit && end - i >= MIN_LENGTH && text.charCodeAt(end) === 61) end++;
        if (end - i >= MIN_LENGTH && looksRandom(text, i, end)) {
          const aws = wantAws && end - i === 40 && isBase64(text, i, end) && nearAws(text, i);
          if (aws ? sink.emit('AWS_SECRET_KEY', i, end, 0.9) : wantGeneric && sink.emit('HIGH_ENTROPY_SECRET', i, end, 0.7)) {
            searchedTo = end;
            trigger.lastIndex = Math.max(trigger.lastIndex, end);
            break;
          }
        }
        i = Math.max(end, i + 1);
      }
    }
  };
}

/**
 * Whether the matched word starts at a word boundary: `api_key`, `x-api-key`, `apiKey`,
 * `AWS_SECRET_ACCESS_KEY` do; `monkey`, `MYTOKEN` do not. The trigger lists compound words
 * before their parts, so the match is the longest word there (`apikey`, not `key`).
 */
function startsAtBoundary(text: string, start: number): boolean {
  if (start === 0) return true;
  const before = text.charCodeAt(start - 1);
  if (!isWordCode(before) || before === 95) return true;
  const head = text.charCodeAt(start);
  return isLower(before) && head >= 65 && head <= 90;
}

function isBase64(text: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 43 || c === 47)) return false;
  }
  return true;
}

function looksRandom(text: string, start: number, end: number): boolean {
  let letters = 0;
  let digitCount = 0;
  let switches = 0;
  let alnum = 0;
  let previous = 0;
  for (let i = start; i < end; i++) {
    const k = charClass(text.charCodeAt(i));
    if (k === 0) continue;
    alnum++;
    if (k === 1) digitCount++;
    else letters++;
    if (previous !== 0 && k !== previous) switches++;
    previous = k;
  }
  if (letters === 0 || digitCount === 0 || alnum < MIN_LENGTH) return false;
  if (switches / (alnum - 1) < MIN_SWITCH_RATE) return false;
  return shannonEntropy(text, start, end) >= MIN_ENTROPY;
}
