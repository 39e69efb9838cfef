import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { RoleService } from '../access/role.service.js';
import { requireCapabilitiesHeld, requireCapability, type Viewer } from '../access/viewer.js';
import type { Database } from '../db/database.js';
import type { DB } from '../db/tables.js';
import { ConflictError, NotFoundError } from '../errors.js';
import { recordWorkspaceEvent } from '../events/workspace-events.js';
import { displayName, parseInput } from '../shared/input.js';
import { TOKEN_PREFIXES, generateToken, hashToken, tokenDisplayPrefix } from '../shared/tokens.js';
import type { ApiKeyRow } from './api-key.table.js';

const createInput = z.object({ name: displayName(), roleId: z.string() });

/** How often last-used time is written at most, so reads do not each cost a write. */
const LAST_USED_RESOLUTION_MS = 60_000;

export interface CreatedApiKey {
  readonly apiKey: ApiKeyRow;
  /** The key itself. Shown once; only its hash is kept. */
  readonly secret: string;
}

export class ApiKeyService {
  constructor(
    private readonly database: Database,
    private readonly roles: RoleService,
  ) {}

  /**
   * Resolves a presented admin key to a viewer, or null when it is unknown or revoked.
   * One statement: the key, its role and the role's capabilities.
   */
  async authenticate(token: string): Promise<Viewer | null> {
    if (!token.startsWith(TOKEN_PREFIXES.adminApiKey) || token.length > 200) return null;
    const rows = await this.database.db
      .selectFrom('api_keys as k')
      .leftJoin('role_capabilities as c', (j) => j.onRef('c.role_id', '=', 'k.role_id').onRef('c.workspace_id', '=', 'k.workspace_id'))
      .select(['k.id', 'k.workspace_id', 'k.role_id', 'k.last_used_at', 'k.revoked_at', 'c.capability'])
      .where('k.token_hash', '=', hashToken(token))
      .execute();
    const key = rows[0];
    if (!key || key.revoked_at !== null) return null;
    const lastUsed = key.last_used_at ? new Date(key.last_used_at).getTime() : 0;
    if (Date.now() - lastUsed > LAST_USED_RESOLUTION_MS) {
      // Best effort and off the request path: a failed stamp must not fail the request.
      void this.database.db
        .updateTable('api_keys')
        .set({ last_used_at: new Date() })
        .where('id', '=', key.id)
        .execute()
        .catch(() => undefined);
    }
    return {
      workspaceId: key.workspace_id,
      actor: `api_key:${key.id}`,
      apiKeyId: key.id,
      roleId: key.role_id,
      capabilities: new Set(rows.flatMap((r) => (r.capability ? [r.capability] : []))),
    };
  }

  list(viewer: Viewer, includeRevoked: boolean, { limit, offset }: { limit: number; offset: number }): Promise<ApiKeyRow[]> {
    requireCapability(viewer, 'workspace.view_settings');
    let q = this.database.db.selectFrom('api_keys').selectAll().where('workspace_id', '=', viewer.workspaceId);
    if (!includeRevoked) q = q.where('revoked_at', 'is', null);
    return q.orderBy('created_at', 'desc').orderBy('id').limit(limit).offset(offset).execute();
  }

  async byIds(workspaceId: string, ids: readonly string[]): Promise<ApiKeyRow[]> {
    if (ids.length === 0) return [];
    return this.database.db.selectFrom('api_keys').selectAll().where('workspace_id', '=', workspaceId).where('id', 'in', ids).execute();
  }

  async get(viewer: Viewer, id: string): Promise<ApiKeyRow> {
    const row = await this.database.db
      .selectFrom('api_keys')
      .selectAll()
      .where('workspace_id', '=', viewer.workspaceId)
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) throw new NotFoundError('ApiKey', id);
    return row;
  }

  async create(viewer: Viewer, rawInput: unknown): Promise<CreatedApiKey> {
    requireCapability(viewer, 'workspace.manage_api_keys');
    const input = parseInput(createInput, rawInput);
    return this.database.db.transaction().execute(async (trx) => {
      await this.roles.get(viewer, input.roleId, trx);
      requireCapabilitiesHeld(viewer, await this.roles.capabilitiesOf(trx, viewer.workspaceId, input.roleId));
      const created = await insertApiKey(trx, viewer.workspaceId, input.roleId, input.name, viewer.actor);
      await recordWorkspaceEvent(trx, viewer.workspaceId, viewer.actor, {
        type: 'api_key.created',
        subjectType: 'ApiKey',
        subjectId: created.apiKey.id,
        details: { name: input.name, roleId: input.roleId, prefix: created.apiKey.token_prefix },
      });
      return created;
    });
  }

  async revoke(viewer: Viewer, id: string): Promise<ApiKeyRow> {
    requireCapability(viewer, 'workspace.manage_api_keys');
    return this.database.db.transaction().execute(async (trx) => {
      const row = await trx
        .updateTable('api_keys')
        .set({ revoked_at: new Date() })
        .where('workspace_id', '=', viewer.workspaceId)
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .returningAll()
        .executeTakeFirst();
      if (!row) {
        const existing = await trx.selectFrom('api_keys').select('id').where('workspace_id', '=', viewer.workspaceId).where('id', '=', id).executeTakeFirst();
        if (!existing) throw new NotFoundError('ApiKey', id);
        throw new ConflictError('the API key is already revoked');
      }
      await recordWorkspaceEvent(trx, viewer.workspaceId, viewer.actor, {
        type: 'api_key.revoked',
        subjectType: 'ApiKey',
        subjectId: id,
        details: { name: row.name },
      });
      return row;
    });
  }
}

/** Mints a key (optionally a given one) and stores its hash. Used by the service, bootstrap and the CLI. */
export async function insertApiKey(
  trx: Kysely<DB>,
  workspaceId: string,
  roleId: string,
  name: string,
  createdBy: string,
  secret: string = generateToken(TOKEN_PREFIXES.adminApiKey),
): Promise<CreatedApiKey> {
  const apiKey = await trx
    .insertInto('api_keys')
    .values({
      id: randomUUID(),
      workspace_id: workspaceId,
      name,
      role_id: roleId,
      token_hash: hashToken(secret),
      token_prefix: tokenDisplayPrefix(secret),
      created_by: createdBy,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return { apiKey, secret };
}
