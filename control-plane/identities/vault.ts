import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { SealedSecret } from '../servers/server.table.js';

export class VaultError extends Error {
  override readonly name = 'VaultError';
  constructor(
    readonly code: 'BAD_KEY' | 'UNKNOWN_KEY' | 'TAMPERED',
    message: string,
  ) {
    super(message);
  }
}

interface VaultKey {
  readonly id: string;
  readonly key: Buffer;
}

const keyIdOf = (key: Buffer) => `k${createHash('sha256').update(key).digest('hex').slice(0, 12)}`;

function parseKey(raw: string, source: string): VaultKey {
  const [maybeId, maybeKey] = raw.includes(':') ? (raw.split(':', 2) as [string, string]) : [undefined, raw];
  const key = Buffer.from(maybeKey.trim(), /^[0-9a-f]{64}$/i.test(maybeKey.trim()) ? 'hex' : 'base64');
  if (key.length !== 32) {
    throw new VaultError('BAD_KEY', `${source}: each key must be 32 bytes, base64 or hex (got ${key.length} bytes)`);
  }
  const id = maybeId?.trim() || keyIdOf(key);
  if (!/^[A-Za-z0-9_-]{1,40}$/.test(id)) throw new VaultError('BAD_KEY', `${source}: key id "${id}" must be 1-40 of [A-Za-z0-9_-]`);
  return { id, key };
}

/**
 * Seals secrets at rest with AES-256-GCM. The keyring comes from
 * `GATEHOUSE_ENCRYPTION_KEY` (`[id:]key[,[id:]key…]`, the first one seals, all open) or, when
 * unset, from a key generated once into `<data dir>/encryption-key` (mode 0600). Every
 * sealed value records the id of its key, so keys rotate: add a new key first in the list,
 * restart, and run the re-seal mutation.
 */
export class Vault {
  private readonly keys: ReadonlyMap<string, Buffer>;
  readonly activeKeyId: string;

  constructor(keyring: readonly VaultKey[]) {
    if (keyring.length === 0) throw new VaultError('BAD_KEY', 'the vault needs at least one key');
    this.keys = new Map(keyring.map((k) => [k.id, k.key]));
    this.activeKeyId = keyring[0]!.id;
  }

  static fromConfig(encryptionKey: string | undefined, dataDir: string): { vault: Vault; generatedFile?: string } {
    if (encryptionKey) {
      return { vault: new Vault(encryptionKey.split(',').map((part) => parseKey(part, 'GATEHOUSE_ENCRYPTION_KEY'))) };
    }
    const file = path.join(dataDir, 'encryption-key');
    if (existsSync(file)) return { vault: new Vault([parseKey(readFileSync(file, 'utf8').trim(), file)]) };
    mkdirSync(dataDir, { recursive: true });
    const key = randomBytes(32);
    writeFileSync(file, `${keyIdOf(key)}:${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
    chmodSync(file, 0o600);
    return { vault: new Vault([{ id: keyIdOf(key), key }]), generatedFile: file };
  }

  /** `context` is bound into the ciphertext: a value sealed for one field does not open in another. */
  seal(plaintext: string, context: string): SealedSecret {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.activeKeyId)!, iv);
    cipher.setAAD(Buffer.from(context));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return { keyId: this.activeKeyId, iv: iv.toString('base64'), ciphertext: ciphertext.toString('base64'), tag: cipher.getAuthTag().toString('base64') };
  }

  open(sealed: SealedSecret, context: string): string {
    const key = this.keys.get(sealed.keyId);
    if (!key) throw new VaultError('UNKNOWN_KEY', `secret sealed with key ${sealed.keyId}, which is not in the keyring`);
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'base64'));
      decipher.setAAD(Buffer.from(context));
      decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
      return Buffer.concat([decipher.update(Buffer.from(sealed.ciphertext, 'base64')), decipher.final()]).toString('utf8');
    } catch {
      throw new VaultError('TAMPERED', 'a sealed secret failed authentication (wrong context or tampered ciphertext)');
    }
  }

  /** True when the value is sealed with a key other than the active one. */
  needsReseal(sealed: SealedSecret): boolean {
    return sealed.keyId !== this.activeKeyId;
  }
}
