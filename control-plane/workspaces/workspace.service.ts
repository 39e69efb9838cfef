import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { BUILTIN_ROLES } from '../access/capabilities.js';
import { requireCapability, type Viewer } from '../access/viewer.js';
import type { Database } from '../db/database.js';
import type { DB } from '../db/tables.js';
import { NotFoundError } from '../errors.js';
import { recordWorkspaceEvent, toWorkspaceEvent, type WorkspaceEvent } from '../events/workspace-events.js';
import { displayName, parseInput } from '../shared/input.js';
import type { WorkspaceRow } from './workspace.table.js';

export const DATE_FORMATS = ['YYYY_MM_DD', 'DD_MM_YYYY', 'MM_DD_YYYY', 'DD_MMM_YYYY'] as const;
export const TIME_FORMATS = ['H24', 'H12'] as const;

const settingsInput = z.object({
  name: displayName().optional(),
  dateFormat: z.enum(DATE_FORMATS).optional(),
  timeFormat: z.enum(TIME_FORMATS).optional(),
});

/**
 * Creates a workspace with its built-in roles. Used by bootstrap and the operator CLI;
 * tenants are created by whoever runs the instance, not through a workspace's own API.
 */
export async function createWorkspace(trx: Kysely<DB>, name: string): Promise<{ workspace: WorkspaceRow; roleIds: Record<string, string> }> {
  const workspace = await trx
    .insertInto('workspaces')
    .values({ id: randomUUID(), name })
    .returningAll()
    .executeTakeFirstOrThrow();
  const roleIds: Record<string, string> = {};
  for (const role of BUILTIN_ROLES) {
    const id = randomUUID();
    roleIds[role.key] = id;
    await trx
      .insertInto('roles')
      .values({ id, workspace_id: workspace.id, name: role.name, description: role.description, builtin: role.key })
      .execute();
    await trx
      .insertInto('role_capabilities')
      .values(role.capabilities.map((capability) => ({ workspace_id: workspace.id, role_id: id, capability })))
      .execute();
  }
  await recordWorkspaceEvent(trx, workspace.id, 'system', {
    type: 'workspace.created',
    subjectType: 'Workspace',
    subjectId: workspace.id,
    details: { name },
  });
  return { workspace, roleIds };
}

export class WorkspaceService {
  constructor(private readonly database: Database) {}

  async get(viewer: Viewer): Promise<WorkspaceRow> {
    const row = await this.database.db
      .selectFrom('workspaces')
      .selectAll()
      .where('id', '=', viewer.workspaceId)
      .executeTakeFirst();
    if (!row) throw new NotFoundError('Workspace', viewer.workspaceId);
    return row;
  }

  async events(viewer: Viewer, { limit, offset }: { limit: number; offset: number }): Promise<WorkspaceEvent[]> {
    requireCapability(viewer, 'logging.view');
    const rows = await this.database.db
      .selectFrom('workspace_events')
      .selectAll()
      .where('workspace_id', '=', viewer.workspaceId)
      .orderBy('seq', 'desc')
      .limit(limit)
      .offset(offset)
      .execute();
    return rows.map(toWorkspaceEvent);
  }

  async updateSettings(viewer: Viewer, rawInput: unknown): Promise<WorkspaceRow> {
    requireCapability(viewer, 'workspace.manage_settings');
    const input = parseInput(settingsInput, rawInput);
    return this.database.db.transaction().execute(async (trx) => {
      const row = await trx
        .updateTable('workspaces')
        .set({
          ...(input.name !== undefined && { name: input.name }),
          ...(input.dateFormat !== undefined && { date_format: input.dateFormat }),
          ...(input.timeFormat !== undefined && { time_format: input.timeFormat }),
          updated_at: new Date(),
        })
        .where('id', '=', viewer.workspaceId)
        .returningAll()
        .executeTakeFirst();
      if (!row) throw new NotFoundError('Workspace', viewer.workspaceId);
      await recordWorkspaceEvent(trx, viewer.workspaceId, viewer.actor, {
        type: 'workspace.settings_updated',
        subjectType: 'Workspace',
        subjectId: row.id,
        details: input,
      });
      return row;
    });
  }

  /**
   * Workspace kill switch: while set, every data plane refuses every call of the workspace.
   * The control-plane API keeps working so that an admin can switch it back.
   */
  async setDisabled(viewer: Viewer, disabled: boolean): Promise<WorkspaceRow> {
    requireCapability(viewer, 'workspace.manage_settings');
    return this.database.db.transaction().execute(async (trx) => {
      const row = await trx
        .updateTable('workspaces')
        .set({ disabled, updated_at: new Date() })
        .where('id', '=', viewer.workspaceId)
        .returningAll()
        .executeTakeFirst();
      if (!row) throw new NotFoundError('Workspace', viewer.workspaceId);
      await recordWorkspaceEvent(trx, viewer.workspaceId, viewer.actor, {
        type: disabled ? 'workspace.disabled' : 'workspace.enabled',
        subjectType: 'Workspace',
        subjectId: row.id,
      });
      return row;
    });
  }
}
