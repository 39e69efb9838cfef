import type { FindingSink, Recognizer } from './sink.js';

/** Image and code file extensions that follow `@` in names like `icon@2x.png`, not TLDs. */
const FILE_EXTENSIONS = new Set([
  'png', 'jpg', 'jpeg', 'gif', 'svg', 'webp', 'ico', 'bmp', 'js', 'mjs', 'cjs', 'ts', 'tsx', 'jsx',
  'json', 'css', 'scss', 'html', 'md', 'txt', 'yml', 'yaml', 'toml', 'lock', 'py', 'rb', 'go', 'rs',
  'java', 'map', 'pdf', 'zip', 'gz', 'tgz', 'log', 'xml', 'csv', 'sh', 'exe', 'dll', 'so', 'wasm',
]);

const MAX_LOCAL = 64;
const MAX_DOMAIN = 253;

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
 * Triggered by `indexOf('@')`, then grown left and right by hand, each bounded by the RFC
 * length limits, so the work is linear in the text.
 */
export function createEmailRecognizer(): Recognizer {
  return function scanEmails(text: string, sink: FindingSink): void {
    let at = text.indexOf('@');
    while (at !== -1) {
      let next = at + 1;
      let start = at;
      while (start > 0 && at - start < MAX_LOCAL && isLocalCode(text.charCodeAt(start - 1))) start--;
      while (start < at && text.charCodeAt(start) === 46) start++;
      let end = at + 1;
      while (end < text.length && end - at <= MAX_DOMAIN && isDomainCode(text.charCodeAt(end))) end++;
      while (end > at + 1 && (text.charCodeAt(end - 1) === 46 || text.charCodeAt(end - 1) === 45)) end--;
      if (start < at && text.charCodeAt(at - 1) !== 46 && validDomain(text, at + 1, end)) {
        const before = start > 0 ? text.charCodeAt(start - 1) : 32;
        // `user:pass@host` in URLs and `a@b@c` are not addresses.
        const credentials = before === 58 && !(start >= 7 && text.startsWith('mailto', start - 7));
        if (before !== 64 && !credentials) sink.emit('EMAIL_ADDRESS', start, end, 0.9);
        next = end;
      }
      at = text.indexOf('@', next);
    }
  };
}

function validDomain(text: string, start: number, end: number): boolean {
  let labels = 0;
  let labelStart = start;
  for (let i = start; i <= end; i++) {
    const c = i === end ? 46 : text.charCodeAt(i);
    if (c !== 46) continue;
    const len = i - labelStart;
    if (len === 0 || len > 63) return false;
    if (text.charCodeAt(labelStart) === 45 || text.charCodeAt(i - 1) === 45) return false;
    labels++;
    if (i === end) {
      if (len < 2) return false;
      for (let k = labelStart; k < i; k++) {
        const l = text.charCodeAt(k) | 0x20;
        if (l < 97 || l > 122) return false;
      }
      if (len <= 4 && FILE_EXTENSIONS.has(text.slice(labelStart, i).toLowerCase())) return false;
    }
    labelStart = i + 1;
  }
  return labels >= 2;
}
