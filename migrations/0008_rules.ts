import { sql, type Kysely } from 'kysely';

/**
 * Gateway content rules and custom rule engines ([rules]). Rules are an ordered list per
 * gateway; what a rule detects, where it applies and what it does are JSON documents in
 * the snapshot's own shapes (`schema/snapshot/types.ts`), validated by the service before
 * they are written. Engine header values and signing secrets are vault-sealed. The
 * workspace gains the salt of the `hash` action (vault-sealed, generated on first use)
 * and gateways their audit settings.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE workspaces ADD COLUMN rule_hash_salt jsonb`.execute(db);
  await sql`
    ALTER TABLE gateways
      ADD COLUMN audit_bodies text NOT NULL DEFAULT 'metadata' CHECK (audit_bodies IN ('full', 'metadata')),
      ADD COLUMN audit_max_body_bytes integer NOT NULL DEFAULT 65536 CHECK (audit_max_body_bytes BETWEEN 0 AND 16777216)`.execute(db);

  await sql`
    CREATE TABLE rule_engines (
      id uuid PRIMARY KEY,
      workspace_id uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      name text NOT NULL,
      kind text NOT NULL CHECK (kind IN ('webhook', 'lakera', 'bedrock')),
      url text NOT NULL,
      method text NOT NULL DEFAULT 'POST' CHECK (method IN ('POST', 'PUT')),
      headers jsonb NOT NULL DEFAULT '{}',
      forward_headers jsonb NOT NULL DEFAULT '[]',
      signing_secret jsonb NOT NULL,
      timeout_ms integer NOT NULL DEFAULT 30000 CHECK (timeout_ms BETWEEN 1 AND 300000),
      allow_private_network boolean NOT NULL DEFAULT false,
      options jsonb NOT NULL DEFAULT '{}',
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (workspace_id, id)
    )`.execute(db);
  await sql`CREATE UNIQUE INDEX rule_engines_name_uq ON rule_engines (workspace_id, lower(name))`.execute(db);

  await sql`
    CREATE TABLE rules (
      id uuid PRIMARY KEY,
      workspace_id uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      gateway_id uuid NOT NULL,
      name text NOT NULL,
      enabled boolean NOT NULL DEFAULT true,
      position integer NOT NULL,
      detection jsonb NOT NULL,
      hooks jsonb NOT NULL,
      scope jsonb NOT NULL,
      action jsonb NOT NULL,
      failure_mode text NOT NULL DEFAULT 'closed' CHECK (failure_mode IN ('open', 'closed')),
      raise_alert boolean NOT NULL DEFAULT false,
      engine_id uuid,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (workspace_id, id),
      FOREIGN KEY (workspace_id, gateway_id) REFERENCES gateways (workspace_id, id) ON DELETE CASCADE,
      FOREIGN KEY (workspace_id, engine_id) REFERENCES rule_engines (workspace_id, id)
    )`.execute(db);
  await sql`CREATE UNIQUE INDEX rules_name_uq ON rules (workspace_id, gateway_id, lower(name))`.execute(db);
  await sql`CREATE INDEX rules_gateway_idx ON rules (workspace_id, gateway_id, position)`.execute(db);
  await sql`CREATE INDEX rules_engine_idx ON rules (engine_id) WHERE engine_id IS NOT NULL`.execute(db);
}
