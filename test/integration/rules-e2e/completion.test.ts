import { describe, expect, it } from 'vitest';
import { buildCallEntries } from '../../../data-plane/audit/call-facts.js';
import type { AuditedCall } from '../../../data-plane/audit/call-auditor.js';
import { TokenEstimator } from '../../../data-plane/audit/token-estimator.js';
import { createScrubber } from '../../../schema/audit/scrub.js';
import { rulesGatewayPerFile, rpcError, type RuleSpec } from './harness.js';

/**
 * `completion/complete` through the content rules and the audit stage: a real data plane,
 * the real stdio fixture upstream (whose completions echo what they received, then a
 * suggestion carrying an email address) and the SDK's client.
 */

const { gateway, client: connected } = rulesGatewayPerFile();

const EMAIL = { kind: 'pii', entityTypes: ['EMAIL_ADDRESS'], minConfidence: 0.5, allowList: [] } as const;
const SECRETS = { kind: 'pii', entityTypes: ['GITHUB_TOKEN', 'AWS_ACCESS_KEY'], minConfidence: 0.5, allowList: [] } as const;
const GITHUB_TOKEN = `ghp_${'a1B2c3D4e5'.repeat(3)}x9Y8z7`;

function use(specs: RuleSpec[]): void {
  gateway.publish(specs);
  gateway.audit.clear();
}

const completePrompt = (value: string, context?: Record<string, string>) =>
  connected().complete({ ref: { type: 'ref/prompt', name: 'fx__summarize' }, argument: { name: 'topic', value }, ...(context ? { context: { arguments: context } } : {}) });
const completeTemplate = (value: string) => connected().complete({ ref: { type: 'ref/resource', uri: 'fx+doc://customer/{id}' }, argument: { name: 'id', value } });

/** The finished calls of one method (the record is handed over when the response closes). */
async function auditedCalls(method: string, count = 1): Promise<AuditedCall[]> {
  const of = () => gateway.audit.calls.filter((call) => call.request?.method === method);
  for (let i = 0; i < 100 && of().length < count; i++) await new Promise((r) => setTimeout(r, 20));
  return of();
}

describe('completion/complete on the request leg (the value being completed is user content)', () => {
  it('a blocking rule ends a completion that carries a secret with the JSON-RPC error of a rule block; the upstream never sees it', async () => {
    use([{ name: 'No secrets', detection: SECRETS, action: { kind: 'block' }, hooks: ['request'], parts: ['promptArguments'] }]);
    expect((await completePrompt('billing')).completion.values[0]).toBe('billing');

    const error = await rpcError(completePrompt(`deploy with ${GITHUB_TOKEN}`));
    expect(error.code).toBe(-32070);
    expect(error.message).toContain('blocked by rule "No secrets"');
    expect(error.message).not.toContain(GITHUB_TOKEN);
    expect(error.data).toEqual({ code: 'RULE_BLOCKED', ruleId: expect.any(String), ruleName: 'No secrets', leg: 'request' });

    const blocked = (await auditedCalls('completion/complete', 2)).find((call) => (call.actions ?? []).length > 0)!;
    expect(blocked.actions!.map((record) => record.action)).toEqual([expect.objectContaining({ ruleName: 'No secrets', action: 'block', findings: ['GITHUB_TOKEN'] })]);
    expect(blocked.upstream ?? []).toEqual([]);
  });

  it('also reads the arguments already given in the completion context', async () => {
    use([{ name: 'No secrets', detection: SECRETS, action: { kind: 'block' }, hooks: ['request'], parts: ['promptArguments'] }]);
    const error = await rpcError(completePrompt('billing', { token: GITHUB_TOKEN }));
    expect(error.data).toMatchObject({ code: 'RULE_BLOCKED', ruleName: 'No secrets' });
  });

  it('a redact rule rewrites the value and the context before they go upstream', async () => {
    use([{ name: 'Redact emails', detection: EMAIL, action: { kind: 'redact' }, hooks: ['request'], parts: ['promptArguments'] }]);
    const { values } = (await completePrompt('mail ada@example.com', { audience: 'grace@example.com' })).completion;
    // The upstream echoes what it received: the value, then the context arguments.
    expect(values[0]).toBe('mail [REDACTED:EMAIL_ADDRESS]');
    expect(JSON.parse(values[1]!)).toEqual({ audience: '[REDACTED:EMAIL_ADDRESS]' });
  });

  it('rules scoped to the prompt apply to completions of its arguments; rules scoped to another feature do not', async () => {
    use([
      { name: 'Elsewhere', detection: SECRETS, action: { kind: 'block' }, hooks: ['request'], parts: ['promptArguments'], features: ['fx__other'] },
      { name: 'This prompt', detection: EMAIL, action: { kind: 'mask', keepLast: 4 }, hooks: ['request'], parts: ['promptArguments'], features: ['fx__summarize'] },
    ]);
    const { values } = (await completePrompt(`${GITHUB_TOKEN} ada@example.com`)).completion;
    expect(values[0]).toBe(`${GITHUB_TOKEN} ***********.com`);
  });

  it('scans a resource template variable as part of a URI (resourceUris), not as a prompt argument', async () => {
    use([{ name: 'No secrets', detection: SECRETS, action: { kind: 'block' }, hooks: ['request'], parts: ['toolArguments', 'promptArguments'] }]);
    expect((await completeTemplate(GITHUB_TOKEN)).completion.values[0]).toBe(GITHUB_TOKEN);
    await expect(completePrompt(GITHUB_TOKEN)).rejects.toThrow('blocked by rule "No secrets"');
    use([{ name: 'No secrets in URIs', detection: SECRETS, action: { kind: 'block' }, hooks: ['request'], parts: ['resourceUris'] }]);
    await expect(completeTemplate(GITHUB_TOKEN)).rejects.toThrow('blocked by rule "No secrets in URIs"');
    expect((await completePrompt(GITHUB_TOKEN)).completion.values[0]).toBe(GITHUB_TOKEN);
  });
});

describe('completion/complete on the response leg (the suggested values)', () => {
  it("a redact rule on prompt messages rewrites a prompt argument's completion values", async () => {
    use([{ name: 'Redact emails', detection: EMAIL, action: { kind: 'redact' }, hooks: ['response'], parts: ['promptMessages'] }]);
    const result = await completePrompt('billing');
    expect(result.completion.values).toEqual(['billing', 'billing accounts of [REDACTED:EMAIL_ADDRESS]']);
    const [call] = await auditedCalls('completion/complete');
    expect(call!.actions!.map((record) => record.action)).toEqual([expect.objectContaining({ ruleName: 'Redact emails', action: 'redact', findings: ['EMAIL_ADDRESS'] })]);
  });

  it("a redact rule on resource contents rewrites a template variable's completion values; a prompt-messages rule does not", async () => {
    use([
      { name: 'Hash emails', detection: EMAIL, action: { kind: 'hash' }, hooks: ['response'], parts: ['resourceContents'] },
      { name: 'Prompt only', detection: EMAIL, action: { kind: 'block' }, hooks: ['response'], parts: ['promptMessages'] },
    ]);
    const { values } = (await completeTemplate('42')).completion;
    expect(values).toEqual(['42', expect.stringMatching(/^42 accounts of sha256:[0-9a-f]{64}$/)]);
  });

  it('a response-leg block is a JSON-RPC error naming the rule (a completion result has no error form)', async () => {
    use([{ name: 'No emails out', detection: EMAIL, action: { kind: 'block' }, hooks: ['response'], parts: ['promptMessages'] }]);
    const error = await rpcError(completePrompt('billing'));
    expect(error.code).toBe(-32070);
    expect(error.message).toContain('blocked by rule "No emails out"');
    expect(error.data).toEqual({ code: 'RULE_BLOCKED', ruleId: expect.any(String), ruleName: 'No emails out', leg: 'response' });
  });
});

describe('completion/complete in the audit trail', () => {
  it('records the upstream legs, the rules that acted and the referenced prompt', async () => {
    use([{ name: 'Redact emails', detection: EMAIL, action: { kind: 'redact' }, hooks: ['request', 'response'], parts: ['promptArguments', 'promptMessages'] }]);
    await completePrompt('billing for ada@example.com');
    const [call] = await auditedCalls('completion/complete');
    expect(call!.upstream).toHaveLength(1);
    // What went upstream is the redacted value, under the upstream's own prompt name.
    expect(call!.upstream![0]!.params).toMatchObject({ ref: { type: 'ref/prompt', name: 'summarize' }, argument: { value: 'billing for [REDACTED:EMAIL_ADDRESS]' } });

    const tokens = new TokenEstimator();
    await tokens.ready();
    const entries = buildCallEntries(call!, { scrubber: createScrubber(), tokens });
    expect(entries.map((entry) => entry.leg)).toEqual(['client_request', 'upstream_request', 'upstream_response', 'policy_action', 'policy_action', 'client_response']);
    const upstream = entries.filter((entry) => entry.leg.startsWith('upstream_'));
    for (const entry of upstream) expect(entry).toMatchObject({ serverId: 'srv-rules', assignmentId: 'asg-rules', featureName: 'fx__summarize', status: 'ok' });
    expect(upstream[1]!.upstreamMs).toBeGreaterThanOrEqual(0);
    const response = entries.find((entry) => entry.leg === 'client_response')!;
    expect(response).toMatchObject({ method: 'completion/complete', serverId: 'srv-rules', status: 'ok' });
    expect(response.upstreamMs).not.toBeNull();
    expect(response.policyActions.map((action) => action.ruleName)).toEqual(['Redact emails', 'Redact emails']);
  });
});
