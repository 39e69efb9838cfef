import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { SNAPSHOT_KEY_BYTES, sealSnapshotSecret, type EncryptedSecret } from '../../schema/snapshot/index.js';
import type { DB } from '../db/tables.js';
import type { Vault } from '../identities/vault.js';
import type { SealedSecret } from '../servers/server.table.js';

/** A workspace's snapshot key as `workspaces.snapshot_key` holds it: sealed by the vault. */
export interface StoredSnapshotKey {
  readonly keyId: string;
  readonly sealed: SealedSecret;
}

/** A workspace's snapshot key, opened. Lives only in memory. */
export interface SnapshotKey {
  readonly id: string;
  readonly key: Buffer;
}

const vaultContext = (workspaceId: string, keyId: string) => `workspace:${workspaceId}:snapshot-key:${keyId}`;

/**
 * The workspace's snapshot key, created on first use. Safe against several control-plane
 * processes creating it at once: only the first write wins and everyone reads that one.
 */
export async function loadOrCreateSnapshotKey(db: Kysely<DB>, vault: Vault, workspaceId: string): Promise<SnapshotKey> {
  const row = await db.selectFrom('workspaces').select('snapshot_key').where('id', '=', workspaceId).executeTakeFirst();
  if (!row) throw new Error(`workspace ${workspaceId} does not exist`);
  if (row.snapshot_key) return openStored(vault, workspaceId, row.snapshot_key);

  const key = randomBytes(SNAPSHOT_KEY_BYTES);
  const keyId = `sk_${randomBytes(8).toString('hex')}`;
  const stored: StoredSnapshotKey = { keyId, sealed: vault.seal(key.toString('base64'), vaultContext(workspaceId, keyId)) };
  const written = await db
    .updateTable('workspaces')
    .set({ snapshot_key: JSON.stringify(stored) })
    .where('id', '=', workspaceId)
    .where('snapshot_key', 'is', null)
    .returning('snapshot_key')
    .executeTakeFirst();
  if (written?.snapshot_key) return { id: keyId, key };
  const again = await db.selectFrom('workspaces').select('snapshot_key').where('id', '=', workspaceId).executeTakeFirstOrThrow();
  return openStored(vault, workspaceId, again.snapshot_key!);
}

function openStored(vault: Vault, workspaceId: string, stored: StoredSnapshotKey): SnapshotKey {
  return { id: stored.keyId, key: Buffer.from(vault.open(stored.sealed, vaultContext(workspaceId, stored.keyId)), 'base64') };
}

/**
 * Turns secrets sealed at rest by the vault into secrets sealed for data planes under the
 * workspace's snapshot key, deterministically (see `sealSnapshotSecret`), so an unchanged
 * secret compiles to an unchanged ciphertext. The vault context becomes the `aad`.
 */
export class SnapshotSecretSealer {
  constructor(
    private readonly vault: Vault,
    private readonly snapshotKey: SnapshotKey,
  ) {}

  reseal(sealed: SealedSecret, context: string): EncryptedSecret {
    return sealSnapshotSecret(this.snapshotKey.key, this.snapshotKey.id, this.vault.open(sealed, context), context);
  }

  /** Seals a value generated while reading (the rule hash salt on first publish) for storage. */
  sealAtRest(plaintext: string, context: string): SealedSecret {
    return this.vault.seal(plaintext, context);
  }
}
