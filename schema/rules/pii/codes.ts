import { Buffer } from 'node:buffer';

/**
 * The scanned text as one byte per UTF-16 code unit, so recognizers read a `Uint8Array`
 * (2–3× faster in V8 than `charCodeAt`, most of all on sliced or concatenated strings) at
 * the same offsets as the string. Units up to U+00FF keep their value; every unit above
 * (including surrogates) becomes 0xFF, a Latin-1 letter: the recognizers match ASCII only,
 * treat every unit above U+00BF as a letter (context-word boundaries) and compare
 * Latin-1 context words (`téléphone`) exactly, and no word list contains `ÿ`, so the
 * stand-in answers every test as the original unit did.
 *
 * Cost per MiB: ASCII text ≈ 0.1 ms (one `TextEncoder.encodeInto`, which doubles as the
 * ASCII check, and costs less than `Buffer#write` on short texts); other text ≈ 0.5 ms
 * more (a Latin-1 copy, then the runs above U+00FF found by one pattern and filled).
 */

/** Zero bytes after the text: reads a few units past the end see 0, which every test treats as `charCodeAt`'s NaN. */
export const CODES_PADDING = 16;

/** Scratch kept between scans up to this size; larger texts get a buffer of their own. */
const KEEP_SCRATCH = 4 * 1024 * 1024;

const encoder = new TextEncoder();
let scratch = new Uint8Array(64 * 1024);

/** An empty code array, for scanners between scans. */
export const NO_CODES = new Uint8Array(0);

/**
 * `text` as code-unit bytes, followed by at least {@link CODES_PADDING} zeros (the array may
 * be longer than that: read it up to the text's length). The array is a shared scratch
 * buffer, valid until the next call: use it within one synchronous scan.
 */
export function unitCodes(text: string): Uint8Array {
  const n = text.length;
  const size = n + CODES_PADDING;
  let out = scratch;
  if (out.length < size) {
    out = new Uint8Array(Math.max(size, 2 * out.length));
    if (out.length <= KEEP_SCRATCH) scratch = out;
  }
  // ASCII iff every unit was read and written as one byte: any other unit takes two or more.
  const { read, written } = encoder.encodeInto(text, out);
  if (read !== n || written !== n) narrowInto(text, out);
  out.fill(0, n, size);
  return out;
}

/**
 * Runs of units above U+00FF. One of our own fixed patterns, run by V8: a single character
 * class under `+`, so each unit is read once whatever the input (no backtracking).
 */
const ABOVE_LATIN1 = /[^\u0000-\u00ff]+/g;

/**
 * Non-ASCII text: Latin-1 writing keeps the low byte of every unit, then each run of units
 * above U+00FF is set to 0xFF (one `fill` per run: a text in another script is one or a
 * few long runs).
 */
function narrowInto(text: string, out: Uint8Array): void {
  Buffer.from(out.buffer, out.byteOffset, text.length).write(text, 0, 'latin1');
  ABOVE_LATIN1.lastIndex = 0;
  let run: RegExpExecArray | null;
  while ((run = ABOVE_LATIN1.exec(text)) !== null) out.fill(0xff, run.index, ABOVE_LATIN1.lastIndex);
}

/** Code-unit bytes of a short string (tests and validators' string entry points); not for hot paths. */
export function codesOf(text: string): Uint8Array {
  const out = new Uint8Array(text.length + CODES_PADDING);
  for (let i = 0; i < text.length; i++) {
    const u = text.charCodeAt(i);
    out[i] = u < 0x100 ? u : 0xff;
  }
  return out;
}
