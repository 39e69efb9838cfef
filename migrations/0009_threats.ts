import { sql, type Kysely } from 'kysely';

/**
 * Threat detection at discovery and server registration (control-plane/servers/threats).
 *
 * Features: `threat_state` is `clear`, `flagged` (withheld from every gateway as FLAGGED)
 * or `approved` (an admin cleared the flag); `threat_hash` is the definition hash the
 * verdict was reached on, so a changed definition is scanned again; `threat_reasons` are
 * the rules that fired. `previous_hash`/`previous_definition` keep the definition before
 * the last change, for the rug-pull diff. Features stored before this migration have no
 * `threat_hash` and are scanned at their next discovery.
 *
 * Servers: `review_state` (from 0002) gains its first writer: a server whose name or URL
 * passes for another's waits in `pending_review`; `resembles_server_id` is that server,
 * `threat_reasons` the findings, `reviewed_by`/`reviewed_at` who approved it and when.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE server_features
      ADD COLUMN threat_state text NOT NULL DEFAULT 'clear' CHECK (threat_state IN ('clear', 'flagged', 'approved')),
      ADD COLUMN threat_score double precision NOT NULL DEFAULT 0,
      ADD COLUMN threat_reasons jsonb NOT NULL DEFAULT '[]'::jsonb,
      ADD COLUMN threat_hash text,
      ADD COLUMN threat_reviewed_by text,
      ADD COLUMN threat_reviewed_at timestamptz,
      ADD COLUMN previous_hash text,
      ADD COLUMN previous_definition jsonb`.execute(db);
  await sql`CREATE INDEX server_features_flagged_idx ON server_features (workspace_id) WHERE threat_state = 'flagged'`.execute(db);

  await sql`
    ALTER TABLE servers
      ADD COLUMN threat_reasons jsonb NOT NULL DEFAULT '[]'::jsonb,
      ADD COLUMN resembles_server_id uuid,
      ADD COLUMN reviewed_by text,
      ADD COLUMN reviewed_at timestamptz`.execute(db);
  // No foreign key on resembles_server_id: deleting the resembled server must not be blocked,
  // and the reason text keeps its name.
}
