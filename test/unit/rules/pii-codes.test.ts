import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CODES_PADDING, unitCodes } from '../../../schema/rules/pii/codes.js';
import { createPiiScanner, type EntityType } from '../../../schema/rules/pii/index.js';
import { utf8View } from '../../../schema/rules/regex.js';

const scanner = createPiiScanner();
const found = (text: string, type?: EntityType) =>
  scanner
    .scan(text)
    .filter((f) => type === undefined || f.entityType === type)
    .map((f) => f.text);

describe('code-unit bytes', () => {
  it('keep ASCII and Latin-1 units, turn every other unit into 0xFF, and pad with zeros', () => {
    const text = 'a1@é\u00ffŁ😀\ud800';
    const codes = unitCodes(text);
    expect(Array.from(codes.subarray(0, text.length))).toEqual([0x61, 0x31, 0x40, 0xe9, 0xff, 0xff, 0xff, 0xff, 0xff]);
    expect(Array.from(codes.subarray(text.length, text.length + CODES_PADDING))).toEqual(new Array(CODES_PADDING).fill(0));
  });
  it('pad a short text with zeros after a longer one used the same buffer', () => {
    unitCodes('x'.repeat(5000));
    const codes = unitCodes('555-12-3456');
    expect(Array.from(codes.subarray(11, 11 + CODES_PADDING))).toEqual(new Array(CODES_PADDING).fill(0));
  });
  it('handle texts larger than the kept scratch buffer, ASCII or not', () => {
    const big = `${'ab '.repeat(2_000_000)}é`;
    const codes = unitCodes(big);
    expect(codes[0]).toBe(0x61);
    expect(codes[big.length - 1]).toBe(0xe9);
    expect(codes[big.length]).toBe(0);
  });
});

describe('scanning text beyond Latin-1', () => {
  // A unit above U+00FF must never read as the ASCII character of its low byte.
  it('does not take U+0131 (low byte "1") for a digit or U+0141 (low byte "A") for a letter', () => {
    expect(found('ssn\u0131536221042', 'US_SSN')).toEqual([]); // "ı" glues to "ssn": no context word
    expect(found('\u0141KIAIOSFODNN7EXAMPLE', 'AWS_ACCESS_KEY')).toEqual([]);
    expect(found('\u0131\u0131@example.com', 'EMAIL_ADDRESS')).toEqual([]);
  });
  it('treats such units as non-word characters next to entities', () => {
    expect(found('\u01304111 1111 1111 1111', 'CREDIT_CARD')).toEqual(['4111 1111 1111 1111']);
    expect(found('😀AKIAIOSFODNN7EXAMPLE😀', 'AWS_ACCESS_KEY')).toEqual(['AKIAIOSFODNN7EXAMPLE']);
  });
  it('matches Latin-1 context words in either case', () => {
    expect(found('téléphone 0612345678', 'PHONE_NUMBER')).toEqual(['0612345678']);
    expect(found('TÉLÉPHONE 0612345678', 'PHONE_NUMBER')).toEqual(['0612345678']);
    expect(found('xtéléphone 0612345678', 'PHONE_NUMBER')).toEqual([]);
  });
});

describe('scanSpans', () => {
  it('reports the spans and types of scan, on every labelled corpus text', () => {
    const file = fileURLToPath(new URL('../../corpus/pii/tuned.jsonl', import.meta.url));
    const texts = readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => (JSON.parse(line) as { text: string }).text);
    const strict = createPiiScanner({ minConfidence: 0.9 });
    for (const s of [scanner, strict]) {
      for (const text of [...texts, texts.join('\n')]) {
        expect(s.scanSpans(text)).toEqual(s.scan(text).map((f) => ({ start: f.start, end: f.end, type: f.entityType })));
      }
    }
  });
});

describe('utf8View', () => {
  it('is the UTF-8 of the text, lone surrogates as U+FFFD, whatever the previous call left', () => {
    for (const text of ['', 'plain', 'é😀\u4e2d', 'a\ud800b', 'x'.repeat(70_000), `${'€'.repeat(30_000)}!`, 'short']) {
      expect(utf8View(text).equals(Buffer.from(text, 'utf8'))).toBe(true);
    }
  });
});
