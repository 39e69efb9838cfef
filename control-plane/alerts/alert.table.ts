import type { ColumnType, Generated, Selectable } from 'kysely';
import type { Timestamp } from '../workspaces/workspace.table.js';

/**
 * What an alert is about. Stable API (stored, and a GraphQL enum): never rename one; add a
 * new one instead.
 */
export const ALERT_TYPES = [
  'GATEWAY_ACCESS_REQUEST',
  'FEATURE_DISCOVERED',
  'FEATURE_PROVISIONED',
  'CONTENT_RULE_TRIGGERED',
  'PIN_VIOLATION',
  'POISONING_SUSPECTED',
  'MIMICRY_SUSPECTED',
  'UPSTREAM_OUTAGE',
  'SNAPSHOT_REJECTED',
  'RATE_LIMIT_EXCEEDED',
  'CREDENTIAL_REFRESH_FAILED',
  'AUDIT_BUFFER_OVERFLOW',
] as const;
export type AlertType = (typeof ALERT_TYPES)[number];

/** Most severe first. */
export const ALERT_SEVERITIES = ['error', 'warning', 'info'] as const;
export type AlertSeverity = (typeof ALERT_SEVERITIES)[number];

/** Higher is more severe. */
export const SEVERITY_RANK: Readonly<Record<AlertSeverity, number>> = Object.freeze({ error: 3, warning: 2, info: 1 });

export interface AlertTable {
  seq: Generated<string>;
  id: string;
  workspace_id: string;
  severity: AlertSeverity;
  type: AlertType;
  /** One line a person reads in a list. */
  subject: string;
  /** What the alert is about (`Server`, `DataPlane`, `GatewayAccessRequest`…), when it is one object. */
  subject_type: string | null;
  /** Database id of that object. */
  subject_id: string | null;
  details: ColumnType<Record<string, unknown>, string | undefined, string>;
  fold_key: string;
  /** Further occurrences fold into this row while set. */
  fold_open: Generated<boolean>;
  count: Generated<number>;
  first_seen_at: Timestamp;
  last_seen_at: Timestamp;
  acknowledged_at: Timestamp | null;
  acknowledged_by: string | null;
  resolved_at: Timestamp | null;
  resolved_by: string | null;
  created_at: Timestamp;
}
export type AlertRow = Selectable<AlertTable>;
