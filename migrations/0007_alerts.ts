import { sql, type Kysely } from 'kysely';

/**
 * Alerts and gateway access requests.
 *
 * `alerts`: one row per folded run of identical occurrences. Occurrences with the same
 * `(type, fold_key)` fold into the row whose `fold_open` is set: the partial unique index
 * lets at most one such row exist per key, so concurrent raisers on any number of
 * control-plane processes meet on it (`INSERT … ON CONFLICT … DO UPDATE`). A row stops
 * folding when it is resolved or when the fold window passes without a new occurrence
 * (closed lazily by the next raise). `seq` orders the list and is its page cursor.
 *
 * `gateway_access_requests`: a user asks for a gateway; an admin approves (adding the user to
 * a team that has the gateway, `team_id`) or denies. At most one pending request per user
 * and gateway. `team_id` has no foreign key: the request is history and outlives the team.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE alerts (
      seq bigint GENERATED ALWAYS AS IDENTITY,
      id uuid PRIMARY KEY,
      workspace_id uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      severity text NOT NULL CHECK (severity IN ('error', 'warning', 'info')),
      type text NOT NULL,
      subject text NOT NULL,
      subject_type text,
      subject_id text,
      details jsonb NOT NULL DEFAULT '{}'::jsonb,
      fold_key text NOT NULL,
      fold_open boolean NOT NULL DEFAULT true,
      count integer NOT NULL DEFAULT 1 CHECK (count >= 1),
      first_seen_at timestamptz NOT NULL DEFAULT now(),
      last_seen_at timestamptz NOT NULL DEFAULT now(),
      acknowledged_at timestamptz,
      acknowledged_by text,
      resolved_at timestamptz,
      resolved_by text,
      created_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (workspace_id, id),
      UNIQUE (seq),
      CHECK (resolved_at IS NULL OR NOT fold_open),
      CHECK ((acknowledged_at IS NULL) = (acknowledged_by IS NULL)),
      CHECK ((resolved_at IS NULL) = (resolved_by IS NULL))
    )`.execute(db);
  await sql`CREATE UNIQUE INDEX alerts_fold_uq ON alerts (workspace_id, type, fold_key) WHERE fold_open`.execute(db);
  await sql`CREATE INDEX alerts_fold_key_unresolved_ix ON alerts (workspace_id, type, fold_key) WHERE resolved_at IS NULL`.execute(db);
  await sql`CREATE INDEX alerts_workspace_seq_ix ON alerts (workspace_id, seq DESC)`.execute(db);
  await sql`CREATE INDEX alerts_workspace_unresolved_ix ON alerts (workspace_id, seq DESC) WHERE resolved_at IS NULL`.execute(db);

  await sql`
    CREATE TABLE gateway_access_requests (
      id uuid PRIMARY KEY,
      workspace_id uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      user_id uuid NOT NULL,
      gateway_id uuid NOT NULL,
      reason text NOT NULL DEFAULT '',
      state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'approved', 'denied')),
      requested_by text NOT NULL,
      decided_by text,
      decided_at timestamptz,
      decision_note text,
      team_id uuid,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (workspace_id, id),
      CHECK ((state = 'pending') = (decided_at IS NULL)),
      CHECK ((state = 'pending') = (decided_by IS NULL)),
      CHECK (state = 'approved' OR team_id IS NULL),
      FOREIGN KEY (workspace_id, user_id) REFERENCES users (workspace_id, id) ON DELETE CASCADE,
      FOREIGN KEY (workspace_id, gateway_id) REFERENCES gateways (workspace_id, id) ON DELETE CASCADE
    )`.execute(db);
  await sql`
    CREATE UNIQUE INDEX gateway_access_requests_pending_uq
      ON gateway_access_requests (workspace_id, user_id, gateway_id) WHERE state = 'pending'`.execute(db);
  await sql`CREATE INDEX gateway_access_requests_workspace_ix ON gateway_access_requests (workspace_id, created_at DESC, id)`.execute(db);
  await sql`CREATE INDEX gateway_access_requests_user_ix ON gateway_access_requests (workspace_id, user_id, created_at DESC)`.execute(db);
}
