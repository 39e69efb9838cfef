import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import type { EncryptedSecret } from './types.js';

/**
 * How secrets travel to data planes. Both planes use these functions and nothing else:
 *
 * - Each workspace has a random 32-byte **snapshot key**. Every secret of its snapshots is
 *   sealed under it with {@link sealSnapshotSecret}; `keyId` names the key.
 * - Each data plane has a **delivery key**, derived from its token with
 *   {@link deriveDeliveryKey}; the control plane keeps only a vault-sealed copy, the data
 *   plane derives it again from the token it was given.
 * - With every snapshot the control plane sends the snapshot key wrapped under the
 *   receiving data plane's delivery key ({@link wrapSnapshotKey}); the data plane unwraps
 *   it ({@link unwrapSnapshotKey}) and opens secrets with {@link openSnapshotSecret}.
 *
 * The snapshot body is the same for every data plane (and its hash stable across
 * compiles), while only holders of a data-plane token can read its secrets.
 */

/** Length of snapshot and delivery keys: AES-256. */
export const SNAPSHOT_KEY_BYTES = 32;

/** HKDF salt of {@link deriveDeliveryKey}. */
export const DELIVERY_KEY_SALT = 'gatehouse-delivery';

/** A secret could not be opened: wrong key, wrong `aad`, or tampered. */
export class SnapshotSecretError extends Error {
  override readonly name = 'SnapshotSecretError';
  constructor(
    readonly code: 'WRONG_KEY' | 'TAMPERED' | 'BAD_KEY',
    message: string,
  ) {
    super(message);
  }
}

/**
 * The delivery key of a data plane: HKDF-SHA256 of its token (UTF-8) with salt
 * {@link DELIVERY_KEY_SALT} and info = the data plane's id, 32 bytes.
 */
export function deriveDeliveryKey(dataPlaneToken: string, dataPlaneId: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(dataPlaneToken, 'utf8'), DELIVERY_KEY_SALT, dataPlaneId, SNAPSHOT_KEY_BYTES));
}

/** The `keyId` a wrapped snapshot key carries: the delivery key of data plane `dataPlaneId`. */
export function deliveryKeyId(dataPlaneId: string): string {
  return `delivery:${dataPlaneId}`;
}

/** The `aad` a wrapped snapshot key is bound to: its workspace and its own key id. */
export function snapshotKeyAad(workspaceId: string, snapshotKeyId: string): string {
  return `gatehouse:snapshot-key:${workspaceId}:${snapshotKeyId}`;
}

/**
 * Seals one snapshot secret under a snapshot key, **deterministically**: the IV is the
 * first 12 bytes of HMAC-SHA256(K', aad ‖ 0x00 ‖ plaintext), K' = HKDF-SHA256(key, info
 * 'gatehouse-snapshot-secret-iv'), so recompiling unchanged
 * secrets yields identical ciphertexts and an unchanged content hash. Reuse of an IV
 * happens only for an identical (aad, plaintext) pair, which then encrypts to the same
 * ciphertext and reveals nothing more than that equality (the SIV construction).
 * `aad` says where the secret belongs (`server:<id>:header:<name>`) and is bound in.
 */
export function sealSnapshotSecret(key: Uint8Array, keyId: string, plaintext: string, aad: string): EncryptedSecret {
  assertKey(key);
  // The IV comes from a MAC key derived from (not equal to) the encryption key: one key, one primitive.
  const macKey = Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), 'gatehouse-snapshot-secret-iv', 32));
  const iv = createHmac('sha256', macKey).update(aad, 'utf8').update('\u0000', 'utf8').update(plaintext, 'utf8').digest().subarray(0, 12);
  return encrypt(key, keyId, iv, plaintext, aad);
}

/** Opens a secret sealed by {@link sealSnapshotSecret} (or {@link wrapSnapshotKey}) with the key its `keyId` names. */
export function openSnapshotSecret(key: Uint8Array, secret: EncryptedSecret): string {
  assertKey(key);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(secret.iv, 'base64'));
    decipher.setAAD(Buffer.from(secret.aad, 'utf8'));
    decipher.setAuthTag(Buffer.from(secret.tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(secret.ciphertext, 'base64')), decipher.final()]).toString('utf8');
  } catch {
    throw new SnapshotSecretError('TAMPERED', `secret sealed with key ${secret.keyId} failed authentication (wrong key, wrong aad, or tampered)`);
  }
}

/** Wraps a workspace's snapshot key for one data plane, under its delivery key, with a random IV. */
export function wrapSnapshotKey(
  deliveryKey: Uint8Array,
  dataPlaneId: string,
  workspaceId: string,
  snapshotKeyId: string,
  snapshotKey: Uint8Array,
): EncryptedSecret {
  assertKey(deliveryKey);
  assertKey(snapshotKey);
  return encrypt(deliveryKey, deliveryKeyId(dataPlaneId), randomBytes(12), Buffer.from(snapshotKey).toString('base64'), snapshotKeyAad(workspaceId, snapshotKeyId));
}

/**
 * Unwraps a snapshot key received with a snapshot. Checks that it was wrapped for this
 * workspace and key id (the `aad`) before decrypting, so a key cannot be replayed for another.
 */
export function unwrapSnapshotKey(deliveryKey: Uint8Array, workspaceId: string, snapshotKeyId: string, wrapped: EncryptedSecret): Buffer {
  if (wrapped.aad !== snapshotKeyAad(workspaceId, snapshotKeyId)) {
    throw new SnapshotSecretError('WRONG_KEY', `the wrapped snapshot key is bound to "${wrapped.aad}", not to workspace ${workspaceId} key ${snapshotKeyId}`);
  }
  const key = Buffer.from(openSnapshotSecret(deliveryKey, wrapped), 'base64');
  if (key.length !== SNAPSHOT_KEY_BYTES) throw new SnapshotSecretError('BAD_KEY', 'the unwrapped snapshot key is not 32 bytes');
  return key;
}

function encrypt(key: Uint8Array, keyId: string, iv: Uint8Array, plaintext: string, aad: string): EncryptedSecret {
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  // Keys in canonical order, like everything else in a snapshot.
  return {
    aad,
    alg: 'A256GCM',
    ciphertext: ciphertext.toString('base64'),
    iv: Buffer.from(iv).toString('base64'),
    keyId,
    tag: cipher.getAuthTag().toString('base64'),
  };
}

function assertKey(key: Uint8Array): void {
  if (key.length !== SNAPSHOT_KEY_BYTES) throw new SnapshotSecretError('BAD_KEY', `keys are ${SNAPSHOT_KEY_BYTES} bytes, got ${key.length}`);
}
