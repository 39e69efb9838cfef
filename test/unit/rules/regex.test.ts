import { describe, expect, it } from 'vitest';
import { MAX_PATTERN_LENGTH, PatternError, checkPattern, compilePattern } from '../../../schema/rules/regex.js';

function refusal(pattern: string): PatternError {
  try {
    compilePattern(pattern, true);
  } catch (err) {
    expect(err).toBeInstanceOf(PatternError);
    return err as PatternError;
  }
  throw new Error(`${pattern} compiled`);
}

describe('compilePattern', () => {
  it('compiles global, Unicode, optionally case-insensitive RE2 patterns with UTF-16 offsets', () => {
    const re = compilePattern('é+', true);
    expect(re.global).toBe(true);
    const text = '😀 ÉÉ x é';
    const found: [number, string][] = [];
    for (let m = re.exec(text); m; m = re.exec(text)) found.push([m.index, m[0]]);
    expect(found).toEqual([
      [3, 'ÉÉ'],
      [8, 'é'],
    ]);
    expect(compilePattern('abc', false).test('ABC')).toBe(false);
  });

  it('refuses empty, overlong and unsupported patterns with the pattern and the reason', () => {
    expect(refusal('')).toMatchObject({ code: 'EMPTY', pattern: '' });
    expect(refusal('a'.repeat(MAX_PATTERN_LENGTH + 1)).code).toBe('TOO_LONG');
    const lookahead = refusal('foo(?=bar)');
    expect(lookahead).toMatchObject({ code: 'UNSUPPORTED', pattern: 'foo(?=bar)' });
    expect(lookahead.message).toContain('"foo(?=bar)"');
    expect(lookahead.reason).toContain('lookahead');
    expect(refusal('(?<!x)y').reason).toContain('lookbehind');
    expect(refusal('(a)\\1').reason).toContain('backreferences');
    expect(refusal('(?>a+)').reason).toContain('atomic');
    expect(refusal('a++').reason).toContain('possessive');
    expect(refusal('[z-a]').reason).toMatch(/range/i);
    expect(checkPattern('\\d{3}-\\d{2}-\\d{4}')).toBeUndefined();
    expect(checkPattern('(')).toContain('missing )');
  });

  it('runs a pattern that backtracks catastrophically in V8 in linear time', () => {
    const re = compilePattern('^(a+)+$', false);
    const input = `${'a'.repeat(1 << 20)}!`;
    const started = performance.now();
    expect(re.test(input)).toBe(false);
    expect(performance.now() - started).toBeLessThan(200);
  });
});
