import { JsonLogsSerializer, ProtobufLogsSerializer } from '@opentelemetry/otlp-transformer';
import { AUDIT_FORMAT_VERSION } from '../../schema/audit/types.js';
import type { AuditEntryView } from './audit-log.service.js';
import type { LogExporterEncoding } from './audit-log.table.js';

/** OTLP severity numbers (logs data model): INFO, WARN, ERROR. */
const SEVERITY = { ok: { number: 9, text: 'INFO' }, blocked: { number: 13, text: 'WARN' }, error: { number: 17, text: 'ERROR' } } as const;

type AttributeValue = string | number | boolean | AttributeValue[] | { [key: string]: AttributeValue };

/**
 * The subset of the OpenTelemetry SDK's `ReadableLogRecord` the official OTLP serializers
 * read. Building these directly lets the control plane use the reference encoders without
 * running an SDK logger pipeline.
 */
interface LogRecordInput {
  readonly hrTime: [number, number];
  readonly hrTimeObserved: [number, number];
  readonly severityNumber: number;
  readonly severityText: string;
  readonly body: string;
  readonly attributes: Record<string, AttributeValue>;
  readonly droppedAttributesCount: number;
  readonly resource: { readonly attributes: Record<string, AttributeValue> };
  readonly instrumentationScope: { readonly name: string; readonly version: string };
  readonly spanContext?: { readonly traceId: string; readonly spanId: string; readonly traceFlags: number };
}

export const CONTENT_TYPES: Record<LogExporterEncoding, string> = { protobuf: 'application/x-protobuf', json: 'application/json' };

/** `2024-05-01T12:00:00.123456Z` (or a Date) as OTLP's [seconds, nanoseconds]. */
function hrTime(value: Date | string, exact?: string): [number, number] {
  const text = exact ?? (value instanceof Date ? value.toISOString() : new Date(value).toISOString());
  const m = /^(.*T\d{2}:\d{2}:\d{2})(?:\.(\d+))?Z$/.exec(text);
  const seconds = Math.floor(Date.parse(`${m?.[1] ?? text}Z`) / 1000);
  const nanos = Number(((m?.[2] ?? '') + '000000000').slice(0, 9));
  return [seconds, nanos];
}

/** One line a person reads in a log viewer: `tools/call echo ok 12.3ms`. */
function summary(e: AuditEntryView): string {
  const parts = [e.leg, e.method ?? '', e.feature_name ?? '', e.status];
  if (e.duration_ms !== null) parts.push(`${Math.round(e.duration_ms * 10) / 10}ms`);
  if (e.error_message) parts.push(`- ${e.error_message}`);
  return parts.filter(Boolean).join(' ');
}

/**
 * Log record attributes from an entry. Names follow OpenTelemetry semantic conventions
 * where one exists (`rpc.method`, `client.address`, `user_agent.original`), and
 * `gatehouse.*` otherwise. Empty fields are left out.
 */
export function entryAttributes(e: AuditEntryView, includeBodies: boolean): Record<string, AttributeValue> {
  const a: Record<string, AttributeValue | null | undefined> = {
    'gatehouse.entry_id': e.id,
    'gatehouse.correlation_id': e.correlation_id,
    'gatehouse.leg': e.leg,
    'gatehouse.status': e.status,
    'gatehouse.duration_ms': e.duration_ms,
    'gatehouse.gateway_ms': e.gateway_ms,
    'gatehouse.upstream_ms': e.upstream_ms,
    'gatehouse.gateway.id': e.gateway_id,
    'gatehouse.server.id': e.server_id,
    'gatehouse.assignment.id': e.assignment_id,
    'gatehouse.host.id': e.host_id,
    'gatehouse.connection.id': e.connection_id,
    'gatehouse.token.id': e.token_id,
    'enduser.id': e.user_id,
    'gatehouse.client.name': e.client_name,
    'gatehouse.client.version': e.client_version,
    'gatehouse.session_ref': e.session_ref,
    'rpc.system': 'jsonrpc',
    'rpc.method': e.method,
    'gatehouse.feature': e.feature_name,
    'rpc.jsonrpc.request_id': e.json_rpc_id,
    'rpc.jsonrpc.error_code': e.error_code,
    'rpc.jsonrpc.error_message': e.error_message,
    'gatehouse.policy_actions': e.policy_actions?.length ? JSON.stringify(e.policy_actions) : null,
    'gatehouse.body_truncated': e.body_truncated,
    'gatehouse.tokens.input': e.input_tokens,
    'gatehouse.tokens.output': e.output_tokens,
    'gatehouse.bytes_in': e.bytes_in,
    'gatehouse.bytes_out': e.bytes_out,
    'client.address': e.origin_ip,
    'user_agent.original': e.user_agent,
    'gatehouse.data_plane.id': e.data_plane_id,
    'gatehouse.data_plane.instance': e.data_plane_instance,
    'gatehouse.snapshot_version': e.snapshot_version === null ? null : Number(e.snapshot_version),
    'gatehouse.body': includeBodies ? e.body : null,
    'gatehouse.headers': includeBodies && e.headers ? JSON.stringify(e.headers) : null,
  };
  return Object.fromEntries(Object.entries(a).filter((kv): kv is [string, AttributeValue] => kv[1] !== null && kv[1] !== undefined));
}

export interface OtlpResource {
  readonly workspaceId: string;
  readonly workspaceName: string;
}

/** An entry as an OTLP log record; the trace id is the correlation id, so a backend groups a call's legs. */
export function toLogRecord(
  e: AuditEntryView & { ingested_at_us?: string },
  resource: { readonly attributes: Record<string, AttributeValue> },
  includeBodies: boolean,
): LogRecordInput {
  const severity = SEVERITY[e.status] ?? SEVERITY.ok;
  return {
    hrTime: hrTime(e.occurred_at, e.occurred_at_us),
    hrTimeObserved: hrTime(e.ingested_at, e.ingested_at_us),
    severityNumber: severity.number,
    severityText: severity.text,
    body: summary(e),
    attributes: entryAttributes(e, includeBodies),
    droppedAttributesCount: 0,
    resource,
    instrumentationScope: { name: 'gatehouse.audit', version: String(AUDIT_FORMAT_VERSION) },
    spanContext: { traceId: e.correlation_id.replaceAll('-', ''), spanId: '', traceFlags: 0 },
  };
}

export function resourceOf(r: OtlpResource): { readonly attributes: Record<string, AttributeValue> } {
  return { attributes: { 'service.name': 'gatehouse', 'gatehouse.workspace.id': r.workspaceId, 'gatehouse.workspace.name': r.workspaceName } };
}

/** An `ExportLogsServiceRequest` with every entry, in the exporter's encoding, by the OpenTelemetry serializers. */
export function encodeLogs(
  entries: readonly (AuditEntryView & { ingested_at_us?: string })[],
  resource: OtlpResource,
  encoding: LogExporterEncoding,
  includeBodies: boolean,
): Uint8Array {
  const res = resourceOf(resource);
  const records = entries.map((e) => toLogRecord(e, res, includeBodies));
  const serializer = encoding === 'protobuf' ? ProtobufLogsSerializer : JsonLogsSerializer;
  const out = serializer.serializeRequest(records as never);
  if (!out) throw new Error('the OTLP serializer produced no output');
  return out;
}
