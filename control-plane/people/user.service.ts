import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { z } from 'zod';
import { requireCapabilitiesHeld, requireCapability, type Viewer } from '../access/viewer.js';
import type { RoleService } from '../access/role.service.js';
import type { Database } from '../db/database.js';
import type { DB } from '../db/tables.js';
import { ConflictError, NotFoundError, isUniqueViolation } from '../errors.js';
import { recordWorkspaceEvent } from '../events/workspace-events.js';
import { displayName, email, parseInput } from '../shared/input.js';
import type { UserRow, UserState } from './user.table.js';

const inviteInput = z.object({
  email,
  name: displayName(200).optional(),
  roleId: z.string(),
  teamIds: z.array(z.string()).max(100).optional(),
});
const updateInput = z.object({ name: displayName(200).optional() });

export interface UserFilter {
  readonly state?: UserState | null | undefined;
  /** Case-insensitive substring of email or name. */
  readonly search?: string | null | undefined;
}

/** Which state a lifecycle action moves a user from and to. */
const TRANSITIONS = {
  activate: { from: ['invited'], to: 'active', event: 'user.activated' },
  deactivate: { from: ['invited', 'active'], to: 'deactivated', event: 'user.deactivated' },
  reactivate: { from: ['deactivated'], to: 'active', event: 'user.reactivated' },
} as const satisfies Record<string, { from: readonly UserState[]; to: UserState; event: string }>;
export type UserTransition = keyof typeof TRANSITIONS;

export class UserService {
  constructor(
    private readonly database: Database,
    private readonly roles: RoleService,
  ) {}

  list(viewer: Viewer, filter: UserFilter, { limit, offset }: { limit: number; offset: number }): Promise<UserRow[]> {
    requireCapability(viewer, 'people.view');
    let q = this.database.db.selectFrom('users').selectAll().where('workspace_id', '=', viewer.workspaceId);
    if (filter.state) q = q.where('state', '=', filter.state);
    if (filter.search) {
      const pattern = `%${filter.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      q = q.where((eb) => eb.or([eb('email', 'ilike', pattern), eb('name', 'ilike', pattern)]));
    }
    return q.orderBy('email').orderBy('id').limit(limit).offset(offset).execute();
  }

  async get(viewer: Viewer, id: string, trx: Kysely<DB> = this.database.db): Promise<UserRow> {
    const row = await trx
      .selectFrom('users')
      .selectAll()
      .where('workspace_id', '=', viewer.workspaceId)
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) throw new NotFoundError('User', id);
    return row;
  }

  async byIds(workspaceId: string, ids: readonly string[]): Promise<UserRow[]> {
    if (ids.length === 0) return [];
    return this.database.db.selectFrom('users').selectAll().where('workspace_id', '=', workspaceId).where('id', 'in', ids).execute();
  }

  async invite(viewer: Viewer, rawInput: unknown): Promise<UserRow> {
    requireCapability(viewer, 'people.manage');
    const input = parseInput(inviteInput, rawInput);
    return this.database.db.transaction().execute(async (trx) => {
      await this.requireGrantableRole(trx, viewer, input.roleId);
      let user: UserRow;
      try {
        user = await trx
          .insertInto('users')
          .values({
            id: randomUUID(),
            workspace_id: viewer.workspaceId,
            email: input.email,
            name: input.name ?? '',
            state: 'invited',
            role_id: input.roleId,
          })
          .returningAll()
          .executeTakeFirstOrThrow();
      } catch (err) {
        if (isUniqueViolation(err)) throw new ConflictError(`a user with email ${input.email} already exists`, 'input.email');
        throw err;
      }
      const teamIds = [...new Set(input.teamIds ?? [])];
      if (teamIds.length > 0) {
        const teams = await trx
          .selectFrom('teams')
          .select('id')
          .where('workspace_id', '=', viewer.workspaceId)
          .where('id', 'in', teamIds)
          .execute();
        const missing = teamIds.find((id) => !teams.some((t) => t.id === id));
        if (missing) throw new NotFoundError('Team', missing);
        await trx
          .insertInto('team_members')
          .values(teamIds.map((team_id) => ({ workspace_id: viewer.workspaceId, team_id, user_id: user.id })))
          .execute();
      }
      await recordWorkspaceEvent(trx, viewer.workspaceId, viewer.actor, {
        type: 'user.invited',
        subjectType: 'User',
        subjectId: user.id,
        details: { email: user.email, roleId: input.roleId, teamIds },
      });
      return user;
    });
  }

  async update(viewer: Viewer, id: string, rawInput: unknown): Promise<UserRow> {
    requireCapability(viewer, 'people.manage');
    const input = parseInput(updateInput, rawInput);
    return this.database.db.transaction().execute(async (trx) => {
      const current = await this.get(viewer, id, trx);
      this.requireNotDeactivated(current);
      const user = await trx
        .updateTable('users')
        .set({ ...(input.name !== undefined && { name: input.name }), updated_at: new Date() })
        .where('workspace_id', '=', viewer.workspaceId)
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow();
      await recordWorkspaceEvent(trx, viewer.workspaceId, viewer.actor, {
        type: 'user.updated',
        subjectType: 'User',
        subjectId: id,
        details: input,
      });
      return user;
    });
  }

  async transition(viewer: Viewer, id: string, action: UserTransition): Promise<UserRow> {
    requireCapability(viewer, 'people.manage');
    const t = TRANSITIONS[action];
    return this.database.db.transaction().execute(async (trx) => {
      const current = await this.get(viewer, id, trx);
      if (!(t.from as readonly string[]).includes(current.state)) {
        throw new ConflictError(`cannot ${action} user ${current.email}: the user is ${current.state}`);
      }
      const now = new Date();
      const user = await trx
        .updateTable('users')
        .set({
          state: t.to,
          updated_at: now,
          ...(t.to === 'active' && { activated_at: now, deactivated_at: null }),
          ...(t.to === 'deactivated' && { deactivated_at: now }),
        })
        .where('workspace_id', '=', viewer.workspaceId)
        .where('id', '=', id)
        // Guards against a concurrent transition that committed after our read.
        .where('state', '=', current.state)
        .returningAll()
        .executeTakeFirst();
      if (!user) throw new ConflictError(`user ${current.email} changed state concurrently; try again`);
      await recordWorkspaceEvent(trx, viewer.workspaceId, viewer.actor, {
        type: t.event,
        subjectType: 'User',
        subjectId: id,
        details: { from: current.state, to: t.to },
      });
      return user;
    });
  }

  async changeRole(viewer: Viewer, id: string, roleId: string): Promise<UserRow> {
    requireCapability(viewer, 'people.manage');
    return this.database.db.transaction().execute(async (trx) => {
      const current = await this.get(viewer, id, trx);
      this.requireNotDeactivated(current);
      // Taking a role away is as sensitive as granting one: both must be within the viewer's reach.
      requireCapabilitiesHeld(viewer, await this.roles.capabilitiesOf(trx, viewer.workspaceId, current.role_id));
      await this.requireGrantableRole(trx, viewer, roleId);
      const user = await trx
        .updateTable('users')
        .set({ role_id: roleId, updated_at: new Date() })
        .where('workspace_id', '=', viewer.workspaceId)
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow();
      await recordWorkspaceEvent(trx, viewer.workspaceId, viewer.actor, {
        type: 'user.role_changed',
        subjectType: 'User',
        subjectId: id,
        details: { from: current.role_id, to: roleId },
      });
      return user;
    });
  }

  /** Users holding each role, counted in one statement. */
  async countByRoleIds(workspaceId: string, roleIds: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>(roleIds.map((id) => [id, 0]));
    if (roleIds.length === 0) return out;
    const rows = await this.database.db
      .selectFrom('users')
      .select(['role_id', sql<string>`count(*)`.as('n')])
      .where('workspace_id', '=', workspaceId)
      .where('role_id', 'in', roleIds)
      .groupBy('role_id')
      .execute();
    for (const r of rows) out.set(r.role_id, Number(r.n));
    return out;
  }

  private requireNotDeactivated(user: UserRow): void {
    if (user.state === 'deactivated') {
      throw new ConflictError(`user ${user.email} is deactivated; reactivate them first`);
    }
  }

  private async requireGrantableRole(trx: Kysely<DB>, viewer: Viewer, roleId: string): Promise<void> {
    await this.roles.get(viewer, roleId, trx);
    requireCapabilitiesHeld(viewer, await this.roles.capabilitiesOf(trx, viewer.workspaceId, roleId));
  }
}
