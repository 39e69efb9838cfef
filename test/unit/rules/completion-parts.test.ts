import { describe, expect, it } from 'vitest';
import type { AuditPolicyAction } from '../../../schema/audit/types.js';
import type { EngineVerdict } from '../../../schema/rules/engines/verdict.js';
import { compileRuleSet, evaluateLeg, partOf, type LegCall, type RuleEngineCaller } from '../../../schema/rules/engine/index.js';
import type { FeatureType } from '../../../schema/snapshot/index.js';
import { BLOCK, REDACT, engine, pii, rule } from './rule-fixtures.js';

/** `completion/complete` as the rules see it (the data plane's glue is tested end to end in rules-e2e/completion.test.ts). */

function call(leg: 'request' | 'response', type: FeatureType): LegCall & { reports: AuditPolicyAction[] } {
  const reports: AuditPolicyAction[] = [];
  return {
    leg,
    method: 'completion/complete',
    assignmentId: 'asg-1',
    featureNames: ['fx__summarize'],
    envelope: {
      workspace: { id: 'ws' },
      gateway: { id: 'gw-eng', slug: 'eng' },
      server: { id: 'srv', name: 'Server' },
      feature: { type, name: 'summarize' },
      caller: { userId: 'usr', connectionId: 'conn', hostId: 'host' },
    },
    report: (action) => reports.push(action),
    reports,
  };
}

const set = (rules: Parameters<typeof compileRuleSet>[0], engines: Record<string, RuleEngineCaller> = {}) =>
  compileRuleSet(rules, { hashSalt: 'salt', engines: new Map(Object.entries(engines)) });

const request = {
  ref: { type: 'ref/prompt', name: 'summarize' },
  argument: { name: 'topic', value: 'mail bob@example.com' },
  context: { arguments: { audience: 'ann@example.com', tone: 'dry' } },
};
const result = { completion: { values: ['a', 'b for bob@example.com'], total: 2, hasMore: false }, _meta: { k: 1 } };

describe('the parts a completion is scanned as', () => {
  it('prompt argument: promptArguments on the request, promptMessages on the response; resource: resourceUris on the request, resourceContents on the response', () => {
    expect(partOf('completion/complete', 'request', 'prompts')?.part).toBe('promptArguments');
    expect(partOf('completion/complete', 'response', 'prompts')?.part).toBe('promptMessages');
    expect(partOf('completion/complete', 'request', 'resourceTemplates')?.part).toBe('resourceUris');
    expect(partOf('completion/complete', 'response', 'resourceTemplates')?.part).toBe('resourceContents');
    expect(partOf('completion/complete', 'response', 'resources')?.part).toBe('resourceContents');
  });

  it('rewrites the value and the context arguments and nothing else (ref, names, numbers, _meta)', async () => {
    const out = await evaluateLeg(set([rule(pii(['EMAIL_ADDRESS']), REDACT)]), call('request', 'prompts'), request);
    expect(out).toEqual({
      blocked: false,
      message: { ...request, argument: { name: 'topic', value: 'mail [REDACTED:EMAIL_ADDRESS]' }, context: { arguments: { audience: '[REDACTED:EMAIL_ADDRESS]', tone: 'dry' } } },
    });
    const answer = await evaluateLeg(set([rule(pii(['EMAIL_ADDRESS']), REDACT)]), call('response', 'prompts'), result);
    expect(answer).toEqual({ blocked: false, message: { ...result, completion: { ...result.completion, values: ['a', 'b for [REDACTED:EMAIL_ADDRESS]'] } } });
  });

  it('blocks on a value the rule forbids, and a prompt-argument rule never reads a resource completion', async () => {
    expect(await evaluateLeg(set([rule(pii(['EMAIL_ADDRESS']), BLOCK, { parts: ['promptArguments'] })]), call('request', 'prompts'), request)).toMatchObject({ blocked: true });
    const resource = { ...request, ref: { type: 'ref/resource', uri: 'doc://customer/{id}' } };
    expect(await evaluateLeg(set([rule(pii(['EMAIL_ADDRESS']), BLOCK)]), call('request', 'resourceTemplates'), resource)).toEqual({ blocked: false, message: resource });
  });
});

describe('engines on completions', () => {
  const verdict = (v: EngineVerdict): RuleEngineCaller & { seen: { payload: unknown }[] } => {
    const seen: { payload: unknown }[] = [];
    return { seen, evaluate: async (evaluation) => (seen.push(evaluation), v) };
  };

  it('get the prompt arguments as one object and may modify them back into the value and the context', async () => {
    const modifier = verdict({ verdict: 'modify', payload: { topic: 'clean', audience: 'someone', extra: 'dropped' } });
    const out = await evaluateLeg(set([rule(engine('e1'), REDACT)], { e1: modifier }), call('request', 'prompts'), request);
    expect(modifier.seen[0]!.payload).toEqual({ audience: 'ann@example.com', tone: 'dry', topic: 'mail bob@example.com' });
    // A context argument the engine left out is dropped; a key the context did not have is ignored.
    expect(out).toEqual({ blocked: false, message: { ...request, argument: { name: 'topic', value: 'clean' }, context: { arguments: { audience: 'someone' } } } });
  });

  it('may modify the values of a result, keeping _meta; a modify that is not a completion result is a failure', async () => {
    const modifier = verdict({ verdict: 'modify', payload: { completion: { values: ['safe'] } } });
    expect(await evaluateLeg(set([rule(engine('e1'), REDACT)], { e1: modifier }), call('response', 'prompts'), result)).toEqual({
      blocked: false,
      message: { completion: { values: ['safe'] }, _meta: { k: 1 } },
    });
    const broken = verdict({ verdict: 'modify', payload: { completion: { values: [1] } } });
    const c = call('response', 'prompts');
    expect(await evaluateLeg(set([rule(engine('e1'), REDACT)], { e1: broken }), c, result)).toMatchObject({ blocked: true, failedClosed: true });
    expect(c.reports[0]!.detail).toContain('values');
  });
});
