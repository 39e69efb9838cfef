import type { AuditPolicyAction } from '../../../schema/audit/types.js';
import type { LegCall } from '../../../schema/rules/engine/index.js';
import type { RuleAction, RuleDetection, RuleHook, RulePart, SnapshotRule } from '../../../schema/snapshot/index.js';

let seq = 0;

/** A snapshot rule with defaults: gateway gw-eng, both hooks, every part, all assignments and features, fail closed. */
export function rule(
  detection: RuleDetection,
  action: RuleAction,
  overrides: Partial<Omit<SnapshotRule, 'detection' | 'action' | 'scope'>> & {
    readonly parts?: readonly RulePart[];
    readonly assignmentIds?: readonly string[];
    readonly features?: readonly string[];
    readonly hooks?: readonly RuleHook[];
  } = {},
): SnapshotRule {
  seq += 1;
  const { parts, assignmentIds, features, ...rest } = overrides;
  return {
    id: `rule-${seq}`,
    gatewayId: 'gw-eng',
    name: `Rule ${seq}`,
    order: seq,
    hooks: ['request', 'response'],
    failureMode: 'closed',
    raiseAlert: false,
    ...rest,
    scope: {
      assignmentIds: assignmentIds ?? [],
      features: features ?? [],
      parts: parts ?? ['toolArguments', 'promptArguments', 'toolResults', 'resourceContents', 'promptMessages'],
    },
    detection,
    action,
  };
}

export const regex = (patterns: readonly string[], caseInsensitive = true): RuleDetection => ({ kind: 'regex', patterns, caseInsensitive });
export const pii = (entityTypes: readonly string[], minConfidence = 0.5, allowList: readonly string[] = []): RuleDetection => ({
  kind: 'pii',
  entityTypes,
  minConfidence,
  allowList,
});
export const injection = (threshold = 0.5): RuleDetection => ({ kind: 'detector', detector: 'prompt_injection', threshold });
export const engine = (engineId: string): RuleDetection => ({ kind: 'engine', engineId });

export const BLOCK: RuleAction = { kind: 'block' };
export const REDACT: RuleAction = { kind: 'redact' };
export const HASH: RuleAction = { kind: 'hash' };
export const ALERT: RuleAction = { kind: 'alert_only' };
export const replaceWith = (text: string): RuleAction => ({ kind: 'replace', text });
export const maskKeeping = (keepLast: number): RuleAction => ({ kind: 'mask', keepLast });

/** One leg of a call to tool `web__echo` (assignment asg-1, gateway gw-eng), collecting what the rules report. */
export function legCall(leg: 'request' | 'response', method = 'tools/call', overrides: Partial<LegCall> = {}): LegCall & { reports: AuditPolicyAction[] } {
  const reports: AuditPolicyAction[] = [];
  return {
    leg,
    method,
    assignmentId: 'asg-1',
    featureNames: ['web__echo'],
    envelope: {
      workspace: { id: 'ws' },
      gateway: { id: 'gw-eng', slug: 'eng' },
      server: { id: 'srv', name: 'Server' },
      feature: { type: 'tools', name: 'echo' },
      caller: { userId: 'usr', connectionId: 'conn', hostId: 'host' },
    },
    report: (action) => reports.push(action),
    reports,
    ...overrides,
  };
}
