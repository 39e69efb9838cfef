/**
 * The "full policy" of the benchmark, through the public API: on top of authentication,
 * provisioning and pins, the default PII pack (every built-in recognizer) and 10 regex
 * rules, each redacting on both legs over tool arguments and tool results. The echo
 * payload matches none of them, so every rule scans every byte and changes nothing —
 * the cost of inspection itself.
 */
import { ENTITY_TYPES } from '../../../schema/rules/pii/finding.js';
import { CreateRuleDocument } from '../../../sdk/generated/graphql.js';
import { unwrap } from '../../../sdk/unwrap.js';
import type { ControlPlaneProcess } from './gatehouse.js';

export interface AppliedPolicy {
  readonly applied: boolean;
  readonly description: string;
}

/** Ten patterns of the kind companies add: internal hosts, ticket ids, codenames, account numbers. */
export const BENCH_REGEX_RULES: readonly { name: string; patterns: string[] }[] = [
  { name: 'internal hostnames', patterns: [String.raw`\b[a-z0-9-]+\.corp\.example\.com\b`] },
  { name: 'jira keys', patterns: [String.raw`\bSEC-\d{3,6}\b`] },
  { name: 'project codenames', patterns: [String.raw`\b(?:bluebird|nightjar|kestrel)\b`] },
  { name: 'customer ids', patterns: [String.raw`\bCUST-[0-9A-F]{8}\b`] },
  { name: 'bank accounts', patterns: [String.raw`\bacct[:#]\s?\d{8,12}\b`] },
  { name: 'employee ids', patterns: [String.raw`\bE\d{7}\b`] },
  { name: 'private ip ranges', patterns: [String.raw`\b10\.\d{1,3}\.\d{1,3}\.\d{1,3}\b`, String.raw`\b192\.168\.\d{1,3}\.\d{1,3}\b`] },
  { name: 'connection strings', patterns: [String.raw`\b(?:postgres|mysql|mongodb)://\S+`] },
  { name: 'salary figures', patterns: [String.raw`\bsalary\s*[:=]\s*\$?\d[\d,]*`] },
  { name: 'confidential markers', patterns: [String.raw`\b(?:strictly\s+confidential|internal\s+only)\b`] },
];

export async function applyFullPolicy(cp: ControlPlaneProcess, gatewayIds: readonly string[]): Promise<AppliedPolicy> {
  const scope = { parts: ['TOOL_ARGUMENTS' as const, 'TOOL_RESULTS' as const] };
  const hooks = ['REQUEST' as const, 'RESPONSE' as const];
  for (const gatewayId of gatewayIds) {
    unwrap(
      await cp.client.request(CreateRuleDocument, {
        input: { gatewayId, name: 'PII pack', hooks, scope, detection: { pii: { entityTypes: [...ENTITY_TYPES] } }, action: { kind: 'REDACT' } },
      }),
      'createRule',
    );
    for (const rule of BENCH_REGEX_RULES) {
      unwrap(
        await cp.client.request(CreateRuleDocument, {
          input: { gatewayId, name: rule.name, hooks, scope, detection: { regex: { patterns: rule.patterns } }, action: { kind: 'REDACT' } },
        }),
        'createRule',
      );
    }
  }
  return {
    applied: true,
    description: `authentication, provisioning, pins, audit, the PII pack (${ENTITY_TYPES.length} recognizers) and ${BENCH_REGEX_RULES.length} regex rules on both legs`,
  };
}
