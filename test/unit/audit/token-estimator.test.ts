import { countTokens } from 'gpt-tokenizer/encoding/cl100k_base';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildCallEntries } from '../../../data-plane/audit/call-facts.js';
import { Cl100kCounter } from '../../../data-plane/audit/cl100k-counter.js';
import { TOKEN_SAMPLE_CHARS, TokenEstimator } from '../../../data-plane/audit/token-estimator.js';
import { createScrubber } from '../../../schema/audit/scrub.js';
import { fakeCall } from './fake-calls.js';

let counter: Cl100kCounter;
beforeAll(async () => {
  counter = await Cl100kCounter.load();
});

/** Texts of the kinds audit bodies carry, and the corner cases of the split pattern and the merge. */
const CORPUS: readonly string[] = [
  '',
  'a',
  'hello world',
  '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello, governed world"}}}',
  JSON.stringify({ content: [{ type: 'text', text: 'The quick brown fox jumps over the lazy dog.\nSecond line\twith a tab.' }], isError: false }, null, 2),
  "I'm sure they'll say we've done it; THEY'RE here, it's fine, you'd know",
  'Ünïcödé — テスト 日本語のテキスト 😀👍🏽 🇫🇷 Ελληνικά русский עברית العربية',
  '   leading spaces, trailing spaces   \n\n\r\n\r\n  \t\t\n',
  '1234567890 3.14159 -42 1e-7 0x1F 1,000,000',
  'def square(x):\n    return x ** 2  # comment\n\nclass A:\n\tpass\n',
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==',
  'x'.repeat(64),
  'ab'.repeat(3000),
  'SELECT * FROM users WHERE email = \'alice@example.com\' AND id IN (1, 2, 3);',
  '<html><body class="main"><a href="https://example.com/a?b=c&d=e">link</a></body></html>',
  '\u0000\u0001\u001f control \u007f characters \u200b zero width \ufeff',
];

describe('cl100k_base token counts', () => {
  it('are the counts gpt-tokenizer gives, on prose, JSON, code, scripts, emoji and whitespace', () => {
    for (const text of CORPUS) expect(counter.count(text), JSON.stringify(text.slice(0, 40))).toBe(countTokens(text));
  });

  it('are the counts gpt-tokenizer gives on random mixtures of the pieces that split and merge differently', () => {
    const pieces = ['a', 'b', 'e', 'the', 'ing', ' ', '  ', '\n', '\r\n', '\t', '{', '}', '"', ':', ',', '.', '-', '_', '/', '\\', '1', '23', '456', 'ü', 'é', '日本', '😀', "'s", "'LL", 'A', 'Z'];
    let seed = 42;
    const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000;
    for (let n = 0; n < 2000; n++) {
      let text = '';
      for (let i = Math.floor(random() * 80); i > 0; i--) text += pieces[Math.floor(random() * pieces.length)];
      expect(counter.count(text), JSON.stringify(text)).toBe(countTokens(text));
    }
  });

  it('count a long run of one letter (one piece merged thousands of times) as gpt-tokenizer does', () => {
    const run = 'q'.repeat(TOKEN_SAMPLE_CHARS);
    expect(counter.count(run)).toBe(countTokens(run));
  });

  it('count special-token texts as the ordinary text they are, where gpt-tokenizer refuses them', () => {
    const text = 'ignore this <|endoftext|> and <|im_start|>system';
    expect(() => countTokens(text)).toThrow(/special token/);
    expect(counter.count(text)).toBe(countTokens(text, { disallowedSpecial: new Set() }));
    expect(counter.count(text)).toBeGreaterThan(10);
  });

  it('hold the whole vocabulary in a few megabytes of typed arrays', () => {
    expect(counter.size).toBe(100_256);
    expect(counter.byteLength).toBeLessThan(3 * 1024 * 1024);
  });

  it('refuse a vocabulary file that is not tiktoken text', () => {
    expect(() => Cl100kCounter.fromTiktoken('IQ== 0\nnot a line\n')).toThrow(/not a tiktoken vocabulary/);
    expect(() => Cl100kCounter.fromTiktoken('IQ== 0\nIg== 5\n')).toThrow(/not a tiktoken vocabulary/);
    expect(() => Cl100kCounter.fromTiktoken('IQ== 0\nI=g= 1\n')).toThrow(/bad line "I=g= 1"/);
    expect(() => Cl100kCounter.fromTiktoken('IQ== 0\nI*== 1\n')).toThrow(/bad line "I\*== 1"/);
  });
});

describe('the audit token estimator', () => {
  it('estimates nothing before the vocabulary is loaded, then counts', async () => {
    const tokens = new TokenEstimator();
    expect(tokens.estimate('hello world')).toBeNull();
    expect(await tokens.ready()).toBe(true);
    expect(tokens.estimate('hello world')).toBe(2);
    expect(tokens.estimate(undefined)).toBeNull();
  });

  it('scales a sample of a long text by its length', async () => {
    const tokens = new TokenEstimator();
    await tokens.ready();
    const unit = 'The quick brown fox jumps over the lazy dog. ';
    const text = unit.repeat(Math.ceil((4 * TOKEN_SAMPLE_CHARS) / unit.length));
    const estimate = tokens.estimate(text)!;
    const exact = counter.count(text);
    expect(Math.abs(estimate - exact) / exact).toBeLessThan(0.01);
  });

  it('records a call whose arguments carry special-token text, with its token counts', async () => {
    const tokens = new TokenEstimator();
    await tokens.ready();
    const deps = { scrubber: createScrubber({ extraKeys: ['mcp-session-id'] }), tokens };
    const call = fakeCall({ message: 'say <|endoftext|> then <|im_end|>', upstream: { result: { content: [{ type: 'text', text: 'Echo: <|endoftext|>' }] } } });
    const entries = buildCallEntries(call, deps);
    const request = entries.find((entry) => entry.leg === 'client_request')!;
    const response = entries.find((entry) => entry.leg === 'client_response')!;
    expect(request.inputTokens).toBe(counter.count(JSON.stringify({ name: 'web__echo', arguments: { message: 'say <|endoftext|> then <|im_end|>' } })));
    expect(response.outputTokens).toBe(counter.count(JSON.stringify({ content: [{ type: 'text', text: 'Echo: <|endoftext|>' }] })));
  });
});
