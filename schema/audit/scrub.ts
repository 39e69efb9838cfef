/**
 * Secret hygiene for audit records (and anything else that stores or forwards traffic):
 * values under secret-looking keys are replaced with {@link SCRUBBED} in JSON payloads
 * (objects and arrays walked to any depth) and header maps, and body text is cut at a
 * byte limit. Build a {@link Scrubber} once (it compiles the key list) and reuse it.
 *
 * Matching is by key name, never by value: a name matches when, lowercased and with `-`
 * and `_` removed, it equals a listed key or ends with one (`access_token`, `X-Auth-Token`,
 * `dbPassword`, `Proxy-Authorization`, `clientSecret` all match). Values found elsewhere
 * (a token pasted into free text) are the content rules' business, not this module's.
 *
 * JSON text is parsed and walked only when it could hold such a key: a test compiled from
 * the key list ({@link secretKeyPrecheck}) looks at the raw text first, and text that
 * cannot hold one is kept as it is (cut at the limit).
 */

/** What a scrubbed value is replaced with. */
export const SCRUBBED = '[SCRUBBED]';

/** What replaces a value nested deeper than {@link MAX_SCRUB_DEPTH}. */
export const DEPTH_LIMITED = '[DEPTH LIMIT]';

/** Objects and arrays nested deeper than this are replaced rather than walked. */
export const MAX_SCRUB_DEPTH = 64;

/** The default secret key names (matched case-insensitively, ignoring `-` and `_`, also as suffixes). */
export const DEFAULT_SECRET_KEYS: readonly string[] = Object.freeze([
  'authorization',
  'password',
  'passwd',
  'token',
  'secret',
  'api_key',
  'apikey',
  'cookie',
  'set-cookie',
  'x-api-key',
  'private_key',
  'client_secret',
  'credential',
  'credentials',
]);

export interface ScrubberOptions {
  /** Key names whose values are secret. Default {@link DEFAULT_SECRET_KEYS}. */
  readonly keys?: readonly string[];
  /** Extra names added to the list (keeps the defaults). */
  readonly extraKeys?: readonly string[];
}

/** A cut body: `truncated` says whether anything was cut. */
export interface CappedText {
  readonly text: string;
  readonly truncated: boolean;
}

export interface Scrubber {
  /** True when a key of this name holds a secret. */
  isSecretKey(name: string): boolean;
  /**
   * The value with every secret replaced. Copy on write: objects and arrays with nothing
   * to scrub are returned as they are (the input is never modified).
   */
  value<T>(input: T): T;
  /** Header map → lowercase names, string values (arrays joined with `, `), secrets replaced. */
  headers(input: { readonly [name: string]: string | readonly string[] | number | undefined }): { [name: string]: string };
  /**
   * JSON text → scrubbed JSON text, cut at `maxBytes` (UTF-8). Text that is not JSON is
   * kept as it is (only cut): it has no keys to go by.
   */
  jsonText(text: string, maxBytes?: number): CappedText;
  /** A value → scrubbed JSON text cut at `maxBytes`; `undefined` becomes `null`. */
  toJsonText(input: unknown, maxBytes?: number): CappedText;
}

const normalize = (name: string) => name.toLowerCase().replace(/[-_]/g, '');

/**
 * Characters of a normalized name that JSON text may write only as an escape, or as `\/`,
 * and Greek sigma (whose lowercase depends on its neighbours): a list naming one gets no
 * pre-check.
 */
const NOT_PRECHECKABLE = /["\\/\u0000-\u001f\u03c2\u03c3]/;

/**
 * A test on raw JSON text, compiled once from the key list, that is true whenever the text
 * may hold an object key `isSecretKey` accepts (and sometimes when it does not: a string
 * value saying "password" only costs a parse), or undefined when the list cannot have one.
 *
 * Why it misses no secret key: a key is secret when `normalize(key)` (lowercased, `-` and
 * `_` dropped) ends with a listed name. Unless the text holds a `\u` escape (then the test
 * says yes), the characters that normalize to that name stand in the text as they are:
 * they are letters, digits and the like, which JSON writes raw (other escapes stand for
 * `"`, `\`, `/` and control characters, which no checked name holds), with only `-`/`_`
 * between them. Lowercasing works per character (Greek sigma aside, excluded above), so
 * `normalize(text)` holds the name too, and the test looks for each listed name in it (the
 * shortest suffice: a name containing another is found through it).
 */
export function secretKeyPrecheck(keys: readonly string[]): ((text: string) => boolean) | undefined {
  const names = [...new Set(keys.map(normalize))].sort((a, b) => a.length - b.length);
  if (names.length === 0 || names.some((name) => NOT_PRECHECKABLE.test(name))) return undefined;
  const kept = names.filter((name, i) => !names.slice(0, i).some((shorter) => name.includes(shorter)));
  const listed = new RegExp(kept.map((name) => name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'));
  return (text) => {
    if (text.includes('\\u')) return true;
    let normalized = text.toLowerCase();
    if (normalized.includes('-')) normalized = normalized.replaceAll('-', '');
    if (normalized.includes('_')) normalized = normalized.replaceAll('_', '');
    return listed.test(normalized);
  };
}

/** Builds a scrubber for a key list (normalized and indexed once). */
export function createScrubber(options: ScrubberOptions = {}): Scrubber {
  const listed = [...(options.keys ?? DEFAULT_SECRET_KEYS), ...(options.extraKeys ?? [])];
  for (const key of listed) {
    if (typeof key !== 'string' || normalize(key) === '') throw new TypeError(`scrubber option "keys" must list non-empty names, got ${JSON.stringify(key)}`);
  }
  const exact = new Set(listed.map(normalize));
  const suffixes = [...exact];
  const mayHoldSecret = secretKeyPrecheck(listed);
  // Names seen before, secret or not: a workload repeats the same few keys endlessly.
  const cache = new Map<string, boolean>();

  function isSecretKey(name: string): boolean {
    let known = cache.get(name);
    if (known !== undefined) return known;
    const normalized = normalize(name);
    known = exact.has(normalized) || suffixes.some((suffix) => normalized.endsWith(suffix));
    if (cache.size < 10_000) cache.set(name, known);
    return known;
  }

  function walk(input: unknown, depth: number): unknown {
    if (typeof input !== 'object' || input === null) return input;
    if (depth >= MAX_SCRUB_DEPTH) return DEPTH_LIMITED;
    if (Array.isArray(input)) {
      let copy: unknown[] | undefined;
      for (let i = 0; i < input.length; i++) {
        const item = input[i];
        const next = walk(item, depth + 1);
        if (next !== item) {
          copy ??= input.slice();
          copy[i] = next;
        }
      }
      return copy ?? input;
    }
    let copy: Record<string, unknown> | undefined;
    const record = input as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      const item = record[key];
      const next = isSecretKey(key) && item !== null && item !== undefined && item !== '' ? SCRUBBED : walk(item, depth + 1);
      if (next !== item) {
        copy ??= { ...record };
        copy[key] = next;
      }
    }
    return copy ?? input;
  }

  return {
    isSecretKey,
    value: <T>(input: T) => walk(input, 0) as T,
    headers(input) {
      const out: { [name: string]: string } = {};
      for (const [name, raw] of Object.entries(input)) {
        if (raw === undefined) continue;
        const lower = name.toLowerCase();
        out[lower] = isSecretKey(lower) ? SCRUBBED : Array.isArray(raw) ? raw.join(', ') : String(raw);
      }
      return out;
    },
    jsonText(text, maxBytes) {
      if (mayHoldSecret && !mayHoldSecret(text)) return capText(text, maxBytes);
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        return capText(text, maxBytes);
      }
      const scrubbed = walk(parsed, 0);
      return capText(scrubbed === parsed ? text : JSON.stringify(scrubbed), maxBytes);
    },
    toJsonText(input, maxBytes) {
      // No pre-check here: walking a value costs less than testing its serialized text.
      return capText(JSON.stringify(walk(input, 0)) ?? 'null', maxBytes);
    },
  };
}

/**
 * Cuts `text` to at most `maxBytes` UTF-8 bytes, never inside a character. No limit
 * (`undefined`) keeps it whole.
 */
export function capText(text: string, maxBytes?: number): CappedText {
  // A UTF-16 unit is at most 3 UTF-8 bytes, so short text needs no counting.
  if (maxBytes === undefined || text.length * 3 <= maxBytes) return { text, truncated: false };
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes <= maxBytes) return { text, truncated: false };
  let cut = Buffer.from(text, 'utf8').subarray(0, Math.max(0, maxBytes)).toString('utf8');
  // A character split at the limit decodes as U+FFFD: drop it.
  if (cut.endsWith('\uFFFD')) cut = cut.slice(0, -1);
  return { text: cut, truncated: true };
}

let defaultScrubber: Scrubber | undefined;

/** The scrubber with {@link DEFAULT_SECRET_KEYS}, built on first use. */
export function defaultSecretScrubber(): Scrubber {
  defaultScrubber ??= createScrubber();
  return defaultScrubber;
}
