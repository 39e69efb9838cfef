import { sql, type Kysely } from 'kysely';

/**
 * The audit store (contract: `schema/audit/types.ts`). One row per leg of a call,
 * partitioned by `occurred_at` (declarative range partitions, one per UTC day, created
 * ahead by the ingest; the default partition catches anything outside them so no entry is
 * ever refused for its date). The primary key includes the partition key, as Postgres
 * requires; a retried batch carries the same `(occurred_at, id)`, so ingest is idempotent
 * with `ON CONFLICT DO NOTHING`. No foreign keys: the trail outlives the things it names,
 * and ingest must stay fast.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE audit_entries (
      id uuid NOT NULL,
      occurred_at timestamptz NOT NULL,
      workspace_id uuid NOT NULL,
      correlation_id uuid NOT NULL,
      leg text NOT NULL,
      status text NOT NULL,
      duration_ms double precision,
      gateway_ms double precision,
      upstream_ms double precision,
      gateway_id uuid,
      server_id uuid,
      assignment_id uuid,
      host_id uuid,
      connection_id uuid,
      token_id uuid,
      user_id uuid,
      client_name text,
      client_version text,
      session_ref text,
      method text,
      feature_name text,
      json_rpc_id text,
      error_code integer,
      error_message text,
      policy_actions jsonb NOT NULL DEFAULT '[]'::jsonb,
      body text,
      body_truncated boolean NOT NULL DEFAULT false,
      headers jsonb,
      input_tokens integer,
      output_tokens integer,
      bytes_in integer,
      bytes_out integer,
      origin_ip text,
      user_agent text,
      data_plane_id uuid,
      data_plane_instance text NOT NULL,
      snapshot_version bigint,
      ingested_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (occurred_at, id)
    ) PARTITION BY RANGE (occurred_at)`.execute(db);
  await sql`CREATE TABLE audit_entries_default PARTITION OF audit_entries DEFAULT`.execute(db);
  await sql`CREATE INDEX audit_entries_workspace_time_ix ON audit_entries (workspace_id, occurred_at DESC)`.execute(db);
  await sql`CREATE INDEX audit_entries_correlation_ix ON audit_entries (workspace_id, correlation_id)`.execute(db);

  // Retention per workspace, in days; the partition job drops days older than the longest.
  await sql`ALTER TABLE workspaces ADD COLUMN audit_retention_days integer NOT NULL DEFAULT 90 CHECK (audit_retention_days BETWEEN 1 AND 3650)`.execute(db);
}
