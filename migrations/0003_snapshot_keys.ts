import { sql, type Kysely } from 'kysely';

/**
 * Each workspace's snapshot key: the random AES-256 key its snapshots' secrets are sealed
 * under for data planes, stored sealed by the vault (`{ keyId, sealed }`), created lazily
 * by the publisher. Null until the first publish.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE workspaces ADD COLUMN snapshot_key jsonb`.execute(db);
}
