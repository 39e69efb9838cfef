import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { ListOptions } from '../access/role.service.js';
import { requireCapability, type Viewer } from '../access/viewer.js';
import type { Database } from '../db/database.js';
import type { DB } from '../db/tables.js';
import { NotFoundError } from '../errors.js';
import { recordWorkspaceEvent } from '../events/workspace-events.js';
import type { ServerRow } from '../servers/server.table.js';
import type { IdentityRow } from './identity.table.js';
import { setKillSwitch } from '../shared/kill-switch.js';

/**
 * Upstream identities and their kill switch. Identities carry no secret: a shared one is
 * the handle on the header values sealed on its server, so listing them never opens the vault.
 */
export class IdentityService {
  constructor(private readonly database: Database) {}

  list(viewer: Viewer, { limit, offset }: ListOptions): Promise<IdentityRow[]> {
    requireCapability(viewer, 'identities.view');
    return this.database.db
      .selectFrom('identities')
      .selectAll()
      .where('workspace_id', '=', viewer.workspaceId)
      .orderBy('name')
      .orderBy('id')
      .limit(limit)
      .offset(offset)
      .execute();
  }

  async get(viewer: Viewer, id: string, trx: Kysely<DB> = this.database.db): Promise<IdentityRow> {
    const row = await trx.selectFrom('identities').selectAll().where('workspace_id', '=', viewer.workspaceId).where('id', '=', id).executeTakeFirst();
    if (!row) throw new NotFoundError('Identity', id);
    return row;
  }

  async byIds(workspaceId: string, ids: readonly string[]): Promise<IdentityRow[]> {
    if (ids.length === 0) return [];
    return this.database.db.selectFrom('identities').selectAll().where('workspace_id', '=', workspaceId).where('id', 'in', ids).execute();
  }

  /** The shared identity of each server that has one, in one statement. */
  async sharedByServerIds(workspaceId: string, serverIds: readonly string[]): Promise<Map<string, IdentityRow>> {
    if (serverIds.length === 0) return new Map();
    const rows = await this.database.db
      .selectFrom('identities')
      .selectAll()
      .where('workspace_id', '=', workspaceId)
      .where('kind', '=', 'shared')
      .where('server_id', 'in', serverIds)
      .execute();
    return new Map(rows.map((r) => [r.server_id, r]));
  }

  /** Kill switch: a disabled shared identity takes every shared-scheme assignment of its server out of service. */
  async setDisabled(viewer: Viewer, id: string, disabled: boolean): Promise<IdentityRow> {
    requireCapability(viewer, 'identities.manage');
    return this.database.db.transaction().execute((trx) =>
      setKillSwitch(trx, 'identities', viewer, id, disabled, {
        type: 'Identity',
        event: 'identity',
        details: (row) => ({ name: row.name, kind: row.kind, serverId: row.server_id }),
      }),
    );
  }
}

/**
 * Keeps a server's shared identity in step with its auth, inside the server's write
 * transaction: header auth needs one (named after the server), no auth has none. Deleting
 * the identity drops its kill switch with it; header auth set again starts enabled.
 */
export async function syncSharedIdentity(trx: Kysely<DB>, viewer: Viewer, server: Pick<ServerRow, 'id' | 'name' | 'auth_kind'>): Promise<void> {
  const current = await trx
    .selectFrom('identities')
    .select(['id', 'name'])
    .where('workspace_id', '=', viewer.workspaceId)
    .where('server_id', '=', server.id)
    .where('kind', '=', 'shared')
    .executeTakeFirst();
  const event = (type: string, id: string) =>
    recordWorkspaceEvent(trx, viewer.workspaceId, viewer.actor, { type, subjectType: 'Identity', subjectId: id, details: { name: server.name, kind: 'shared', serverId: server.id } });

  if (server.auth_kind !== 'headers') {
    if (!current) return;
    await trx.deleteFrom('identities').where('workspace_id', '=', viewer.workspaceId).where('id', '=', current.id).execute();
    await event('identity.deleted', current.id);
    return;
  }
  if (!current) {
    // A concurrent write of the same server may have created it first: then that one stands.
    const created = await trx
      .insertInto('identities')
      .values({ id: randomUUID(), workspace_id: viewer.workspaceId, server_id: server.id, kind: 'shared', user_id: null, name: server.name })
      .onConflict((oc) => oc.columns(['workspace_id', 'server_id']).where('kind', '=', 'shared').doNothing())
      .returning('id')
      .executeTakeFirst();
    if (created) await event('identity.created', created.id);
  } else if (current.name !== server.name) {
    await trx.updateTable('identities').set({ name: server.name, updated_at: new Date() }).where('workspace_id', '=', viewer.workspaceId).where('id', '=', current.id).execute();
  }
}
