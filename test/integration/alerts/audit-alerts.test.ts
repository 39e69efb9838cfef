/**
 * Alerts from audited traffic: what a data plane reports in its batches (a rule asking
 * for an alert, a rate-limit refusal, dropped entries) becomes one folded alert per
 * subject with a count, through the real ingest endpoint.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditPolicyAction } from '../../../schema/audit/types.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { startTestControlPlane, type TestControlPlane } from '../../helpers/control-plane.js';
import { postIngest, registerTestDataPlane, sampleAuditEntry, sampleCall, type RegisteredTestDataPlane } from '../../helpers/audit.js';

let tdb: TestDatabase;
let cp: TestControlPlane;
let dataPlane: RegisteredTestDataPlane;

beforeAll(async () => {
  tdb = await createTestDatabase();
  cp = await startTestControlPlane(tdb.database);
  dataPlane = await registerTestDataPlane(cp, 'edge-alerts');
}, 60_000);
afterAll(async () => {
  await cp?.close();
  await tdb?.drop();
});

interface ListedAlert {
  type: string;
  severity: string;
  count: number;
  subject: string;
  details: Record<string, unknown>;
}

async function alertsOfType(type: string): Promise<ListedAlert[]> {
  const { data } = await cp.gql(`query($filter: AlertFilter) { alerts(filter: $filter, first: 50) { edges { node { type severity count subject details } } } }`, { filter: { types: [type] } });
  return (data as { alerts: { edges: { node: ListedAlert }[] } }).alerts.edges.map((edge) => edge.node);
}

async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function policyEntries(action: AuditPolicyAction, calls: number) {
  return Array.from({ length: calls }, () => {
    const call = sampleCall(cp.workspaceId);
    return [...call, sampleAuditEntry(cp.workspaceId, { correlationId: call[0]!.correlationId, gatewayId: call[0]!.gatewayId, leg: 'policy_action', status: 'blocked', policyActions: [action] })];
  }).flat();
}

describe('alerts raised from audit batches', () => {
  it('folds every hit of a rule that asks for alerts into one alert with a count, and ignores quiet rules', async () => {
    const ruleId = randomUUID();
    const loud: AuditPolicyAction = { ruleId, ruleName: 'No card numbers', action: 'block', findings: ['CREDIT_CARD'], alert: true };
    const quiet: AuditPolicyAction = { ruleId: randomUUID(), ruleName: 'Redact emails', action: 'redact', findings: ['EMAIL_ADDRESS'], alert: false };
    const gatewayId = randomUUID();
    const entries = [...policyEntries(loud, 3), ...policyEntries(quiet, 2)].map((entry) => ({ ...entry, gatewayId }));
    expect((await postIngest(cp.url, { formatVersion: 1, entries }, dataPlane.token)).status).toBe(200);
    const alerts = await eventually(() => alertsOfType('CONTENT_RULE_TRIGGERED'), (list) => list.length > 0);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ severity: 'WARNING', count: 3, details: { ruleId, ruleName: 'No card numbers', action: 'block', findings: ['CREDIT_CARD'] } });
    expect(alerts[0]!.subject).toContain('No card numbers');
    // A retried batch is stored once and raises nothing more.
    expect((await postIngest(cp.url, { formatVersion: 1, entries }, dataPlane.token)).body).toMatchObject({ accepted: 0 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await alertsOfType('CONTENT_RULE_TRIGGERED'))[0]!.count).toBe(3);
  });

  it('raises RATE_LIMIT_EXCEEDED for rate-limit refusals and AUDIT_BUFFER_OVERFLOW for dropped entries', async () => {
    const limited: AuditPolicyAction = { ruleId: 'stage:rate_limit', ruleName: 'rate limit', action: 'refuse', findings: ['RATE_LIMITED'], alert: true };
    const connectionId = randomUUID();
    const entries = policyEntries(limited, 2).map((entry) => ({ ...entry, connectionId }));
    expect((await postIngest(cp.url, { formatVersion: 1, entries, droppedEntries: 17 }, dataPlane.token)).status).toBe(200);
    const rate = await eventually(() => alertsOfType('RATE_LIMIT_EXCEEDED'), (list) => list.length > 0);
    expect(rate).toHaveLength(1);
    expect(rate[0]).toMatchObject({ severity: 'WARNING', count: 2, details: { connectionId } });
    const overflow = await eventually(() => alertsOfType('AUDIT_BUFFER_OVERFLOW'), (list) => list.length > 0);
    expect(overflow[0]).toMatchObject({ severity: 'ERROR', count: 17, details: { droppedEntries: 17 } });
  });
});
