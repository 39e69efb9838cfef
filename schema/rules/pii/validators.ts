import { codesOf } from './codes.js';

/**
 * Checksums and structural rules, hand-written and allocation-free: they take code-unit
 * bytes (`codes.ts`) and a span so callers never slice. The string forms are for tests.
 */

const ZERO = 48;

export function isDigitCode(c: number): boolean {
  return c >= 48 && c <= 57;
}

export function isAlnumCode(c: number): boolean {
  return (c >= 48 && c <= 57) || ((c | 0x20) >= 97 && (c | 0x20) <= 122);
}

/** Word characters for boundaries: ASCII letters, digits and `_`. */
export function isWordCode(c: number): boolean {
  return isAlnumCode(c) || c === 95;
}

/** Luhn (mod 10) over the digits of `digits[0..length)`. */
export function luhnValid(digits: Uint8Array, length: number): boolean {
  let sum = 0;
  let double = false;
  for (let i = length - 1; i >= 0; i--) {
    let d = digits[i]!;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/**
 * Issuer identification number ranges of the card networks we recognize: Visa, Mastercard
 * (51–55, 2221–2720), American Express (34, 37; 15 digits), Discover (6011, 644–649, 65),
 * JCB (3528–3589), Diners Club (300–305, 36, 38, 39), UnionPay (62), Maestro (50, 56–58, 63, 67).
 */
export function knownIin(digits: Uint8Array, length: number): boolean {
  const d1 = digits[0]!;
  const two = d1 * 10 + digits[1]!;
  const four = two * 100 + digits[2]! * 10 + digits[3]!;
  switch (d1) {
    case 4:
      return length === 13 || length === 16 || length === 19;
    case 5:
      if (two >= 51 && two <= 55) return length === 16;
      return two === 50 || (two >= 56 && two <= 58) ? length >= 12 : false;
    case 2:
      return four >= 2221 && four <= 2720 && length === 16;
    case 3:
      if (two === 34 || two === 37) return length === 15;
      if (four >= 3528 && four <= 3589) return length >= 16;
      if ((two === 30 && digits[2]! <= 5) || two === 36 || two === 38 || two === 39) return length >= 14;
      return false;
    case 6:
      if (four === 6011 || two === 65 || (two === 64 && digits[2]! >= 4)) return length >= 16;
      return two === 62 || two === 63 || two === 67 ? length >= 16 : false;
    default:
      return false;
  }
}

/**
 * US SSN rules (SSA, since 2011 randomization): area not 000, 666 or 900–999; group not 00;
 * serial not 0000; and not one of the numbers famously printed in advertising.
 */
export function ssnValid(digits: Uint8Array): boolean {
  const area = digits[0]! * 100 + digits[1]! * 10 + digits[2]!;
  const group = digits[3]! * 10 + digits[4]!;
  const serial = digits[5]! * 1000 + digits[6]! * 100 + digits[7]! * 10 + digits[8]!;
  if (area === 0 || area === 666 || area >= 900) return false;
  if (group === 0 || serial === 0) return false;
  if (area === 78 && group === 5 && serial === 1120) return false;
  if (area === 219 && group === 9 && serial === 9999) return false;
  return true;
}

/** IBAN lengths by ISO 3166 country code (SWIFT IBAN registry). */
export const IBAN_LENGTHS: ReadonlyMap<string, number> = new Map(
  Object.entries({
    AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BI: 27, BR: 29, BY: 28,
    CH: 21, CR: 22, CY: 28, CZ: 24, DE: 22, DJ: 27, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18,
    FK: 18, FO: 18, FR: 27, GB: 22, GE: 22, GI: 23, GL: 18, GR: 27, GT: 28, HR: 21, HU: 28, IE: 22,
    IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20, LU: 20,
    LV: 21, LY: 25, MC: 27, MD: 24, ME: 22, MK: 19, MN: 20, MR: 27, MT: 31, MU: 30, NI: 28, NL: 18,
    NO: 15, OM: 23, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, RU: 33, SA: 24, SC: 31,
    SD: 18, SE: 24, SI: 19, SK: 24, SM: 27, SO: 23, ST: 25, SV: 28, TL: 23, TN: 24, TR: 26, UA: 29,
    VA: 22, VG: 24, XK: 20, YE: 30,
  }),
);

/**
 * ISO 13616 mod-97 check over `chars` (uppercase letters and digits only, no spaces):
 * the first four characters move to the end, letters count as 10..35, remainder must be 1.
 */
export function ibanChecksumValid(chars: Uint8Array, length: number): boolean {
  let remainder = 0;
  for (let k = 0; k < length; k++) {
    const c = chars[(k + 4) % length]!;
    if (c >= ZERO && c <= 57) {
      remainder = (remainder * 10 + (c - ZERO)) % 97;
    } else {
      remainder = (remainder * 100 + (c - 55)) % 97;
    }
  }
  return remainder === 1;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  if (l >= 97 && l <= 102) return l - 87;
  return -1;
}

export function isHexCode(c: number): boolean {
  return hexValue(c) >= 0;
}

/** Dotted-quad IPv4 in `text[start, end)`: four decimal octets 0–255 without leading zeros. */
export function ipv4Valid(text: string, start: number, end: number): boolean {
  return ipv4ValidAt(codesOf(text), start, end);
}

/** {@link ipv4Valid} over code-unit bytes (see `codes.ts`). */
export function ipv4ValidAt(codes: Uint8Array, start: number, end: number): boolean {
  let octets = 0;
  let value = 0;
  let digits = 0;
  let leadingZero = false;
  for (let i = start; i <= end; i++) {
    const c = i === end ? 46 : codes[i]!;
    if (c === 46) {
      if (digits === 0 || value > 255 || (leadingZero && digits > 1)) return false;
      octets++;
      value = 0;
      digits = 0;
      continue;
    }
    if (!isDigitCode(c)) return false;
    if (digits === 0) leadingZero = c === ZERO;
    value = value * 10 + (c - ZERO);
    if (++digits > 3) return false;
  }
  return octets === 4;
}

/**
 * IPv6 text form (RFC 4291 §2.2) in `text[start, end)`: eight groups of 1–4 hex digits, or
 * fewer with exactly one `::`, optionally ending in a dotted IPv4 that counts as two groups.
 * Returns the number of explicit groups (0 when invalid), so callers can grade short forms.
 */
export function ipv6Groups(text: string, start: number, end: number): number {
  return ipv6GroupsAt(codesOf(text), start, end);
}

/** {@link ipv6Groups} over code-unit bytes (see `codes.ts`). */
export function ipv6GroupsAt(codes: Uint8Array, start: number, end: number): number {
  let groups = 0;
  let compressed = false;
  let i = start;
  if (end - start < 2) return 0;
  if (codes[i]! === 58) {
    if (codes[i + 1]! !== 58) return 0;
    compressed = true;
    i += 2;
    if (i === end) return 0;
  }
  while (i < end) {
    let j = i;
    while (j < end && j - i < 5 && isHexCode(codes[j]!)) j++;
    const len = j - i;
    if (len === 0) return 0;
    if (j < end && codes[j]! === 46) {
      // Embedded IPv4 must be last.
      if (!ipv4ValidAt(codes, i, end)) return 0;
      groups += 2;
      i = end;
      break;
    }
    if (len > 4) return 0;
    groups++;
    i = j;
    if (i === end) break;
    if (codes[i]! !== 58) return 0;
    i++;
    if (i < end && codes[i]! === 58) {
      if (compressed) return 0;
      compressed = true;
      i++;
    } else if (i === end) {
      return 0;
    }
  }
  if (compressed ? groups > 7 : groups !== 8) return 0;
  return compressed ? Math.max(groups, 1) : groups;
}

const counts = new Uint16Array(128);

/** Spans up to this long reuse their entropy terms (a row of at most 513 doubles per length seen). */
const MAX_CACHED_SPAN = 512;
/** `TERMS[n][count]`: `p * Math.log2(p)` for `p = count / n`, filled as needed (NaN: not yet). */
const TERMS: Array<Float64Array | undefined> = [];

/**
 * Shannon entropy in bits per character of the ASCII span `text[start, end)`. Counts are
 * summed and cleared by a second walk over the span itself, so the cost is the span's
 * length, not the alphabet's.
 */
export function shannonEntropy(text: string, start: number, end: number): number {
  return shannonEntropyAt(codesOf(text), start, end);
}

/** Distinct units of the span being measured, in order of first occurrence. */
const firstSeen = new Uint8Array(129);

/**
 * {@link shannonEntropy} over code-unit bytes, with one histogram reused by every call.
 * One walk counts the units and lists each distinct one where it first occurs; the sum then
 * runs over that list, so terms add up in the same order as a second walk over the span
 * would take them (the result is the same double) and the histogram is cleared on the way.
 */
export function shannonEntropyAt(codes: Uint8Array, start: number, end: number): number {
  const n = end - start;
  let distinct = 0;
  for (let i = start; i < end; i++) {
    const k = codes[i]! & 127;
    const seen = counts[k]!;
    counts[k] = seen + 1;
    firstSeen[distinct] = k;
    distinct += (seen - 1) >>> 31; // 1 on a first occurrence, without a branch
  }
  let h = 0;
  for (let j = 0; j < distinct; j++) {
    const k = firstSeen[j]!;
    const count = counts[k]!;
    counts[k] = 0;
    h -= entropyTerm(count, n);
  }
  return h;
}

/** `p * Math.log2(p)` for `p = count / n`, computed once per (count, n): the same double, without the log. */
function entropyTerm(count: number, n: number): number {
  if (n > MAX_CACHED_SPAN) {
    const p = count / n;
    return p * Math.log2(p);
  }
  let row = TERMS[n];
  if (row === undefined) {
    row = new Float64Array(n + 1).fill(Number.NaN);
    TERMS[n] = row;
  }
  let term = row[count]!;
  if (Number.isNaN(term)) {
    const p = count / n;
    term = p * Math.log2(p);
    row[count] = term;
  }
  return term;
}
