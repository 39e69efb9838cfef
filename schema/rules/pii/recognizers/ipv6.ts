import { ipv6GroupsAt, isHexCode, isWordCode } from '../validators.js';
import type { FindingSink, Recognizer } from './sink.js';
import { triggeredRecognizer } from './triggered.js';

const MAX_TEXT_FORM = 45;

function isIpv6Code(c: number): boolean {
  return c === 58 || isHexCode(c);
}

/**
 * IPv6 addresses in every RFC 4291 text form (full, `::`-compressed, IPv4-embedded). The
 * trigger is a colon followed by a hex digit or a colon; the token is then delimited by
 * hand (at most 45 characters either way) and parsed by `ipv6GroupsAt`.
 */
export function createIpv6Recognizer(): Recognizer {
  let codes: Uint8Array = new Uint8Array(0);
  let length = 0;
  let sink: FindingSink;
  /** Where the next trigger may start (the former RegExp's `lastIndex`). */
  let next = 0;
  function at(afterColon: number): void {
    const colon = afterColon - 1;
    if (colon < next) return;
    let start = colon;
    while (start > 0 && colon - start < MAX_TEXT_FORM && isIpv6Code(codes[start - 1]!)) start--;
    let end = colon;
    while (end < length && end - colon < MAX_TEXT_FORM && (isIpv6Code(codes[end]!) || codes[end] === 46)) end++;
    // Always move past this colon pair, or a run of colons would be found forever.
    next = Math.max(end, colon + 2);
    if (end - start > MAX_TEXT_FORM) return;
    while (end > start && codes[end - 1] === 46) end--;
    const before = start > 0 ? codes[start - 1]! : 32;
    if (isWordCode(before) || before === 46) return;
    if (end < length && isWordCode(codes[end]!)) return;
    const groups = ipv6GroupsAt(codes, start, end);
    if (groups === 0) return;
    const full = groups === 8;
    sink!.emit('IP_ADDRESS', start, end, full ? 0.7 : groups >= 3 ? 0.6 : 0.45);
  }

  return triggeredRecognizer({
    types: ['IP_ADDRESS'],
    trigger: (before, c) => before === 58 && isIpv6Code(c),
    // Every trigger moves the resume position past its token, so none may be skipped.
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
