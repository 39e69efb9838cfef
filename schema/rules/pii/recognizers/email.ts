import type { FindingSink, Recognizer } from './sink.js';
import { triggeredRecognizer } from './triggered.js';

/** Image and code file extensions that follow `@` in names like `icon@2x.png`, not TLDs. */
const FILE_EXTENSIONS = [
  'png', 'jpg', 'jpeg', 'gif', 'svg', 'webp', 'ico', 'bmp', 'js', 'mjs', 'cjs', 'ts', 'tsx', 'jsx',
  'json', 'css', 'scss', 'html', 'md', 'txt', 'yml', 'yaml', 'toml', 'lock', 'py', 'rb', 'go', 'rs',
  'java', 'map', 'pdf', 'zip', 'gz', 'tgz', 'log', 'xml', 'csv', 'sh', 'exe', 'dll', 'so', 'wasm',
];

/** A label of up to four ASCII letters as a number (base 27, case-insensitive), so the extension check does not slice. */
function letterKey(codes: ArrayLike<number>, start: number, end: number): number {
  let key = 0;
  for (let i = start; i < end; i++) key = key * 27 + ((codes[i]! | 0x20) - 96);
  return key;
}

const EXTENSION_KEYS = new Set(FILE_EXTENSIONS.map((ext) => letterKey(Array.from(ext, (ch) => ch.charCodeAt(0)), 0, ext.length)));

const MAX_LOCAL = 64;
const MAX_DOMAIN = 253;
/** `mailto` as bytes. */
const MAILTO = [109, 97, 105, 108, 116, 111];

function isLocalCode(c: number): boolean {
  return (
    (c >= 48 && c <= 57) || ((c | 0x20) >= 97 && (c | 0x20) <= 122) ||
    c === 46 || c === 95 || c === 37 || c === 43 || c === 45
  );
}

function isDomainCode(c: number): boolean {
  return (c >= 48 && c <= 57) || ((c | 0x20) >= 97 && (c | 0x20) <= 122) || c === 46 || c === 45;
}

/**
 * Email addresses (RFC 5321 dot-atom local part, DNS domain with an alphabetic TLD).
 * Triggered by `@`, then grown left and right by hand, each bounded by the RFC length
 * limits, so the work is linear in the text.
 */
export function createEmailRecognizer(): Recognizer {
  let codes: Uint8Array = new Uint8Array(0);
  let length = 0;
  let sink: FindingSink;
  /** Where the next `@` may be: past the domain of the last address, or past the last `@`. */
  let next = 0;
  function at(at: number): void {
    if (at < next) return;
    next = at + 1;
    let start = at;
    while (start > 0 && at - start < MAX_LOCAL && isLocalCode(codes[start - 1]!)) start--;
    while (start < at && codes[start] === 46) start++;
    let end = at + 1;
    while (end < length && end - at <= MAX_DOMAIN && isDomainCode(codes[end]!)) end++;
    while (end > at + 1 && (codes[end - 1] === 46 || codes[end - 1] === 45)) end--;
    if (start < at && codes[at - 1] !== 46 && validDomain(codes, at + 1, end)) {
      const before = start > 0 ? codes[start - 1]! : 32;
      // `user:pass@host` in URLs and `a@b@c` are not addresses.
      const credentials = before === 58 && !(start >= 7 && startsWithMailto(codes, start - 7));
      if (before !== 64 && !credentials) sink!.emit('EMAIL_ADDRESS', start, end, 0.9);
      next = end;
    }
  }

  return triggeredRecognizer({
    types: ['EMAIL_ADDRESS'],
    trigger: (_before, c) => c === 64,
    triggerNext: () => true,
    begin(scanned, n, findings) {
      codes = scanned;
      length = n;
      sink = findings;
      next = 0;
    },
    at,
  });
}

function startsWithMailto(codes: Uint8Array, at: number): boolean {
  for (let k = 0; k < MAILTO.length; k++) if (codes[at + k] !== MAILTO[k]) return false;
  return true;
}

function validDomain(codes: Uint8Array, start: number, end: number): boolean {
  let labels = 0;
  let labelStart = start;
  for (let i = start; i <= end; i++) {
    const c = i === end ? 46 : codes[i]!;
    if (c !== 46) continue;
    const len = i - labelStart;
    if (len === 0 || len > 63) return false;
    if (codes[labelStart] === 45 || codes[i - 1] === 45) return false;
    labels++;
    if (i === end) {
      if (len < 2) return false;
      for (let k = labelStart; k < i; k++) {
        const l = codes[k]! | 0x20;
        if (l < 97 || l > 122) return false;
      }
      if (len <= 4 && EXTENSION_KEYS.has(letterKey(codes, labelStart, i))) return false;
    }
    labelStart = i + 1;
  }
  return labels >= 2;
}
