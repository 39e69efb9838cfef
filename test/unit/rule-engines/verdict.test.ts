import { describe, expect, it } from 'vitest';
import { validateModifiedPayload } from '../../../schema/rules/engines/index.js';
import { collectStringLeaves, parseWebhookVerdict, replaceStringLeaves } from '../../../schema/rules/engines/verdict.js';
import type { JsonValue } from '../../../schema/snapshot/types.js';

const args = { path: '/etc/hosts', options: { recursive: true, depth: 2 }, tags: ['a', 'b'] };
const MiB = 1024 * 1024;

describe('validateModifiedPayload', () => {
  it('accepts a payload of the same shape with changed scalars and dropped or added keys', () => {
    expect(validateModifiedPayload(args, { ...args, path: '[REDACTED]' })).toEqual({ ok: true });
    expect(validateModifiedPayload(args, { path: '/tmp', options: { recursive: false }, tags: [], extra: 1 })).toEqual({ ok: true });
    expect(validateModifiedPayload('text', 'other text')).toEqual({ ok: true });
  });

  it('refuses a different kind at the top', () => {
    expect(validateModifiedPayload(args, 'ok')).toEqual({ ok: false, reason: 'modify changed the payload from an object to a string' });
    expect(validateModifiedPayload(args, [args])).toMatchObject({ ok: false, reason: expect.stringContaining('to an array') });
    expect(validateModifiedPayload(args, null)).toMatchObject({ ok: false });
    expect(validateModifiedPayload([1], { 0: 1 })).toMatchObject({ ok: false });
  });

  it('refuses an object or array of the input that became something else', () => {
    expect(validateModifiedPayload(args, { ...args, options: 'none' })).toEqual({
      ok: false,
      reason: 'modify turned payload.options from an object into a string',
    });
    expect(validateModifiedPayload(args, { ...args, tags: { 0: 'a' } })).toMatchObject({ ok: false, reason: expect.stringContaining('payload.tags') });
    const result = { content: [{ type: 'text', text: 'hi' }] };
    expect(validateModifiedPayload(result, { content: ['hi'] })).toMatchObject({ ok: false, reason: expect.stringContaining('payload.content[0]') });
  });

  it('refuses non-JSON values, deep nesting and oversize payloads', () => {
    expect(validateModifiedPayload(args, { ...args, path: undefined })).toMatchObject({ ok: false, reason: expect.stringContaining('not a JSON value') });
    expect(validateModifiedPayload(args, { ...args, n: Number.NaN })).toMatchObject({ ok: false });
    let deep: unknown = {};
    for (let i = 0; i < 100_000; i++) deep = { d: deep };
    expect(validateModifiedPayload(args, deep)).toMatchObject({ ok: false, reason: expect.stringContaining('deeper than 256') });
    expect(validateModifiedPayload({ s: '' }, { s: 'x'.repeat(17 * MiB) })).toMatchObject({ ok: false, reason: expect.stringContaining('16777216-byte limit') });
    expect(validateModifiedPayload({ s: '' }, { s: 'x'.repeat(2000) }, { maxBytes: 1000 })).toMatchObject({ ok: false });
  });
});

describe('parseWebhookVerdict', () => {
  const parse = (answer: unknown, original: JsonValue = args) => parseWebhookVerdict(answer, original, 'acme', 16 * MiB);

  it('reads the four verdicts', () => {
    expect(parse({ verdict: 'pass', extra: true })).toEqual({ verdict: 'pass' });
    expect(parse({ verdict: 'block', reason: 'secrets in path' })).toEqual({ verdict: 'block', reason: 'secrets in path' });
    expect(parse({ verdict: 'block' })).toEqual({ verdict: 'block', reason: 'blocked by rule engine "acme"' });
    expect(parse({ verdict: 'modify', payload: { ...args, path: '/tmp' } })).toEqual({ verdict: 'modify', payload: { ...args, path: '/tmp' } });
    expect(parse({ verdict: 'error', reason: 'model overloaded' })).toEqual({
      verdict: 'error',
      code: 'ENGINE_ERROR',
      reason: 'rule engine "acme" reported an error: model overloaded',
    });
  });

  it('turns unknown or malformed answers into error verdicts with a clear reason', () => {
    expect(parse({ verdict: 'allow' })).toMatchObject({ verdict: 'error', code: 'INVALID_RESPONSE', reason: expect.stringContaining('unknown verdict "allow"') });
    expect(parse({ result: 'pass' })).toMatchObject({ code: 'INVALID_RESPONSE', reason: expect.stringContaining('without a "verdict"') });
    expect(parse(['pass'])).toMatchObject({ code: 'INVALID_RESPONSE' });
    expect(parse({ verdict: 'modify' })).toMatchObject({ code: 'INVALID_RESPONSE', reason: expect.stringContaining('without a payload') });
    expect(parse({ verdict: 'modify', payload: 'flat' })).toMatchObject({ code: 'INVALID_MODIFY' });
  });

  it('clips long reasons and strips control characters', () => {
    const verdict = parse({ verdict: 'block', reason: `a\u0000b\u001b[31m${'x'.repeat(5000)}` });
    expect(verdict.verdict).toBe('block');
    const reason = (verdict as { reason: string }).reason;
    expect(reason.length).toBe(1024);
    expect(reason.startsWith('a b [31m')).toBe(true);
  });
});

describe('string leaves', () => {
  const content: JsonValue[] = [{ type: 'text', text: 'call me at 555' }, { type: 'image', data: 'AAAA' }];
  const result: { [key: string]: JsonValue } = { content, isError: false, note: '  ' };

  it('lists non-blank string values in document order with their paths', () => {
    expect(collectStringLeaves(result)).toEqual([
      { path: ['content', 0, 'type'], text: 'text' },
      { path: ['content', 0, 'text'], text: 'call me at 555' },
      { path: ['content', 1, 'type'], text: 'image' },
      { path: ['content', 1, 'data'], text: 'AAAA' },
    ]);
    expect(collectStringLeaves('top')).toEqual([{ path: [], text: 'top' }]);
  });

  it('replaces strings in a copy, leaving the original alone', () => {
    const replaced = replaceStringLeaves(result, [{ path: ['content', 0, 'text'], text: 'call me at {PHONE}' }]);
    expect(replaced).toEqual({ ...result, content: [{ type: 'text', text: 'call me at {PHONE}' }, content[1]] });
    expect(content[0]).toEqual({ type: 'text', text: 'call me at 555' });
    expect(replaceStringLeaves('top', [{ path: [], text: 'new' }])).toBe('new');
  });
});
