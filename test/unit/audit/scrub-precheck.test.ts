import { describe, expect, it } from 'vitest';
import { DEFAULT_SECRET_KEYS, capText, createScrubber, secretKeyPrecheck } from '../../../schema/audit/scrub.js';

/** The data plane's list (shipper.ts) and the default one. */
const LISTS: readonly (readonly string[])[] = [DEFAULT_SECRET_KEYS, [...DEFAULT_SECRET_KEYS, 'mcp-session-id'], ['ssn', 'X-Vault-Token', 'pin2']];

/** A seeded generator, so a failure reproduces. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const normalize = (name: string) => name.toLowerCase().replace(/[-_]/g, '');

/** What `jsonText` did before the pre-check: parse, walk, serialize again when something changed. */
function parseAndWalk(scrubber: ReturnType<typeof createScrubber>, text: string, maxBytes?: number): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return capText(text, maxBytes).text;
  }
  const scrubbed = scrubber.value(parsed);
  return capText(scrubbed === parsed ? text : JSON.stringify(scrubbed), maxBytes).text;
}

/** Ways JSON text can carry an object key: compact, pretty-printed, nested, in arrays, with a space before the colon. */
function documents(key: string): string[] {
  const quoted = JSON.stringify(key);
  return [
    JSON.stringify({ [key]: 'v' }),
    JSON.stringify({ params: { arguments: [{ a: 1 }, { [key]: 'v', b: [key] }] } }, null, 2),
    `{ ${quoted} : "v" }`,
    `[{"x":{${quoted}:{"y":1}}}]`,
  ];
}

describe('the secret-key pre-check on raw JSON text', () => {
  it('is true for every document holding a key isSecretKey accepts, however the key is spelled (random spellings)', () => {
    const next = random(20260601);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
    const separators = ['-', '_', '--', '_-_', ''];
    const oddCharacters = ['\u212A', '\u0130', 'ß', 'Σ', 'é', '😀', '"', '\\', '/', '\n', '\u0000', ' ', 'ſ'];
    for (const list of LISTS) {
      const scrubber = createScrubber({ keys: list });
      const precheck = secretKeyPrecheck(list)!;
      expect(precheck).toBeTypeOf('function');
      let secret = 0;
      for (let i = 0; i < 4000; i++) {
        const name = normalize(pick(list));
        let key = '';
        // A prefix of anything, then the name with random case, separators and look-alikes, then trailing separators.
        for (let p = Math.floor(next() * 3); p > 0; p--) key += pick([...oddCharacters, 'x', 'Access', 'db', 'client']);
        for (const c of name) {
          key += next() < 0.3 ? pick(separators) : '';
          const r = next();
          key += r < 0.45 ? c.toUpperCase() : r < 0.5 && c === 'k' ? '\u212A' : r < 0.52 && c === 'i' ? '\u0130' : c;
        }
        key += next() < 0.3 ? pick(separators) : '';
        if (next() < 0.2) key += pick(oddCharacters);
        if (!scrubber.isSecretKey(key)) continue;
        secret++;
        for (const text of documents(key)) expect(precheck(text), `${JSON.stringify(key)} in ${text}`).toBe(true);
      }
      expect(secret).toBeGreaterThan(1000);
    }
  });

  it('misses no secret key with any code point next to or inside a listed name (every code point)', () => {
    const precheck = secretKeyPrecheck(DEFAULT_SECRET_KEYS)!;
    const scrubber = createScrubber();
    let checked = 0;
    for (let cp = 0; cp <= 0x10ffff; cp++) {
      const c = String.fromCodePoint(cp);
      // Before and inside a name: whatever lowercases so that the key still ends with it.
      for (const key of [`${c}Token`, `api${c}KEY`]) {
        if (!scrubber.isSecretKey(key)) continue;
        checked++;
        if (!precheck(JSON.stringify({ [key]: 1 }))) throw new Error(`missed ${JSON.stringify(key)} (U+${cp.toString(16)})`);
      }
    }
    // Every prefix, and `-`/`_` inside the name.
    expect(checked).toBeGreaterThan(0x10ffff);
  }, 120_000);

  it('says yes to any \\u escape, so an escaped key is never missed', () => {
    const precheck = secretKeyPrecheck(DEFAULT_SECRET_KEYS)!;
    expect(precheck('{"p\\u0061ssword":"x"}')).toBe(true);
    expect(precheck('{"api\\u005fkey":"x"}')).toBe(true);
    expect(precheck('{"note":"\\u001b[31mred"}')).toBe(true);
    expect(precheck('{"query":"weather in Paris","limit":3}')).toBe(false);
  });

  it('has no pre-check for names JSON may write escaped (quotes, backslashes, slashes, control characters) or with Greek sigma', () => {
    for (const name of ['a"b', 'a\\b', 'a/b', 'a\nb', 'σ', 'ς']) expect(secretKeyPrecheck(['token', name])).toBeUndefined();
    // Such a scrubber still scrubs: it parses every text.
    const scrubber = createScrubber({ keys: ['a/b'] });
    expect(scrubber.jsonText('{"A/B":"x","c":1}').text).toBe('{"A/B":"[SCRUBBED]","c":1}');
  });

  it('leaves jsonText answering what parsing and walking answered', () => {
    const scrubber = createScrubber({ extraKeys: ['mcp-session-id'] });
    const texts = [
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","arguments":{"query":"x"}}}',
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","arguments":{"Api-Key":"k"},"_meta":{"progressToken":3}}}',
      '{"result":{"content":[{"type":"text","text":"the password is in the vault"}]}}',
      '{ "a" : [ { "Set-Cookie" : "s=1" } ], "b": "\\u0000" }',
      '{"pass\\u0077ord":"hunter2"}',
      'not json, token=abc',
      '{"cut":"' + 'x'.repeat(100) + '"}',
    ];
    for (const text of texts) {
      for (const maxBytes of [undefined, 40]) expect(scrubber.jsonText(text, maxBytes).text, text).toBe(parseAndWalk(scrubber, text, maxBytes));
    }
    // Text that cannot hold a secret key is returned as it is, the very string.
    const clean = '{"query":"weather in Paris","limit":3}';
    expect(scrubber.jsonText(clean).text).toBe(clean);
  });

  it('keeps deep text with no secret key whole, and still cuts deep text that has one at the depth limit', () => {
    const scrubber = createScrubber();
    const deep = `${'['.repeat(100)}{"q":1}${']'.repeat(100)}`;
    expect(scrubber.jsonText(deep).text).toBe(deep);
    const deepSecret = `${'['.repeat(100)}{"password":"p"}${']'.repeat(100)}`;
    expect(scrubber.jsonText(deepSecret).text).toContain('[DEPTH LIMIT]');
    expect(scrubber.jsonText(deepSecret).text).not.toContain('"p"');
  });
});
