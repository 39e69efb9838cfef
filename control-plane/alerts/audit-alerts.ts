import type { AuditEntry, AuditPolicyAction } from '../../schema/audit/types.js';
import type { AuditIngestService } from '../audit/audit-ingest.service.js';
import type { Logger } from '../logger.js';
import type { AlertService, RaiseAlertInput } from './alert.service.js';

/**
 * Turns what data planes report in their audit batches into alerts: a rule or detector
 * that asks for one (`alert: true`) → CONTENT_RULE_TRIGGERED; a rate-limit refusal →
 * RATE_LIMIT_EXCEEDED; a call refused because a pinned feature changed → PIN_VIOLATION;
 * entries a data plane had to drop → AUDIT_BUFFER_OVERFLOW.
 *
 * Hits are counted per ingest turn and raised once per (workspace, alert, subject) with
 * `occurrences`, so a flood of blocked calls is one folded alert with a count, not one
 * database write per call. Alerting never fails an ingest: errors are logged.
 */
export function wireAuditAlerts(ingest: AuditIngestService, alerts: AlertService, logger?: Logger): () => void {
  const pending = new Map<string, RaiseAlertInput>();
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    const batch = [...pending.values()];
    pending.clear();
    for (const input of batch) {
      alerts.raise(input).catch((err: unknown) => logger?.error({ err, type: input.type }, 'could not raise an alert for audited traffic'));
    }
  };
  const add = (input: RaiseAlertInput) => {
    const key = `${input.workspaceId}\u0000${input.type}\u0000${input.foldKey ?? input.subject}`;
    const existing = pending.get(key);
    pending.set(key, existing ? { ...existing, occurrences: (existing.occurrences ?? 1) + 1 } : input);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
  const offPolicy = ingest.onPolicyAlert((workspaceId, entry, action) => add(alertForAction(workspaceId, entry, action)));
  const offDropped = ingest.onDroppedEntries((workspaceId, dataPlaneId, count) =>
    add({
      workspaceId,
      type: 'AUDIT_BUFFER_OVERFLOW',
      severity: 'error',
      subject: 'A data plane dropped audit entries: its buffer was full while the control plane was unreachable or slow',
      details: { dataPlaneId, droppedEntries: count },
      subjectRef: { type: 'DataPlane', id: dataPlaneId },
      occurrences: count,
    }),
  );
  return () => {
    offPolicy();
    offDropped();
  };
}

export function alertForAction(workspaceId: string, entry: AuditEntry, action: AuditPolicyAction): RaiseAlertInput {
  const where = { gatewayId: entry.gatewayId, serverId: entry.serverId, feature: entry.featureName, method: entry.method, correlationId: entry.correlationId };
  if (action.ruleId === 'stage:rate_limit') {
    return {
      workspaceId,
      type: 'RATE_LIMIT_EXCEEDED',
      severity: 'warning',
      subject: `Rate limit exceeded${entry.connectionId ? ' by a connection' : ''} on a gateway`,
      details: { ...where, connectionId: entry.connectionId, originIp: entry.originIp, detail: action.detail },
      foldKey: `rate_limit:${entry.connectionId ?? entry.originIp ?? 'unknown'}`,
    };
  }
  if (action.ruleId === 'stage:provisioning') {
    return {
      workspaceId,
      type: 'PIN_VIOLATION',
      severity: 'error',
      subject: `A call to "${entry.featureName ?? 'a feature'}" was refused: its definition no longer matches the approved pin`,
      details: { ...where, detail: action.detail, findings: action.findings },
      foldKey: `pin_call:${entry.gatewayId}:${entry.featureName}`,
    };
  }
  return {
    workspaceId,
    type: 'CONTENT_RULE_TRIGGERED',
    severity: action.action === 'block' ? 'warning' : 'info',
    subject: `Rule "${action.ruleName}" ${action.action === 'alert_only' ? 'matched' : `acted (${action.action})`} on ${entry.method ?? 'a call'}${entry.featureName ? ` to "${entry.featureName}"` : ''}`,
    details: { ...where, ruleId: action.ruleId, ruleName: action.ruleName, action: action.action, findings: action.findings, detail: action.detail },
    foldKey: `rule:${action.ruleId}:${entry.gatewayId}`,
    ...(action.ruleId.startsWith('stage:') || action.ruleId.startsWith('detector:') ? {} : { subjectRef: { type: 'Rule', id: action.ruleId } }),
  };
}
