import { sql, type Kysely } from 'kysely';

/** A revoked data plane's name can be used again: names are unique among live data planes only. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX data_planes_name_uq`.execute(db);
  await sql`CREATE UNIQUE INDEX data_planes_name_uq ON data_planes (workspace_id, lower(name)) WHERE revoked_at IS NULL`.execute(db);
}
