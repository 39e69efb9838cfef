import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { DB } from '../db/tables.js';
import type { SealedSecret } from '../servers/server.table.js';
import { ruleHashSaltContext } from './rule-secrets.js';

/**
 * The workspace's rule hash salt as stored (vault-sealed), created on first use: 32
 * random bytes, base64. Safe against several processes creating it at once: only the
 * first write wins and everyone reads that one.
 */
export async function loadOrCreateRuleHashSalt(
  db: Kysely<DB>,
  workspaceId: string,
  seal: (plaintext: string, context: string) => SealedSecret,
  stored?: SealedSecret | null,
): Promise<SealedSecret> {
  if (stored) return stored;
  if (stored === undefined) {
    const row = await db.selectFrom('workspaces').select('rule_hash_salt').where('id', '=', workspaceId).executeTakeFirst();
    if (!row) throw new Error(`workspace ${workspaceId} does not exist`);
    if (row.rule_hash_salt) return row.rule_hash_salt;
  }
  const sealed = seal(randomBytes(32).toString('base64'), ruleHashSaltContext(workspaceId));
  const written = await db
    .updateTable('workspaces')
    .set({ rule_hash_salt: JSON.stringify(sealed) })
    .where('id', '=', workspaceId)
    .where('rule_hash_salt', 'is', null)
    .returning('rule_hash_salt')
    .executeTakeFirst();
  if (written?.rule_hash_salt) return written.rule_hash_salt;
  const again = await db.selectFrom('workspaces').select('rule_hash_salt').where('id', '=', workspaceId).executeTakeFirstOrThrow();
  return again.rule_hash_salt!;
}
