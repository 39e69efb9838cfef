import { describe, expect, it } from 'vitest';
import { compileGatewaySnapshot } from '../../../control-plane/snapshot/compile.js';
import type { SnapshotSource } from '../../../control-plane/snapshot/source.js';
import { SnapshotRejectedError, computeSnapshotContentHash, parseGatewaySnapshot, type GatewaySnapshot } from '../../../schema/snapshot/index.js';
import { richSource, secret } from './fixtures.js';

/** richSource with one rule of each detection kind and the engine one of them uses. */
function sourceWithRules(): SnapshotSource {
  const scope = { assignmentIds: ['asg-github'], features: [], parts: ['toolArguments' as const] };
  const base = { gatewayId: 'gw-eng', enabled: true, hooks: ['request' as const], scope, failureMode: 'closed' as const, raiseAlert: false };
  return {
    ...richSource(),
    rules: [
      { ...base, id: 'r-regex', name: 'Regex', order: 0, detection: { kind: 'regex', patterns: ['abc'], caseInsensitive: true }, action: { kind: 'redact' } },
      { ...base, id: 'r-pii', name: 'PII', order: 1, detection: { kind: 'pii', entityTypes: ['US_SSN'], minConfidence: 0.5, allowList: [] }, action: { kind: 'mask', keepLast: 4 } },
      { ...base, id: 'r-engine', name: 'Engine', order: 2, detection: { kind: 'engine', engineId: 'eng-1' }, action: { kind: 'block' } },
      { ...base, id: 'r-detector', name: 'Detector', order: 3, detection: { kind: 'detector', detector: 'prompt_injection', threshold: 0.5 }, action: { kind: 'hash' } },
    ],
    ruleEngines: [
      {
        id: 'eng-1',
        name: 'Engine',
        kind: 'webhook',
        url: 'https://engine.example.com/v',
        method: 'POST',
        headers: [{ name: 'Authorization', value: secret('rule-engine:eng-1:header:authorization') }],
        forwardHeaders: [],
        signingSecret: secret('rule-engine:eng-1:signing-secret'),
        timeoutMs: 30000,
        allowPrivateNetwork: false,
        options: {},
      },
    ],
  };
}

const wire = (): Record<string, any> => JSON.parse(JSON.stringify(compileGatewaySnapshot(sourceWithRules(), { version: 2, generatedAt: '2025-06-01T12:00:00.000Z' })));
const rehash = (s: Record<string, any>) => ((s.contentHash = computeSnapshotContentHash(s as GatewaySnapshot)), s);

function issues(snapshot: Record<string, any>): string[] {
  try {
    parseGatewaySnapshot(rehash(snapshot));
  } catch (err) {
    expect(err).toBeInstanceOf(SnapshotRejectedError);
    expect((err as SnapshotRejectedError).code).toBe('INVALID');
    return [...(err as SnapshotRejectedError).issues];
  }
  throw new Error('the snapshot was accepted');
}

describe('rules in a snapshot', () => {
  it('a compiled snapshot with every kind of rule is accepted and frozen', () => {
    const snapshot = parseGatewaySnapshot(wire());
    expect(snapshot.rules.map((r) => r.id)).toEqual(['r-regex', 'r-pii', 'r-engine', 'r-detector']);
    expect(Object.isFrozen(snapshot.rules[0]!.detection)).toBe(true);
  });

  it('refuses references that do not resolve', () => {
    const s1 = wire();
    s1.rules[0].gatewayId = 'gw-gone';
    expect(issues(s1)).toContain('rules[0].gatewayId: unknown gateway gw-gone');
    const s2 = wire();
    s2.rules[2].detection.engineId = 'eng-gone';
    expect(issues(s2)).toContain('rules[2].detection.engineId: unknown rule engine eng-gone');
    const s3 = wire();
    s3.rules[1].scope.assignmentIds = ['asg-elsewhere'];
    expect(issues(s3)).toContain('rules[1].scope.assignmentIds: assignment asg-elsewhere is not on gateway gw-eng');
  });

  it('refuses malformed rules and engines', () => {
    const cases: [(s: Record<string, any>) => void, string][] = [
      [(s) => (s.rules[0].hooks = []), '$.rules[0].hooks'],
      [(s) => (s.rules[0].hooks = ['request', 'request']), '$.rules[0].hooks'],
      [(s) => (s.rules[0].scope.parts = []), '$.rules[0].scope.parts'],
      [(s) => (s.rules[0].detection.patterns = ['']), '$.rules[0].detection.patterns[0]'],
      [(s) => (s.rules[1].detection.minConfidence = 2), '$.rules[1].detection.minConfidence'],
      [(s) => (s.rules[1].action.keepLast = -1), '$.rules[1].action.keepLast'],
      [(s) => (s.rules[3].detection.threshold = -0.5), '$.rules[3].detection.threshold'],
      [(s) => (s.rules[0].action = { kind: 'explode' }), '$.rules[0].action.kind'],
      [(s) => (s.rules[0].extra = true), '$.rules[0]'],
      [(s) => (s.ruleEngines[0].signingSecret = 'plaintext'), '$.ruleEngines[0].signingSecret'],
      [(s) => (s.ruleEngines[0].timeoutMs = 0), '$.ruleEngines[0].timeoutMs'],
      [(s) => (s.ruleEngines[0].forwardHeaders = ['X-Upper']), '$.ruleEngines[0].forwardHeaders[0]'],
      [(s) => (s.workspace.ruleHashSalt = undefined), '$.workspace.ruleHashSalt'],
      [(s) => (s.gateways[0].audit = { bodies: 'all', maxBodyBytes: 1 }), '$.gateways[0].audit.bodies'],
    ];
    for (const [tamper, path] of cases) {
      const s = wire();
      tamper(s);
      expect(issues(s).some((issue) => issue.startsWith(`${path}:`)), path).toBe(true);
    }
  });

  it('refuses http engines unless they allow the private network, and rules out of order', () => {
    const s1 = wire();
    s1.ruleEngines[0].url = 'http://engine.example.com/v';
    expect(issues(s1)).toContain('ruleEngines[0].url: must be https:// unless allowPrivateNetwork');
    const s2 = wire();
    s2.ruleEngines[0].url = 'http://127.0.0.1:8080/v';
    s2.ruleEngines[0].allowPrivateNetwork = true;
    expect(() => parseGatewaySnapshot(rehash(s2))).not.toThrow();
    const s3 = wire();
    s3.rules[0].order = 10;
    expect(issues(s3)).toContain('rules[1].order: rules of gateway gw-eng must be in ascending order');
  });
});
