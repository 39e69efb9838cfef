import { Buffer } from 'node:buffer';
import { isWordCode } from '../validators.js';
import type { FindingSink, Recognizer } from './sink.js';

/**
 * Credentials with a fixed, documented prefix. One trigger finds every prefix: literal
 * alternatives after a word boundary (every prefix but a key block's must start a word),
 * so no quantifier and no lookahead; `m.index` is where the prefix starts. Bodies are read
 * by hand with a length cap.
 */
const TRIGGER = /\b(?:AKIA|ASIA|ABIA|ACCA|gh[pousr]_|github_pat_|xox[abprs]-|[spr]k_(?:live|test)_|eyJ)|-----BEGIN /g;

const MAX_TOKEN = 1024;
/** A private key block is looked for up to this far after its BEGIN line. */
const MAX_KEY_BLOCK = 64 * 1024;

function isAlnum(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

function isBase64Url(c: number): boolean {
  return isAlnum(c) || c === 45 || c === 95;
}

function readWhile(text: string, from: number, accept: (c: number) => boolean): number {
  let i = from;
  const limit = Math.min(text.length, from + MAX_TOKEN);
  while (i < limit && accept(text.charCodeAt(i))) i++;
  return i;
}

export function createSecretRecognizer(): Recognizer {
  const trigger = new RegExp(TRIGGER.source, 'g');
  return function scanSecrets(text: string, sink: FindingSink): void {
    trigger.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = trigger.exec(text)) !== null) {
      const start = m.index;
      const end = recognizeAt(text, start, sink);
      // Not a credential: look again from the next character (prefixes may overlap).
      trigger.lastIndex = end > start ? end : start + 1;
    }
  };
}

/** Returns the end of what was reported, or -1. */
function recognizeAt(text: string, start: number, sink: FindingSink): number {
  const c0 = text.charCodeAt(start);
  const boundary = start === 0 || !isWordCode(text.charCodeAt(start - 1));
  switch (c0) {
    case 65: {
      // AWS access key id: 4-letter prefix + 16 of [A-Z2-7] (base32), 20 in all.
      if (!boundary) return -1;
      const end = readWhile(text, start + 4, (c) => (c >= 65 && c <= 90) || (c >= 48 && c <= 57));
      if (end - start !== 20 || (end < text.length && isAlnum(text.charCodeAt(end)))) return -1;
      return sink.emit('AWS_ACCESS_KEY', start, end, 0.95) ? end : -1;
    }
    case 103: {
      if (!boundary) return -1;
      if (text.startsWith('github_pat_', start)) {
        const end = readWhile(text, start + 11, (c) => isAlnum(c) || c === 95);
        return end - start >= 11 + 22 && sink.emit('GITHUB_TOKEN', start, end, 0.95) ? end : -1;
      }
      const end = readWhile(text, start + 4, isAlnum);
      return end - start >= 4 + 30 && sink.emit('GITHUB_TOKEN', start, end, 0.95) ? end : -1;
    }
    case 120: {
      if (!boundary) return -1;
      const end = readWhile(text, start + 5, (c) => isAlnum(c) || c === 45);
      return end - start >= 5 + 15 && sink.emit('SLACK_TOKEN', start, end, 0.95) ? end : -1;
    }
    case 115:
    case 114:
    case 112: {
      if (!boundary) return -1;
      const live = text.charCodeAt(start + 3) === 108;
      const bodyStart = start + 8; // sk_live_ and sk_test_ alike
      const end = readWhile(text, bodyStart, isAlnum);
      if (end - bodyStart < 10) return -1;
      const base = c0 === 112 ? 0.7 : live ? 0.95 : 0.85;
      return sink.emit('STRIPE_KEY', start, end, base) ? end : -1;
    }
    case 101:
      return boundary ? recognizeJwt(text, start, sink) : -1;
    case 45:
      return recognizePrivateKey(text, start, sink);
    default:
      return -1;
  }
}

function recognizeJwt(text: string, start: number, sink: FindingSink): number {
  const headerEnd = readWhile(text, start, isBase64Url);
  if (headerEnd - start < 10 || text.charCodeAt(headerEnd) !== 46) return -1;
  const payloadEnd = readWhile(text, headerEnd + 1, isBase64Url);
  if (payloadEnd - headerEnd - 1 < 2 || text.charCodeAt(payloadEnd) !== 46) return -1;
  const end = readWhile(text, payloadEnd + 1, isBase64Url);
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

function recognizePrivateKey(text: string, start: number, sink: FindingSink): number {
  // "-----BEGIN [RSA |EC |OPENSSH |ENCRYPTED |DSA |PGP ]PRIVATE KEY[ BLOCK]-----"
  let i = start + BEGIN.length;
  const labelLimit = Math.min(text.length, i + 40);
  while (i < labelLimit && ((text.charCodeAt(i) >= 65 && text.charCodeAt(i) <= 90) || text.charCodeAt(i) === 32)) i++;
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
    const limit = Math.min(text.length, headerEnd + MAX_KEY_BLOCK);
    while (end < limit) {
      const c = text.charCodeAt(end);
      if (isAlnum(c) || c === 43 || c === 47 || c === 61 || c === 10 || c === 13 || c === 92 || c === 32) end++;
      else break;
    }
    while (end > headerEnd && (text.charCodeAt(end - 1) === 10 || text.charCodeAt(end - 1) === 13 || text.charCodeAt(end - 1) === 32)) end--;
  }
  return sink.emit('PRIVATE_KEY', start, end, 1) ? end : -1;
}
