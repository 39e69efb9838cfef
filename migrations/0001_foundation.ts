import { sql, type Kysely } from 'kysely';

/**
 * Workspaces, people, roles and capabilities, teams, admin API keys and the workspace
 * event log. Every table below `workspaces` carries `workspace_id`, and references
 * between tables include it, so a row can never point into another workspace.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE workspaces (
      id uuid PRIMARY KEY,
      name text NOT NULL,
      date_format text NOT NULL DEFAULT 'YYYY_MM_DD',
      time_format text NOT NULL DEFAULT 'H24',
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);

  await sql`
    CREATE TABLE roles (
      id uuid NOT NULL,
      workspace_id uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      name text NOT NULL,
      description text NOT NULL DEFAULT '',
      builtin text,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (id),
      UNIQUE (workspace_id, id)
    )`.execute(db);
  await sql`CREATE UNIQUE INDEX roles_name_uq ON roles (workspace_id, lower(name))`.execute(db);
  await sql`CREATE UNIQUE INDEX roles_builtin_uq ON roles (workspace_id, builtin) WHERE builtin IS NOT NULL`.execute(db);

  await sql`
    CREATE TABLE role_capabilities (
      workspace_id uuid NOT NULL,
      role_id uuid NOT NULL,
      capability text NOT NULL,
      PRIMARY KEY (role_id, capability),
      FOREIGN KEY (workspace_id, role_id) REFERENCES roles (workspace_id, id) ON DELETE CASCADE
    )`.execute(db);

  await sql`
    CREATE TABLE users (
      id uuid PRIMARY KEY,
      workspace_id uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      email text NOT NULL,
      name text NOT NULL DEFAULT '',
      state text NOT NULL CHECK (state IN ('invited', 'active', 'deactivated')),
      role_id uuid NOT NULL,
      invited_at timestamptz NOT NULL DEFAULT now(),
      activated_at timestamptz,
      deactivated_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (workspace_id, id),
      FOREIGN KEY (workspace_id, role_id) REFERENCES roles (workspace_id, id)
    )`.execute(db);
  await sql`CREATE UNIQUE INDEX users_email_uq ON users (workspace_id, lower(email))`.execute(db);
  await sql`CREATE INDEX users_role_idx ON users (workspace_id, role_id)`.execute(db);

  await sql`
    CREATE TABLE teams (
      id uuid PRIMARY KEY,
      workspace_id uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      name text NOT NULL,
      description text NOT NULL DEFAULT '',
      disabled boolean NOT NULL DEFAULT false,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (workspace_id, id)
    )`.execute(db);
  await sql`CREATE UNIQUE INDEX teams_name_uq ON teams (workspace_id, lower(name))`.execute(db);

  await sql`
    CREATE TABLE team_members (
      workspace_id uuid NOT NULL,
      team_id uuid NOT NULL,
      user_id uuid NOT NULL,
      added_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (team_id, user_id),
      FOREIGN KEY (workspace_id, team_id) REFERENCES teams (workspace_id, id) ON DELETE CASCADE,
      FOREIGN KEY (workspace_id, user_id) REFERENCES users (workspace_id, id) ON DELETE CASCADE
    )`.execute(db);
  await sql`CREATE INDEX team_members_user_idx ON team_members (workspace_id, user_id)`.execute(db);

  await sql`
    CREATE TABLE api_keys (
      id uuid PRIMARY KEY,
      workspace_id uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      name text NOT NULL,
      role_id uuid NOT NULL,
      token_hash text NOT NULL UNIQUE,
      token_prefix text NOT NULL,
      created_by text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      last_used_at timestamptz,
      revoked_at timestamptz,
      FOREIGN KEY (workspace_id, role_id) REFERENCES roles (workspace_id, id)
    )`.execute(db);
  await sql`CREATE INDEX api_keys_workspace_idx ON api_keys (workspace_id, created_at)`.execute(db);
  await sql`CREATE INDEX api_keys_role_idx ON api_keys (workspace_id, role_id) WHERE revoked_at IS NULL`.execute(db);

  await sql`
    CREATE TABLE workspace_events (
      seq bigserial PRIMARY KEY,
      id uuid NOT NULL UNIQUE,
      workspace_id uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      type text NOT NULL,
      subject_type text NOT NULL,
      subject_id text NOT NULL,
      actor text NOT NULL,
      details jsonb NOT NULL DEFAULT '{}'::jsonb,
      created_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`CREATE INDEX workspace_events_ws_idx ON workspace_events (workspace_id, seq DESC)`.execute(db);
}
