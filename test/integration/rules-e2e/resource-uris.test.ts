import { createHash } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { buildCallEntries } from '../../../data-plane/audit/call-facts.js';
import type { AuditedCall } from '../../../data-plane/audit/call-auditor.js';
import { TokenEstimator } from '../../../data-plane/audit/token-estimator.js';
import { createScrubber } from '../../../schema/audit/scrub.js';
import { HASH_SALT, RulesGateway, rulesGatewayPerFile, engineRow, rpcError, startEngine, type EngineServer, type RuleSpec } from './harness.js';

/**
 * The `resourceUris` part: the URI a client asks for (resources/read, subscribe,
 * unsubscribe) and the resource-template variables it types into completion/complete,
 * through a real data plane, the real stdio fixture upstream (whose template
 * `doc://customer/{id}` answers with the URI it was asked for, and whose completions echo
 * the value they received) and the SDK's client.
 */

const { gateway, client: connected } = rulesGatewayPerFile();

const PAYROLL = { kind: 'regex', patterns: ['payroll'], caseInsensitive: true } as const;
const EMAIL = { kind: 'pii', entityTypes: ['EMAIL_ADDRESS'], minConfidence: 0.5, allowList: [] } as const;
const onUris = { hooks: ['request'], parts: ['resourceUris'] } as const;
const sha = (text: string) => `sha256:${createHash('sha256').update(HASH_SALT + text).digest('hex')}`;

function use(specs: RuleSpec[], engines: Parameters<RulesGateway['publish']>[1] = []): void {
  gateway.publish(specs, engines);
  gateway.audit.clear();
}

const read = (uri: string) => connected().readResource({ uri });
/**
 * The URI a read's content carries: the upstream's template answers with the URI it was
 * asked for, which the gateway renames back to the client's URI when no rule rewrote it.
 */
const upstreamUriOf = async (uri: string) => (await read(uri)).contents[0]!.uri;
const completeTemplate = (value: string, context?: Record<string, string>) =>
  connected().complete({ ref: { type: 'ref/resource', uri: 'fx+doc://customer/{id}' }, argument: { name: 'id', value }, ...(context ? { context: { arguments: context } } : {}) });

/** The finished calls of one method (the record is handed over when the response closes). */
async function auditedCalls(method: string, count = 1): Promise<AuditedCall[]> {
  const of = () => gateway.audit.calls.filter((call) => call.request?.method === method);
  for (let i = 0; i < 100 && of().length < count; i++) await new Promise((r) => setTimeout(r, 20));
  return of();
}

describe('resources/read: the requested URI', () => {
  it('a block rule refuses a read whose URI matches, naming the rule; the upstream never sees it', async () => {
    use([{ name: 'No payroll', detection: PAYROLL, action: { kind: 'block' }, ...onUris }]);
    expect(await upstreamUriOf('fx+doc://customer/42')).toBe('fx+doc://customer/42');

    const error = await rpcError(read('fx+doc://customer/payroll-2026'));
    expect(error.code).toBe(-32070);
    expect(error.message).toBe('MCP error -32070: blocked by rule "No payroll"');
    expect(error.data).toEqual({ code: 'RULE_BLOCKED', ruleId: expect.any(String), ruleName: 'No payroll', leg: 'request' });

    const [, blocked] = await auditedCalls('resources/read', 2);
    expect(blocked!.actions!.map((record) => record.action)).toEqual([{ ruleId: expect.any(String), ruleName: 'No payroll', action: 'block', findings: ['REGEX'], alert: false }]);
    expect(blocked!.upstream ?? []).toEqual([]);
  });

  it('reads the URI percent-decoded, so an escape cannot hide a match', async () => {
    use([{ name: 'No payroll', detection: PAYROLL, action: { kind: 'block' }, ...onUris }]);
    await expect(read('fx+doc://customer/pay%72oll')).rejects.toThrow('blocked by rule "No payroll"');
    await expect(read('fx+doc://customer/%50%41%59ROLL')).rejects.toThrow('blocked by rule "No payroll"');
  });

  it('a redact rule sends the upstream a rewritten URI, percent-encoded, keeping the bytes it left alone', async () => {
    use([{ name: 'Redact emails', detection: EMAIL, action: { kind: 'redact' }, ...onUris }]);
    // The content is of the rewritten URI, and keeps the upstream's name for it.
    expect(await upstreamUriOf('fx+doc://customer/ada@example.com')).toBe('doc://customer/%5BREDACTED:EMAIL_ADDRESS%5D');
    // `%2F` and `%20` before the match stay escapes: a rewrite never changes the URI's structure there.
    expect(await upstreamUriOf('fx+doc://customer/a%2Fb%20ada@example.com')).toBe('doc://customer/a%2Fb%20%5BREDACTED:EMAIL_ADDRESS%5D');
    const [call] = await auditedCalls('resources/read');
    expect(call!.actions!.map((record) => record.action)).toEqual([expect.objectContaining({ ruleName: 'Redact emails', action: 'redact', findings: ['EMAIL_ADDRESS'] })]);
  });

  it('hash is stable across calls, mask and replace write URI-safe text', async () => {
    use([{ name: 'Hash emails', detection: EMAIL, action: { kind: 'hash' }, ...onUris }]);
    const hashed = await upstreamUriOf('fx+doc://customer/ada@example.com');
    expect(hashed).toBe(`doc://customer/${sha('ada@example.com')}`);
    expect(await upstreamUriOf('fx+doc://customer/ada@example.com')).toBe(hashed);

    use([{ name: 'Mask emails', detection: EMAIL, action: { kind: 'mask', keepLast: 4 }, ...onUris }]);
    expect(await upstreamUriOf('fx+doc://customer/ada@example.com')).toBe('doc://customer/***********.com');

    use([{ name: 'Replace emails', detection: EMAIL, action: { kind: 'replace', text: 'a customer' }, ...onUris }]);
    expect(await upstreamUriOf('fx+doc://customer/ada@example.com')).toBe('doc://customer/a%20customer');
  });

  it('alert-only changes nothing and records the trigger with its alert', async () => {
    use([{ name: 'Watch payroll', detection: PAYROLL, action: { kind: 'alert_only' }, raiseAlert: true, ...onUris }]);
    expect(await upstreamUriOf('fx+doc://customer/payroll')).toBe('fx+doc://customer/payroll');
    const [call] = await auditedCalls('resources/read');
    expect(call!.actions!.map((record) => record.action)).toEqual([expect.objectContaining({ ruleName: 'Watch payroll', action: 'alert_only', findings: ['REGEX'], alert: true })]);
  });

  it('is a part of its own: rules on arguments or contents do not read URIs, and a URI rule does not read contents', async () => {
    use([
      { name: 'Arguments', detection: PAYROLL, action: { kind: 'block' }, hooks: ['request', 'response'], parts: ['toolArguments', 'promptArguments', 'resourceContents'] },
      { name: 'URIs', detection: EMAIL, action: { kind: 'block' }, ...onUris },
    ]);
    expect(await upstreamUriOf('fx+doc://customer/payroll')).toBe('fx+doc://customer/payroll');
    // doc://customers holds an email address in its text, not in its URI.
    expect((await read('fx+doc://customers')).contents[0]).toMatchObject({ uri: 'fx+doc://customers', text: expect.stringContaining('ada@example.com') });
  });

  it('is audited: the rule as a policy action, the rewritten URI on the upstream request, the client URI as the feature name', async () => {
    use([{ name: 'Redact emails', detection: EMAIL, action: { kind: 'redact' }, ...onUris }]);
    await read('fx+doc://customer/ada@example.com');
    const [call] = await auditedCalls('resources/read');
    const tokens = new TokenEstimator();
    await tokens.ready();
    const entries = buildCallEntries(call!, { scrubber: createScrubber(), tokens });
    expect(entries.map((entry) => entry.leg)).toEqual(['client_request', 'upstream_request', 'upstream_response', 'policy_action', 'client_response']);
    expect(call!.upstream![0]!.params).toEqual({ uri: 'doc://customer/%5BREDACTED:EMAIL_ADDRESS%5D' });
    const policy = entries.find((entry) => entry.leg === 'policy_action')!;
    expect(policy).toMatchObject({ method: 'resources/read', featureName: 'fx+doc://customer/ada@example.com', serverId: 'srv-rules', status: 'ok' });
    expect(policy.policyActions).toEqual([expect.objectContaining({ ruleName: 'Redact emails', action: 'redact', findings: ['EMAIL_ADDRESS'] })]);
    expect(JSON.stringify(policy.policyActions)).not.toContain('ada@example.com');
  });
});

describe('resources/subscribe and resources/unsubscribe', () => {
  it('a block rule refuses both before they reach the upstream', async () => {
    use([{ name: 'No payroll', detection: PAYROLL, action: { kind: 'block' }, ...onUris }]);
    const subscribe = await rpcError(connected().subscribeResource({ uri: 'fx+doc://customer/payroll' }));
    expect(subscribe.data).toMatchObject({ code: 'RULE_BLOCKED', ruleName: 'No payroll', leg: 'request' });
    const unsubscribe = await rpcError(connected().unsubscribeResource({ uri: 'fx+doc://customer/payroll' }));
    expect(unsubscribe.data).toMatchObject({ code: 'RULE_BLOCKED', ruleName: 'No payroll', leg: 'request' });
    const calls = [...(await auditedCalls('resources/subscribe')), ...(await auditedCalls('resources/unsubscribe'))];
    expect(calls).toHaveLength(2);
    for (const call of calls) expect(call.upstream ?? []).toEqual([]);
  });

  it('a rewrite rule sends the same rewritten URI upstream on subscribe and on unsubscribe, never the original', async () => {
    use([{ name: 'Hash emails', detection: EMAIL, action: { kind: 'hash' }, ...onUris }]);
    const uri = 'fx+doc://customer/ada@example.com';
    // The fixture upstream does not support subscriptions: what matters is what it was sent.
    await connected().subscribeResource({ uri }).catch(() => undefined);
    await connected().unsubscribeResource({ uri }).catch(() => undefined);
    const sent = [...(await auditedCalls('resources/subscribe')), ...(await auditedCalls('resources/unsubscribe'))].map((call) => call.upstream?.[0]?.params);
    expect(sent).toEqual([{ uri: `doc://customer/${sha('ada@example.com')}` }, { uri: `doc://customer/${sha('ada@example.com')}` }]);
  });
});

describe('completion/complete of a resource template variable', () => {
  it('a URI rule blocks a variable value (and context) that matches; a prompt-arguments rule does not read it', async () => {
    use([{ name: 'Prompts only', detection: PAYROLL, action: { kind: 'block' }, hooks: ['request'], parts: ['promptArguments'] }]);
    expect((await completeTemplate('payroll')).completion.values[0]).toBe('payroll');

    use([{ name: 'No payroll', detection: PAYROLL, action: { kind: 'block' }, ...onUris }]);
    const error = await rpcError(completeTemplate('payroll'));
    expect(error.data).toEqual({ code: 'RULE_BLOCKED', ruleId: expect.any(String), ruleName: 'No payroll', leg: 'request' });
    await expect(completeTemplate('4', { region: 'payroll' })).rejects.toThrow('blocked by rule "No payroll"');
    expect((await completeTemplate('42')).completion.values[0]).toBe('42');
  });

  it('a redact rule rewrites the variable value before it goes upstream (it is not a URI yet, so it is not encoded)', async () => {
    use([{ name: 'Redact emails', detection: EMAIL, action: { kind: 'redact' }, ...onUris }]);
    expect((await completeTemplate('ada@example.com')).completion.values[0]).toBe('[REDACTED:EMAIL_ADDRESS]');
  });
});

describe('custom rule engines on resource URIs', () => {
  const engines: EngineServer[] = [];
  afterAll(async () => {
    for (const engine of engines) await engine.close();
  });

  it('get { uri } as sent upstream; block ends the read, modify replaces the URI, a modify without a uri fails closed', async () => {
    const guard = await startEngine(({ payload }) => {
      const uri = (payload as { uri: string }).uri;
      if (uri.includes('secret')) return { body: JSON.stringify({ verdict: 'block', reason: 'secret documents are off limits' }) };
      if (uri.includes('broken')) return { body: JSON.stringify({ verdict: 'modify', payload: { url: uri } }) };
      return { body: JSON.stringify({ verdict: 'modify', payload: { uri: uri.replace(/\/(\w+)$/, '/checked-$1') } }) };
    });
    engines.push(guard);
    use([{ name: 'URI guard', detection: { kind: 'engine', engineId: 'eng-uri' }, action: { kind: 'block' }, ...onUris }], [engineRow('eng-uri', guard.url)]);

    expect(await upstreamUriOf('fx+doc://customer/42')).toBe('doc://customer/checked-42');
    expect(guard.received[0]).toMatchObject({ hook: 'request', payload: { uri: 'doc://customer/42' } });
    expect((await rpcError(read('fx+doc://customer/secret'))).message).toContain('blocked by rule "URI guard": secret documents are off limits');
    const broken = await rpcError(read('fx+doc://customer/broken'));
    expect(broken.data).toMatchObject({ code: 'RULE_FAILED_CLOSED', ruleName: 'URI guard' });
  });
});
