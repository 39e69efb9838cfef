import { sql, type Kysely } from 'kysely';

/**
 * The audit store's read side: indexes behind the log views, the reports and the OTLP
 * exporters, and the `log_exporters` table. Every index is declared on the partitioned
 * parent, so every partition (those that exist and those the ingest creates later) gets it.
 *
 * - Scoped log views (server, gateway, connection, host, user) page newest first through
 *   one `(workspace_id, <id>, occurred_at DESC)` index each; partial on `IS NOT NULL`,
 *   since many legs name no server or user.
 * - Reports read only the client legs: calls are counted on `client_response`, tokens on
 *   `client_request` + `client_response`. Two partial covering indexes hold exactly the
 *   columns the reports read, so they run as index-only scans over the window. A row is
 *   in at most one of them, so each costs an ingest one index insert for a quarter of the rows.
 * - OTLP exporters tail entries by `(ingested_at, id)` per workspace.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  for (const column of ['gateway_id', 'server_id', 'connection_id', 'host_id', 'user_id']) {
    const name = `audit_entries_${column.replace(/_id$/, '')}_time_ix`;
    await sql`CREATE INDEX ${sql.id(name)} ON audit_entries (workspace_id, ${sql.id(column)}, occurred_at DESC) WHERE ${sql.id(column)} IS NOT NULL`.execute(db);
  }
  await sql`
    CREATE INDEX audit_entries_report_calls_ix ON audit_entries (workspace_id, occurred_at)
      INCLUDE (status, duration_ms, feature_name, server_id, gateway_id, user_id, input_tokens, output_tokens)
      WHERE leg = 'client_response'`.execute(db);
  await sql`
    CREATE INDEX audit_entries_report_requests_ix ON audit_entries (workspace_id, occurred_at)
      INCLUDE (feature_name, server_id, gateway_id, user_id, input_tokens, output_tokens)
      WHERE leg = 'client_request'`.execute(db);
  await sql`CREATE INDEX audit_entries_ingested_ix ON audit_entries (workspace_id, ingested_at, id)`.execute(db);

  await sql`
    CREATE TABLE log_exporters (
      id uuid PRIMARY KEY,
      workspace_id uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      name text NOT NULL,
      preset text NOT NULL,
      endpoint text NOT NULL,
      encoding text NOT NULL CHECK (encoding IN ('json', 'protobuf')),
      headers jsonb NOT NULL DEFAULT '{}'::jsonb,
      include_bodies boolean NOT NULL DEFAULT false,
      enabled boolean NOT NULL DEFAULT true,
      batch_size integer NOT NULL DEFAULT 500 CHECK (batch_size BETWEEN 1 AND 5000),
      cursor_ingested_at timestamptz NOT NULL,
      cursor_id uuid,
      status text NOT NULL DEFAULT 'idle' CHECK (status IN ('idle', 'ok', 'retrying', 'failed')),
      delivered_count bigint NOT NULL DEFAULT 0,
      consecutive_failures integer NOT NULL DEFAULT 0,
      next_attempt_at timestamptz,
      last_attempt_at timestamptz,
      last_success_at timestamptz,
      last_error text,
      last_error_at timestamptz,
      lease_owner text,
      lease_until timestamptz,
      created_by text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (workspace_id, id)
    )`.execute(db);
  await sql`CREATE UNIQUE INDEX log_exporters_name_uq ON log_exporters (workspace_id, lower(name))`.execute(db);
  await sql`CREATE INDEX log_exporters_due_ix ON log_exporters (next_attempt_at) WHERE enabled AND status <> 'failed'`.execute(db);
}
