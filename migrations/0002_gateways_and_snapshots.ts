import { sql, type Kysely } from 'kysely';

/**
 * Servers (and containers), discovered features and discovery history, gateways and their
 * team provisioning, assignments with provisioning, overrides and pins, hosts, connections
 * and access tokens, data planes, and published snapshots. Kill switches are `disabled`
 * columns on each object that can be switched off.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE workspaces ADD COLUMN disabled boolean NOT NULL DEFAULT false`.execute(db);

  await sql`
    CREATE TABLE servers (
      id uuid PRIMARY KEY,
      workspace_id uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      name text NOT NULL,
      description text NOT NULL DEFAULT '',
      kind text NOT NULL CHECK (kind IN ('remote', 'managed', 'workstation')),
      transport text NOT NULL CHECK (transport IN ('streamable-http', 'sse', 'stdio', 'http', 'tunnel')),
      url text,
      allow_insecure boolean NOT NULL DEFAULT false,
      command text,
      args jsonb NOT NULL DEFAULT '[]'::jsonb,
      env jsonb NOT NULL DEFAULT '{}'::jsonb,
      secret_env jsonb NOT NULL DEFAULT '{}'::jsonb,
      cwd text,
      auth_kind text NOT NULL DEFAULT 'none' CHECK (auth_kind IN ('none', 'headers', 'oauth')),
      auth_headers jsonb NOT NULL DEFAULT '{}'::jsonb,
      disabled boolean NOT NULL DEFAULT false,
      review_state text NOT NULL DEFAULT 'approved' CHECK (review_state IN ('approved', 'pending_review', 'rejected')),
      review_reason text,
      last_discovery_at timestamptz,
      last_discovery_status text,
      last_discovery_error text,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (workspace_id, id)
    )`.execute(db);
  await sql`CREATE UNIQUE INDEX servers_name_uq ON servers (workspace_id, lower(name))`.execute(db);

  await sql`
    CREATE TABLE server_containers (
      id uuid PRIMARY KEY,
      workspace_id uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      name text NOT NULL,
      description text NOT NULL DEFAULT '',
      disabled boolean NOT NULL DEFAULT false,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (workspace_id, id)
    )`.execute(db);
  await sql`CREATE UNIQUE INDEX server_containers_name_uq ON server_containers (workspace_id, lower(name))`.execute(db);
  await sql`
    CREATE TABLE server_container_members (
      workspace_id uuid NOT NULL,
      container_id uuid NOT NULL,
      server_id uuid NOT NULL,
      PRIMARY KEY (container_id, server_id),
      FOREIGN KEY (workspace_id, container_id) REFERENCES server_containers (workspace_id, id) ON DELETE CASCADE,
      FOREIGN KEY (workspace_id, server_id) REFERENCES servers (workspace_id, id) ON DELETE CASCADE
    )`.execute(db);

  await sql`
    CREATE TABLE server_features (
      workspace_id uuid NOT NULL,
      server_id uuid NOT NULL,
      kind text NOT NULL CHECK (kind IN ('tool', 'prompt', 'resource', 'resourceTemplate')),
      name text NOT NULL,
      title text,
      description text,
      definition jsonb NOT NULL,
      hash text NOT NULL,
      first_seen_at timestamptz NOT NULL DEFAULT now(),
      changed_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (server_id, kind, name),
      FOREIGN KEY (workspace_id, server_id) REFERENCES servers (workspace_id, id) ON DELETE CASCADE
    )`.execute(db);
  await sql`CREATE INDEX server_features_ws_idx ON server_features (workspace_id, server_id)`.execute(db);

  await sql`
    CREATE TABLE discovery_runs (
      id uuid PRIMARY KEY,
      workspace_id uuid NOT NULL,
      server_id uuid NOT NULL,
      started_at timestamptz NOT NULL,
      finished_at timestamptz NOT NULL,
      status text NOT NULL CHECK (status IN ('ok', 'failed')),
      error_code text,
      error_message text,
      server_info jsonb,
      feature_count integer NOT NULL DEFAULT 0,
      added jsonb NOT NULL DEFAULT '[]'::jsonb,
      changed jsonb NOT NULL DEFAULT '[]'::jsonb,
      removed jsonb NOT NULL DEFAULT '[]'::jsonb,
      FOREIGN KEY (workspace_id, server_id) REFERENCES servers (workspace_id, id) ON DELETE CASCADE
    )`.execute(db);
  await sql`CREATE INDEX discovery_runs_server_idx ON discovery_runs (workspace_id, server_id, started_at DESC)`.execute(db);

  await sql`
    CREATE TABLE gateways (
      id uuid PRIMARY KEY,
      workspace_id uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      name text NOT NULL,
      slug text NOT NULL CHECK (slug ~ '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$'),
      description text NOT NULL DEFAULT '',
      disabled boolean NOT NULL DEFAULT false,
      archived_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (workspace_id, id),
      UNIQUE (workspace_id, slug)
    )`.execute(db);

  await sql`
    CREATE TABLE gateway_teams (
      workspace_id uuid NOT NULL,
      gateway_id uuid NOT NULL,
      team_id uuid NOT NULL,
      PRIMARY KEY (gateway_id, team_id),
      FOREIGN KEY (workspace_id, gateway_id) REFERENCES gateways (workspace_id, id) ON DELETE CASCADE,
      FOREIGN KEY (workspace_id, team_id) REFERENCES teams (workspace_id, id) ON DELETE CASCADE
    )`.execute(db);
  await sql`CREATE INDEX gateway_teams_team_idx ON gateway_teams (workspace_id, team_id)`.execute(db);

  await sql`
    CREATE TABLE assignments (
      id uuid PRIMARY KEY,
      workspace_id uuid NOT NULL,
      gateway_id uuid NOT NULL,
      server_id uuid,
      container_id uuid,
      identity_scheme text NOT NULL CHECK (identity_scheme IN ('shared', 'personal')),
      namespace_prefix text NOT NULL DEFAULT '',
      disabled boolean NOT NULL DEFAULT false,
      provisioning jsonb NOT NULL,
      metadata_overrides jsonb NOT NULL DEFAULT '{}'::jsonb,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (workspace_id, id),
      CHECK ((server_id IS NULL) <> (container_id IS NULL)),
      FOREIGN KEY (workspace_id, gateway_id) REFERENCES gateways (workspace_id, id) ON DELETE CASCADE,
      FOREIGN KEY (workspace_id, server_id) REFERENCES servers (workspace_id, id),
      FOREIGN KEY (workspace_id, container_id) REFERENCES server_containers (workspace_id, id)
    )`.execute(db);
  await sql`CREATE INDEX assignments_gateway_idx ON assignments (workspace_id, gateway_id)`.execute(db);

  await sql`
    CREATE TABLE assignment_pins (
      workspace_id uuid NOT NULL,
      assignment_id uuid NOT NULL,
      server_id uuid NOT NULL,
      kind text NOT NULL,
      name text NOT NULL,
      pinned_hash text NOT NULL,
      pinned_definition jsonb NOT NULL,
      pinned_at timestamptz NOT NULL DEFAULT now(),
      pinned_by text NOT NULL,
      PRIMARY KEY (assignment_id, server_id, kind, name),
      FOREIGN KEY (workspace_id, assignment_id) REFERENCES assignments (workspace_id, id) ON DELETE CASCADE
    )`.execute(db);

  await sql`
    CREATE TABLE hosts (
      id uuid PRIMARY KEY,
      workspace_id uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      name text NOT NULL,
      kind text NOT NULL CHECK (kind IN ('agent', 'app')),
      description text NOT NULL DEFAULT '',
      disabled boolean NOT NULL DEFAULT false,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (workspace_id, id)
    )`.execute(db);
  await sql`CREATE UNIQUE INDEX hosts_name_uq ON hosts (workspace_id, lower(name))`.execute(db);

  await sql`
    CREATE TABLE connections (
      id uuid PRIMARY KEY,
      workspace_id uuid NOT NULL,
      host_id uuid NOT NULL,
      gateway_id uuid NOT NULL,
      user_id uuid,
      name text NOT NULL,
      disabled boolean NOT NULL DEFAULT false,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (workspace_id, id),
      FOREIGN KEY (workspace_id, host_id) REFERENCES hosts (workspace_id, id) ON DELETE CASCADE,
      FOREIGN KEY (workspace_id, gateway_id) REFERENCES gateways (workspace_id, id) ON DELETE CASCADE,
      FOREIGN KEY (workspace_id, user_id) REFERENCES users (workspace_id, id) ON DELETE CASCADE
    )`.execute(db);
  await sql`CREATE INDEX connections_host_idx ON connections (workspace_id, host_id)`.execute(db);

  await sql`
    CREATE TABLE access_tokens (
      id uuid PRIMARY KEY,
      workspace_id uuid NOT NULL,
      connection_id uuid NOT NULL,
      name text NOT NULL,
      token_hash text NOT NULL UNIQUE,
      token_prefix text NOT NULL,
      created_by text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      expires_at timestamptz,
      last_used_at timestamptz,
      revoked_at timestamptz,
      FOREIGN KEY (workspace_id, connection_id) REFERENCES connections (workspace_id, id) ON DELETE CASCADE
    )`.execute(db);
  await sql`CREATE INDEX access_tokens_connection_idx ON access_tokens (workspace_id, connection_id)`.execute(db);

  await sql`
    CREATE TABLE data_planes (
      id uuid PRIMARY KEY,
      workspace_id uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      name text NOT NULL,
      token_hash text NOT NULL UNIQUE,
      token_prefix text NOT NULL,
      wrapped_delivery_key jsonb NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      revoked_at timestamptz,
      last_seen_at timestamptz,
      acked_version bigint,
      acked_at timestamptz,
      last_rejection text,
      last_rejected_version bigint,
      last_rejected_at timestamptz,
      UNIQUE (workspace_id, id)
    )`.execute(db);
  await sql`CREATE UNIQUE INDEX data_planes_name_uq ON data_planes (workspace_id, lower(name))`.execute(db);

  await sql`
    CREATE TABLE snapshots (
      workspace_id uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      version bigint NOT NULL,
      content_hash text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      body jsonb NOT NULL,
      PRIMARY KEY (workspace_id, version)
    )`.execute(db);
}
