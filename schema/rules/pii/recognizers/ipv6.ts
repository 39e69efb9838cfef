import { ipv6Groups, isHexCode, isWordCode } from '../validators.js';
import type { FindingSink, Recognizer } from './sink.js';

const MAX_TEXT_FORM = 45;

function isIpv6Code(c: number): boolean {
  return c === 58 || isHexCode(c);
}

/**
 * IPv6 addresses in every RFC 4291 text form (full, `::`-compressed, IPv4-embedded). The
 * trigger `/:[0-9A-Fa-f:]/g` is two characters; the token is then delimited by hand (at
 * most 45 characters either way) and parsed by `ipv6Groups`.
 */
export function createIpv6Recognizer(): Recognizer {
  const trigger = /:[0-9A-Fa-f:]/g;
  return function scanIpv6(text: string, sink: FindingSink): void {
    trigger.lastIndex = 0;
    while (trigger.test(text)) {
      const colon = trigger.lastIndex - 2;
      let start = colon;
      while (start > 0 && colon - start < MAX_TEXT_FORM && isIpv6Code(text.charCodeAt(start - 1))) start--;
      let end = colon;
      while (end < text.length && end - colon < MAX_TEXT_FORM && (isIpv6Code(text.charCodeAt(end)) || text.charCodeAt(end) === 46)) end++;
      // Always move past this colon pair, or a run of colons would be found forever.
      trigger.lastIndex = Math.max(end, colon + 2);
      if (end - start > MAX_TEXT_FORM) continue;
      while (end > start && text.charCodeAt(end - 1) === 46) end--;
      const before = start > 0 ? text.charCodeAt(start - 1) : 32;
      if (isWordCode(before) || before === 46) continue;
      if (end < text.length && isWordCode(text.charCodeAt(end))) continue;
      const groups = ipv6Groups(text, start, end);
      if (groups === 0) continue;
      const full = groups === 8;
      sink.emit('IP_ADDRESS', start, end, full ? 0.7 : groups >= 3 ? 0.6 : 0.45);
    }
  };
}
