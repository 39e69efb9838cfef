import type { ColumnType, Generated, Kysely, Selectable } from 'kysely';
import type { AuditLeg, AuditPolicyAction, AuditStatus } from '../../schema/audit/types.js';
import type { SealedSecret } from '../servers/server.table.js';
import type { DB } from '../db/tables.js';
import type { Timestamp } from '../workspaces/workspace.table.js';

type Json<T> = ColumnType<T, string | undefined, string>;

/**
 * `audit_entries` as the read side sees it (the table is created by migration 0006; the
 * ingest owns writes). One row per leg; the contract is `schema/audit/types.ts`.
 */
export interface AuditEntryTable {
  id: string;
  occurred_at: Timestamp;
  workspace_id: string;
  correlation_id: string;
  leg: AuditLeg;
  status: AuditStatus;
  duration_ms: number | null;
  gateway_ms: number | null;
  upstream_ms: number | null;
  gateway_id: string | null;
  server_id: string | null;
  assignment_id: string | null;
  host_id: string | null;
  connection_id: string | null;
  token_id: string | null;
  user_id: string | null;
  client_name: string | null;
  client_version: string | null;
  session_ref: string | null;
  method: string | null;
  feature_name: string | null;
  json_rpc_id: string | null;
  error_code: number | null;
  error_message: string | null;
  policy_actions: Json<AuditPolicyAction[]>;
  body: string | null;
  body_truncated: Generated<boolean>;
  headers: Json<Record<string, string> | null>;
  input_tokens: number | null;
  output_tokens: number | null;
  bytes_in: number | null;
  bytes_out: number | null;
  origin_ip: string | null;
  user_agent: string | null;
  data_plane_id: string | null;
  data_plane_instance: string;
  snapshot_version: ColumnType<string | null, string | number | null, string | number | null>;
  ingested_at: Generated<Date>;
}
export type AuditEntryRow = Selectable<AuditEntryTable>;

export type LogExporterPreset = 'datadog' | 'grafana_cloud' | 'honeycomb' | 'new_relic' | 'collector';
export type LogExporterEncoding = 'json' | 'protobuf';
/**
 * `idle`: nothing delivered yet. `ok`: the last delivery succeeded. `retrying`: the
 * collector was unreachable or answered 429/5xx; the same batch is sent again after a
 * backoff. `failed`: the collector refused (4xx other than 429); delivery stops until the
 * exporter is updated or retried, and nothing is skipped.
 */
export type LogExporterStatus = 'idle' | 'ok' | 'retrying' | 'failed';

/** An OTLP/HTTP log destination of one workspace (migration 0010). */
export interface LogExporterTable {
  id: string;
  workspace_id: string;
  name: string;
  preset: LogExporterPreset;
  endpoint: string;
  encoding: LogExporterEncoding;
  /** Header name (lowercase) → value sealed in the vault; values never leave the control plane except to the collector. */
  headers: Json<Record<string, SealedSecret>>;
  include_bodies: Generated<boolean>;
  enabled: Generated<boolean>;
  batch_size: Generated<number>;
  /** Entries ingested at or before this time (and, at that time, with an id ≤ cursor_id) are delivered. */
  cursor_ingested_at: Timestamp;
  cursor_id: string | null;
  status: Generated<LogExporterStatus>;
  delivered_count: ColumnType<string, never, string | number>;
  consecutive_failures: Generated<number>;
  next_attempt_at: Timestamp | null;
  last_attempt_at: Timestamp | null;
  last_success_at: Timestamp | null;
  last_error: string | null;
  last_error_at: Timestamp | null;
  lease_owner: string | null;
  lease_until: Timestamp | null;
  created_by: string;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}
export type LogExporterRow = Selectable<LogExporterTable>;

/** The tables the audit read side uses, including the ones other aggregates own. */
export type AuditReadDB = Omit<DB, 'audit_entries' | 'log_exporters'> & {
  audit_entries: AuditEntryTable;
  log_exporters: LogExporterTable;
};

/**
 * The shared Kysely handle seen with the audit tables. The tables are declared here rather
 * than in `db/tables.ts` so the read side stays in its own folder; same connection, same
 * transaction rules.
 */
export function auditDb(db: Kysely<DB>): Kysely<AuditReadDB> {
  return db as unknown as Kysely<AuditReadDB>;
}
