import { sql, type Kysely } from 'kysely';

/**
 * Upstream identities: the handle on a credential Gatehouse presents to one server, which
 * admins see and switch off. A server's shared identity fronts the custom headers sealed on
 * the server row (the secrets stay there); personal identities (one user's own credential)
 * arrive in a later issue, so the kind is open to them already. Every server that has header
 * auth gets its shared identity here.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE identities (
      id uuid PRIMARY KEY,
      workspace_id uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      server_id uuid NOT NULL,
      kind text NOT NULL CHECK (kind IN ('shared', 'personal')),
      user_id uuid,
      name text NOT NULL,
      disabled boolean NOT NULL DEFAULT false,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (workspace_id, id),
      CHECK ((kind = 'shared') = (user_id IS NULL)),
      FOREIGN KEY (workspace_id, server_id) REFERENCES servers (workspace_id, id) ON DELETE CASCADE,
      FOREIGN KEY (workspace_id, user_id) REFERENCES users (workspace_id, id) ON DELETE CASCADE
    )`.execute(db);
  await sql`CREATE UNIQUE INDEX identities_shared_uq ON identities (workspace_id, server_id) WHERE kind = 'shared'`.execute(db);

  await sql`
    INSERT INTO identities (id, workspace_id, server_id, kind, name)
    SELECT gen_random_uuid(), workspace_id, id, 'shared', name FROM servers WHERE auth_kind = 'headers'`.execute(db);
}
