/**
 * A resource URI as content rules read and rewrite it (the `resourceUris` part, see
 * `parts.ts`): scanned percent-decoded, so an escape cannot hide what a rule looks for
 * (`pay%72oll` is `payroll`), and written back as a URI after a rewrite.
 */

/** A URI with its percent-escapes decoded, and where each UTF-16 unit of `text` starts in the raw URI (plus the raw length at the end). */
export interface DecodedUri {
  readonly text: string;
  readonly rawIndex: readonly number[];
}

const HEX = /^[0-9A-Fa-f]{2}$/;

/** `raw` with every escaped UTF-8 character decoded; escapes that are not UTF-8 (`%FF`, a cut sequence, `%zz`) stay as written. */
export function decodeUri(raw: string): DecodedUri {
  if (!raw.includes('%')) return { text: raw, rawIndex: Array.from({ length: raw.length + 1 }, (_, i) => i) };
  let text = '';
  const rawIndex: number[] = [];
  let i = 0;
  while (i < raw.length) {
    if (raw[i] === '%' && HEX.test(raw.slice(i + 1, i + 3))) {
      // One UTF-8 sequence: its lead byte says how many escapes it takes.
      const lead = parseInt(raw.slice(i + 1, i + 3), 16);
      const length = lead < 0x80 ? 1 : lead >= 0xc2 && lead < 0xe0 ? 2 : lead >= 0xe0 && lead < 0xf0 ? 3 : lead >= 0xf0 && lead < 0xf5 ? 4 : 0;
      const escapes = raw.slice(i, i + 3 * length);
      let char: string | undefined;
      if (length > 0 && /^(?:%[0-9A-Fa-f]{2})+$/.test(escapes) && escapes.length === 3 * length) {
        try {
          char = decodeURIComponent(escapes);
        } catch {
          char = undefined; // not UTF-8: kept as written
        }
      }
      if (char !== undefined) {
        for (let k = 0; k < char.length; k++) rawIndex.push(i);
        text += char;
        i += escapes.length;
        continue;
      }
    }
    rawIndex.push(i);
    text += raw[i];
    i++;
  }
  rawIndex.push(raw.length);
  return { text, rawIndex };
}

/**
 * The URI to send for a rewritten text: `raw` keeps its original bytes before the first and
 * after the last character that differs between `before.text` and `after` (escapes stay
 * escapes, so the structure there cannot change), and the text between is written with
 * every character outside RFC 3986's unreserved, sub-delims and `:@/?` percent-encoded as
 * UTF-8 (`[REDACTED:US_SSN]` → `%5BREDACTED:US_SSN%5D`; `%` itself → `%25`).
 */
export function reencodeUri(raw: string, before: DecodedUri, after: string): string {
  const old = before.text;
  const max = Math.min(old.length, after.length);
  let head = 0;
  while (head < max && old.charCodeAt(head) === after.charCodeAt(head)) head++;
  let tail = 0;
  while (tail < max - head && old.charCodeAt(old.length - 1 - tail) === after.charCodeAt(after.length - 1 - tail)) tail++;
  // Never split a character (a surrogate pair, or the units of one decoded escape).
  while (head > 0 && before.rawIndex[head] === before.rawIndex[head - 1]) head--;
  while (head > 0 && isHighSurrogate(after.charCodeAt(head - 1))) head--;
  while (tail > 0 && before.rawIndex[old.length - tail] === before.rawIndex[old.length - tail - 1]) tail--;
  while (tail > 0 && isLowSurrogate(after.charCodeAt(after.length - tail))) tail--;
  const middle = after.slice(head, after.length - tail).replace(/[^A-Za-z0-9\-._~!$&'()*+,;=:@/?]+/g, (run) =>
    Array.from(UTF8.encode(run), (byte) => `%${byte.toString(16).toUpperCase().padStart(2, '0')}`).join(''),
  );
  return raw.slice(0, before.rawIndex[head]) + middle + raw.slice(before.rawIndex[old.length - tail]);
}

const UTF8 = new TextEncoder();
const isHighSurrogate = (unit: number): boolean => unit >= 0xd800 && unit <= 0xdbff;
const isLowSurrogate = (unit: number): boolean => unit >= 0xdc00 && unit <= 0xdfff;
