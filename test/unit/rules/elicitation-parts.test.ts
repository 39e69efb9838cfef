import { describe, expect, it } from 'vitest';
import { compileRuleSet, evaluateLeg } from '../../../schema/rules/engine/index.js';
import { REDACT, legCall, pii, regex, rule } from './rule-fixtures.js';

/** `elicitation/create` as the rules read it (the relay's glue is tested end to end in rules-e2e/relayed.test.ts). */

/** The response leg a server-to-client elicitation is read on, during a call to a tool. */
const asked = () => legCall('response', 'elicitation/create');

const set = (rules: Parameters<typeof compileRuleSet>[0]) => compileRuleSet(rules, { hashSalt: 'salt', engines: new Map() });
const onRelayed = { parts: ['relayedRequests'] as const };

describe('an elicitation request as the rules read it', () => {
  it('reads the URL of a URL-mode request after its message, and rewrites each in place', async () => {
    const params = { mode: 'url', message: 'Confirm for bob@example.com', url: 'https://sso.example.com/start?user=bob@example.com', elicitationId: 'el-1', _meta: { k: 1 } };
    const out = await evaluateLeg(set([rule(pii(['EMAIL_ADDRESS']), REDACT, onRelayed)]), asked(), params);
    expect(out).toEqual({
      blocked: false,
      message: { ...params, message: 'Confirm for [REDACTED:EMAIL_ADDRESS]', url: 'https://sso.example.com/start?user=[REDACTED:EMAIL_ADDRESS]' },
    });
    // Only the URL matches: the message is left as it was.
    const onlyUrl = await evaluateLeg(set([rule(regex(['start\\?user=\\S+']), { kind: 'replace', text: 'start' }, onRelayed)]), asked(), params);
    expect(onlyUrl).toEqual({ blocked: false, message: { ...params, url: 'https://sso.example.com/start' } });
  });

  it('reads no "url" of a form-mode request: only its message is shown to the person', async () => {
    const params = { message: 'Your name?', url: 'https://evil.example/', requestedSchema: { type: 'object', properties: { name: { type: 'string' } } } };
    const c = asked();
    expect(await evaluateLeg(set([rule(regex(['evil\\.example']), { kind: 'block' }, onRelayed)]), c, params)).toEqual({ blocked: false, message: params });
    expect(c.reports).toEqual([]);
  });
});
