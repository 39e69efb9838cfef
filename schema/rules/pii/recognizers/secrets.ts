import { Buffer } from 'node:buffer';
import type { EntityType } from '../finding.js';
import { isWordCode } from '../validators.js';
import type { FindingSink, Recognizer } from './sink.js';

/**
 * Credentials with a fixed, documented prefix:
 * `\b(?:AKIA|ASIA|ABIA|ACCA|gh[pousr]_|github_pat_|xox[abprs]-|[spr]k_(?:live|test)_|eyJ)|-----BEGIN `
 * (every prefix but a key block's must start a word). The trigger pass offers the places
 * where the first three characters of one can start; `prefixAt` compares the whole prefix. Bodies are read by hand with a length cap.
 */
const PREFIXES = ['AKIA', 'ASIA', 'ABIA', 'ACCA', 'ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_', 'github_pat_', 'xoxa-', 'xoxb-', 'xoxp-', 'xoxr-', 'xoxs-', 'sk_live_', 'sk_test_', 'pk_live_', 'pk_test_', 'rk_live_', 'rk_test_', 'eyJ', '-----BEGIN '];
/** First and second units, second and third units of the prefixes (the trigger pass's two tables). */
const FIRST_PAIRS = new Set(PREFIXES.map((p) => p.slice(0, 2)));
const NEXT_PAIRS = new Set(PREFIXES.map((p) => p.slice(1, 3)));

const SECRET_TYPES: readonly EntityType[] = ['AWS_ACCESS_KEY', 'GITHUB_TOKEN', 'SLACK_TOKEN', 'STRIPE_KEY', 'JWT', 'PRIVATE_KEY'];

const MAX_TOKEN = 1024;
/** A private key block is looked for up to this far after its BEGIN line. */
const MAX_KEY_BLOCK = 64 * 1024;

function isAlnum(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

function classTable(accept: (c: number) => boolean): Uint8Array {
  const table = new Uint8Array(256);
  for (let c = 0; c < 256; c++) table[c] = accept(c) ? 1 : 0;
  return table;
}

const AWS_BODY = classTable((c) => (c >= 65 && c <= 90) || (c >= 48 && c <= 57));
const ALNUM = classTable(isAlnum);
const ALNUM_UNDERSCORE = classTable((c) => isAlnum(c) || c === 95);
const ALNUM_DASH = classTable((c) => isAlnum(c) || c === 45);
const BASE64URL = classTable((c) => isAlnum(c) || c === 45 || c === 95);

function readWhile(codes: Uint8Array, length: number, from: number, accept: Uint8Array): number {
  let i = from;
  const limit = Math.min(length, from + MAX_TOKEN);
  while (i < limit && accept[codes[i]!] === 1) i++;
  return i;
}

function bytesOf(s: string): Uint8Array {
  return Uint8Array.from(s, (ch) => ch.charCodeAt(0));
}

const GITHUB_PAT = bytesOf('github_pat_');
const BEGIN_LINE = bytesOf('-----BEGIN ');

function startsWithAt(codes: Uint8Array, at: number, literal: Uint8Array): boolean {
  for (let k = 0; k < literal.length; k++) if (codes[at + k] !== literal[k]) return false;
  return true;
}

/** Whether one of the literal prefixes starts at `start` (the two first characters already matched). */
function prefixAt(codes: Uint8Array, start: number): boolean {
  const c0 = codes[start]!;
  if (c0 === 45) return startsWithAt(codes, start, BEGIN_LINE);
  if (start > 0 && isWordCode(codes[start - 1]!)) return false;
  const c2 = codes[start + 2]!;
  const c3 = codes[start + 3]!;
  switch (c0) {
    case 65: {
      // AKIA, ASIA, ABIA, ACCA
      const c1 = codes[start + 1]!;
      return c1 === 67 ? c2 === 67 && c3 === 65 : c2 === 73 && c3 === 65;
    }
    case 103:
      if (codes[start + 1] === 104) return (c2 === 112 || c2 === 111 || c2 === 117 || c2 === 115 || c2 === 114) && c3 === 95;
      return startsWithAt(codes, start, GITHUB_PAT);
    case 120:
      return c2 === 120 && (c3 === 97 || c3 === 98 || c3 === 112 || c3 === 114 || c3 === 115) && codes[start + 4] === 45;
    case 115:
    case 112:
    case 114: {
      // [spr]k_live_ and [spr]k_test_
      if (c2 !== 95) return false;
      const live = c3 === 108 && codes[start + 4] === 105 && codes[start + 5] === 118 && codes[start + 6] === 101;
      const test = c3 === 116 && codes[start + 4] === 101 && codes[start + 5] === 115 && codes[start + 6] === 116;
      return (live || test) && codes[start + 7] === 95;
    }
    case 101:
      return c2 === 74;
    default:
      return false;
  }
}

export function createSecretRecognizer(): Recognizer {
  let text = '';
  let codes: Uint8Array = new Uint8Array(0);
  let sink: FindingSink | undefined;
  let wanted = false;
  /** Where the next prefix may start (the former RegExp's `lastIndex`). */
  let next = 0;
  function at(second: number): void {
    const start = second - 1;
    if (start < next || !prefixAt(codes, start)) return;
    const end = recognizeAt(text, codes, start, sink!);
    // Not a credential: look again from the next character (prefixes may overlap).
    next = end > start ? end : start + 1;
  }

  return {
    trigger: (before, c) => FIRST_PAIRS.has(String.fromCharCode(before, c)),
    triggerNext: (c, next) => NEXT_PAIRS.has(String.fromCharCode(c, next)),
    begin(scannedText, scanned, findings) {
      text = scannedText;
      codes = scanned;
      next = 0;
      // The sink (the scanner's) and what it wants never change: asked once.
      if (findings !== sink) {
        sink = findings;
        wanted = SECRET_TYPES.some((type) => findings.wants(type));
      }
      return wanted;
    },
    run(positions, count) {
      for (let k = 0; k < count; k++) at(positions[k]!);
    },
  };
}

/** Returns the end of what was reported, or -1. */
function recognizeAt(text: string, codes: Uint8Array, start: number, sink: FindingSink): number {
  const length = text.length;
  const c0 = codes[start]!;
  const boundary = start === 0 || !isWordCode(codes[start - 1]!);
  switch (c0) {
    case 65: {
      // AWS access key id: 4-letter prefix + 16 of [A-Z2-7] (base32), 20 in all.
      if (!boundary) return -1;
      const end = readWhile(codes, length, start + 4, AWS_BODY);
      if (end - start !== 20 || (end < length && isAlnum(codes[end]!))) return -1;
      return sink.emit('AWS_ACCESS_KEY', start, end, 0.95) ? end : -1;
    }
    case 103: {
      if (!boundary) return -1;
      if (startsWithAt(codes, start, GITHUB_PAT)) {
        const end = readWhile(codes, length, start + 11, ALNUM_UNDERSCORE);
        return end - start >= 11 + 22 && sink.emit('GITHUB_TOKEN', start, end, 0.95) ? end : -1;
      }
      const end = readWhile(codes, length, start + 4, ALNUM);
      return end - start >= 4 + 30 && sink.emit('GITHUB_TOKEN', start, end, 0.95) ? end : -1;
    }
    case 120: {
      if (!boundary) return -1;
      const end = readWhile(codes, length, start + 5, ALNUM_DASH);
      return end - start >= 5 + 15 && sink.emit('SLACK_TOKEN', start, end, 0.95) ? end : -1;
    }
    case 115:
    case 114:
    case 112: {
      if (!boundary) return -1;
      const live = codes[start + 3] === 108;
      const bodyStart = start + 8; // sk_live_ and sk_test_ alike
      const end = readWhile(codes, length, bodyStart, ALNUM);
      if (end - bodyStart < 10) return -1;
      const base = c0 === 112 ? 0.7 : live ? 0.95 : 0.85;
      return sink.emit('STRIPE_KEY', start, end, base) ? end : -1;
    }
    case 101:
      return boundary ? recognizeJwt(text, codes, start, sink) : -1;
    case 45:
      return recognizePrivateKey(text, codes, start, sink);
    default:
      return -1;
  }
}

function recognizeJwt(text: string, codes: Uint8Array, start: number, sink: FindingSink): number {
  const length = text.length;
  const headerEnd = readWhile(codes, length, start, BASE64URL);
  if (headerEnd - start < 10 || codes[headerEnd] !== 46) return -1;
  const payloadEnd = readWhile(codes, length, headerEnd + 1, BASE64URL);
  if (payloadEnd - headerEnd - 1 < 2 || codes[payloadEnd] !== 46) return -1;
  const end = readWhile(codes, length, payloadEnd + 1, BASE64URL);
  if (!jwtHeaderHasAlg(text.slice(start, headerEnd))) return -1;
  return sink.emit('JWT', start, end, 0.95) ? end : -1;
}

function jwtHeaderHasAlg(encoded: string): boolean {
  if (encoded.length > 2048) return false;
  try {
    const header: unknown = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8'));
    return typeof header === 'object' && header !== null && typeof (header as { alg?: unknown }).alg === 'string';
  } catch {
    return false;
  }
}

const BEGIN = '-----BEGIN ';
const END = '-----END ';
const PRIVATE_KEY = 'PRIVATE KEY';
const DASHES = '-----';

function recognizePrivateKey(text: string, codes: Uint8Array, start: number, sink: FindingSink): number {
  // "-----BEGIN [RSA |EC |OPENSSH |ENCRYPTED |DSA |PGP ]PRIVATE KEY[ BLOCK]-----"
  const length = text.length;
  let i = start + BEGIN.length;
  const labelLimit = Math.min(length, i + 40);
  while (i < labelLimit && ((codes[i]! >= 65 && codes[i]! <= 90) || codes[i] === 32)) i++;
  const label = text.slice(start + BEGIN.length, i);
  if (!label.includes(PRIVATE_KEY) || !text.startsWith(DASHES, i)) return -1;
  const headerEnd = i + DASHES.length;
  const endMarker = text.indexOf(`${END}${label}${DASHES}`, headerEnd);
  let end: number;
  if (endMarker !== -1 && endMarker - headerEnd <= MAX_KEY_BLOCK) {
    end = endMarker + END.length + label.length + DASHES.length;
  } else {
    // Truncated block: the header and the base64 body that follows it.
    end = headerEnd;
    const limit = Math.min(length, headerEnd + MAX_KEY_BLOCK);
    while (end < limit) {
      const c = codes[end]!;
      if (isAlnum(c) || c === 43 || c === 47 || c === 61 || c === 10 || c === 13 || c === 92 || c === 32) end++;
      else break;
    }
    while (end > headerEnd && (codes[end - 1] === 10 || codes[end - 1] === 13 || codes[end - 1] === 32)) end--;
  }
  return sink.emit('PRIVATE_KEY', start, end, 1) ? end : -1;
}
