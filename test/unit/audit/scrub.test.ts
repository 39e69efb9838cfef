import { describe, expect, it } from 'vitest';
import { DEPTH_LIMITED, MAX_SCRUB_DEPTH, SCRUBBED, capText, createScrubber, defaultSecretScrubber } from '../../../schema/audit/scrub.js';

describe('secret scrubbing', () => {
  const scrubber = defaultSecretScrubber();

  it('replaces values under secret keys at any depth, case-insensitively, and leaves the rest', () => {
    const input = {
      query: 'weather in Paris',
      Authorization: 'Bearer abc',
      nested: { password: 'hunter2', list: [{ api_key: 'k1' }, { apiKey: 'k2' }, { 'X-API-Key': 'k3' }, 'plain'] },
      client_secret: { anything: 'even objects' },
      refresh_token: 'r',
      accessToken: 'a',
      DB_PASSWORD: 'p',
      cookie: 'c',
      'Set-Cookie': ['s=1'],
      private_key: '-----BEGIN',
      tokens_used: 42,
      description: 'a password is not a key here',
    };
    expect(scrubber.value(input)).toEqual({
      query: 'weather in Paris',
      Authorization: SCRUBBED,
      nested: { password: SCRUBBED, list: [{ api_key: SCRUBBED }, { apiKey: SCRUBBED }, { 'X-API-Key': SCRUBBED }, 'plain'] },
      client_secret: SCRUBBED,
      refresh_token: SCRUBBED,
      accessToken: SCRUBBED,
      DB_PASSWORD: SCRUBBED,
      cookie: SCRUBBED,
      'Set-Cookie': SCRUBBED,
      private_key: SCRUBBED,
      tokens_used: 42,
      description: 'a password is not a key here',
    });
    // The input is untouched.
    expect(input.nested.password).toBe('hunter2');
  });

  it('copies on write: what has no secret is returned as it is', () => {
    const clean = { a: [1, { b: 'c' }], d: { e: null } };
    expect(scrubber.value(clean)).toBe(clean);
    const mixed = { keep: { x: 1 }, password: 'p' };
    const out = scrubber.value(mixed);
    expect(out).not.toBe(mixed);
    expect(out.keep).toBe(mixed.keep);
  });

  it('keeps empty and null secret values (nothing to hide) and scrubs header maps', () => {
    expect(scrubber.value({ token: null, password: '' })).toEqual({ token: null, password: '' });
    expect(scrubber.headers({ Authorization: 'Bearer x', 'Content-Type': 'application/json', 'X-Forwarded-For': ['1.2.3.4', '5.6.7.8'], Cookie: 'a=b', skipped: undefined })).toEqual({
      authorization: SCRUBBED,
      'content-type': 'application/json',
      'x-forwarded-for': '1.2.3.4, 5.6.7.8',
      cookie: SCRUBBED,
    });
  });

  it('takes a configurable key list', () => {
    const custom = createScrubber({ keys: ['ssn'] });
    expect(custom.value({ ssn: '123', password: 'kept' })).toEqual({ ssn: SCRUBBED, password: 'kept' });
    const extra = createScrubber({ extraKeys: ['mcp-session-id'] });
    expect(extra.headers({ 'mcp-session-id': 'v1.x.y', authorization: 'z' })).toEqual({ 'mcp-session-id': SCRUBBED, authorization: SCRUBBED });
    expect(() => createScrubber({ keys: ['-'] })).toThrow(/keys/);
  });

  it('scrubs JSON text, keeps non-JSON text as it is, and cuts at a byte limit without splitting characters', () => {
    expect(scrubber.jsonText('{"password":"p","q":1}')).toEqual({ text: `{"password":"${SCRUBBED}","q":1}`, truncated: false });
    const clean = '{ "q" : 1 }';
    expect(scrubber.jsonText(clean).text).toBe(clean);
    expect(scrubber.jsonText('password=hunter2')).toEqual({ text: 'password=hunter2', truncated: false });
    expect(capText('ééé', 5)).toEqual({ text: 'éé', truncated: true });
    expect(capText('abc', 3)).toEqual({ text: 'abc', truncated: false });
    expect(capText('x'.repeat(10))).toEqual({ text: 'x'.repeat(10), truncated: false });
    expect(scrubber.toJsonText({ token: 't', v: 'x'.repeat(100) }, 30)).toEqual({ text: `{"token":"${SCRUBBED}","v":"xxx`.slice(0, 30), truncated: true });
    expect(scrubber.toJsonText(undefined)).toEqual({ text: 'null', truncated: false });
  });

  it('stops at a depth limit instead of overflowing the stack', () => {
    let deep: unknown = { password: 'p' };
    for (let i = 0; i < 10_000; i++) deep = [deep];
    let out = scrubber.value(deep) as unknown;
    for (let i = 0; i < MAX_SCRUB_DEPTH; i++) out = (out as unknown[])[0];
    expect(out).toBe(DEPTH_LIMITED);
  });
});
