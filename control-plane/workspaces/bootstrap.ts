import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { insertApiKey } from '../api-keys/api-key.service.js';
import type { Database } from '../db/database.js';
import { createWorkspace } from './workspace.service.js';

export interface BootstrapResult {
  readonly workspaceId: string;
  /** The owner key created now; shown once. */
  readonly adminKey: string;
  /** Where the key was also written (embedded mode only). */
  readonly keyFile: string | undefined;
}

const BOOTSTRAP_LOCK = 7_346_512;

/**
 * On an empty database, creates the default workspace and an owner API key (the given one,
 * or a generated one). Does nothing on a database that already has a workspace. Two
 * processes starting at once on one database serialise on an advisory lock.
 */
export async function bootstrapIfEmpty(
  database: Database,
  options: { adminKey?: string | undefined; keyFileDir?: string | undefined },
): Promise<BootstrapResult | undefined> {
  const result = await database.db.transaction().execute(async (trx) => {
    await sql`SELECT pg_advisory_xact_lock(${BOOTSTRAP_LOCK})`.execute(trx);
    const existing = await trx.selectFrom('workspaces').select('id').limit(1).executeTakeFirst();
    if (existing) return undefined;
    const { workspace, roleIds } = await createWorkspace(trx, 'Default workspace');
    const { secret } = await insertApiKey(trx, workspace.id, roleIds.owner!, 'Bootstrap owner key', 'system', options.adminKey);
    return { workspaceId: workspace.id, adminKey: secret };
  });
  if (!result) return undefined;
  let keyFile: string | undefined;
  if (options.keyFileDir) {
    mkdirSync(options.keyFileDir, { recursive: true });
    keyFile = path.join(options.keyFileDir, 'bootstrap-admin-key');
    writeFileSync(keyFile, `${result.adminKey}\n`, { mode: 0o600 });
    chmodSync(keyFile, 0o600);
  }
  return { ...result, keyFile };
}
