import type { AuditPolicyAction } from '../../schema/audit/types.js';
import type { AuditEntryView } from './audit-log.service.js';

/**
 * An exported entry: the contract's `AuditEntry` (`schema/audit/types.ts`) with database
 * ids as UUIDs, plus `ingestedAt`. `body` and `headers` are present only in exports that
 * include bodies.
 */
export interface ExportedEntry {
  readonly id: string;
  readonly correlationId: string;
  readonly leg: string;
  readonly occurredAt: string;
  readonly ingestedAt: string;
  readonly status: string;
  readonly durationMs: number | null;
  readonly gatewayMs: number | null;
  readonly upstreamMs: number | null;
  readonly workspaceId: string;
  readonly gatewayId: string | null;
  readonly serverId: string | null;
  readonly assignmentId: string | null;
  readonly hostId: string | null;
  readonly connectionId: string | null;
  readonly tokenId: string | null;
  readonly userId: string | null;
  readonly clientName: string | null;
  readonly clientVersion: string | null;
  readonly sessionRef: string | null;
  readonly method: string | null;
  readonly featureName: string | null;
  readonly jsonRpcId: string | null;
  readonly errorCode: number | null;
  readonly errorMessage: string | null;
  readonly policyActions: readonly AuditPolicyAction[];
  readonly bodyTruncated: boolean;
  readonly inputTokens: number | null;
  readonly outputTokens: number | null;
  readonly bytesIn: number | null;
  readonly bytesOut: number | null;
  readonly originIp: string | null;
  readonly userAgent: string | null;
  readonly dataPlaneId: string | null;
  readonly dataPlaneInstance: string;
  readonly snapshotVersion: number | null;
  readonly body?: string | null;
  readonly headers?: Readonly<Record<string, string>> | null;
}

const iso = (d: Date | string) => (d instanceof Date ? d : new Date(d)).toISOString();

export function toExportedEntry(e: AuditEntryView, withBodies: boolean): ExportedEntry {
  const out: ExportedEntry = {
    id: e.id,
    correlationId: e.correlation_id,
    leg: e.leg,
    occurredAt: iso(e.occurred_at),
    ingestedAt: iso(e.ingested_at),
    status: e.status,
    durationMs: e.duration_ms,
    gatewayMs: e.gateway_ms,
    upstreamMs: e.upstream_ms,
    workspaceId: e.workspace_id,
    gatewayId: e.gateway_id,
    serverId: e.server_id,
    assignmentId: e.assignment_id,
    hostId: e.host_id,
    connectionId: e.connection_id,
    tokenId: e.token_id,
    userId: e.user_id,
    clientName: e.client_name,
    clientVersion: e.client_version,
    sessionRef: e.session_ref,
    method: e.method,
    featureName: e.feature_name,
    jsonRpcId: e.json_rpc_id,
    errorCode: e.error_code,
    errorMessage: e.error_message,
    policyActions: e.policy_actions ?? [],
    bodyTruncated: e.body_truncated,
    inputTokens: e.input_tokens,
    outputTokens: e.output_tokens,
    bytesIn: e.bytes_in,
    bytesOut: e.bytes_out,
    originIp: e.origin_ip,
    userAgent: e.user_agent,
    dataPlaneId: e.data_plane_id,
    dataPlaneInstance: e.data_plane_instance,
    snapshotVersion: e.snapshot_version === null ? null : Number(e.snapshot_version),
  };
  return withBodies ? { ...out, body: e.body ?? null, headers: e.headers ?? null } : out;
}

/** CSV columns in order; `body` and `headers` only when the export includes bodies. */
export function csvColumns(withBodies: boolean): readonly (keyof ExportedEntry)[] {
  const base: (keyof ExportedEntry)[] = [
    'id',
    'correlationId',
    'leg',
    'occurredAt',
    'ingestedAt',
    'status',
    'durationMs',
    'gatewayMs',
    'upstreamMs',
    'workspaceId',
    'gatewayId',
    'serverId',
    'assignmentId',
    'hostId',
    'connectionId',
    'tokenId',
    'userId',
    'clientName',
    'clientVersion',
    'sessionRef',
    'method',
    'featureName',
    'jsonRpcId',
    'errorCode',
    'errorMessage',
    'policyActions',
    'bodyTruncated',
    'inputTokens',
    'outputTokens',
    'bytesIn',
    'bytesOut',
    'originIp',
    'userAgent',
    'dataPlaneId',
    'dataPlaneInstance',
    'snapshotVersion',
  ];
  return withBodies ? [...base, 'body', 'headers'] : base;
}

const NUMERIC = /^[-+]?\d+(\.\d+)?([eE][-+]?\d+)?$/;

/**
 * One CSV field (RFC 4180): quoted when it holds a quote, comma, CR or LF, quotes
 * doubled. Text that a spreadsheet would run as a formula (starting with `=`, `+`, `-`,
 * `@`, tab or CR, and not a plain number) is prefixed with `'`: audit text comes from
 * clients and upstreams, and an export is opened by people.
 */
export function csvField(value: unknown): string {
  if (value === null || value === undefined) return '';
  let text: string;
  if (typeof value === 'string') {
    text = /^[=+\-@\t\r]/.test(value) && !NUMERIC.test(value) ? `'${value}` : value;
  } else if (typeof value === 'object') {
    text = JSON.stringify(value);
  } else {
    text = String(value);
  }
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function csvHeader(withBodies: boolean): string {
  return `${csvColumns(withBodies).join(',')}\r\n`;
}

export function csvRow(entry: ExportedEntry, withBodies: boolean): string {
  return `${csvColumns(withBodies)
    .map((c) => csvField(entry[c]))
    .join(',')}\r\n`;
}
