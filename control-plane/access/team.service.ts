import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { Database } from '../db/database.js';
import type { DB } from '../db/tables.js';
import { ConflictError, NotFoundError, isUniqueViolation } from '../errors.js';
import { recordWorkspaceEvent } from '../events/workspace-events.js';
import type { UserRow } from '../people/user.table.js';
import { description, displayName, parseInput } from '../shared/input.js';
import type { TeamRow } from './access.table.js';
import type { ListOptions } from './role.service.js';
import { requireCapability, type Viewer } from './viewer.js';
import { loadGrouped } from '../shared/grouped.js';
import { setKillSwitch } from '../shared/kill-switch.js';

const createInput = z.object({ name: displayName(), description: description.optional() });
const updateInput = z.object({ name: displayName().optional(), description: description.optional() });

export class TeamService {
  constructor(private readonly database: Database) {}

  list(viewer: Viewer, { limit, offset }: ListOptions): Promise<TeamRow[]> {
    requireCapability(viewer, 'people.view');
    return this.database.db
      .selectFrom('teams')
      .selectAll()
      .where('workspace_id', '=', viewer.workspaceId)
      .orderBy('name')
      .orderBy('id')
      .limit(limit)
      .offset(offset)
      .execute();
  }

  async get(viewer: Viewer, id: string, trx: Kysely<DB> = this.database.db): Promise<TeamRow> {
    const row = await trx
      .selectFrom('teams')
      .selectAll()
      .where('workspace_id', '=', viewer.workspaceId)
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) throw new NotFoundError('Team', id);
    return row;
  }

  async byIds(workspaceId: string, ids: readonly string[]): Promise<TeamRow[]> {
    if (ids.length === 0) return [];
    return this.database.db.selectFrom('teams').selectAll().where('workspace_id', '=', workspaceId).where('id', 'in', ids).execute();
  }

  /** Teams of each user, in one statement for any number of users. */
  async teamsByUserIds(workspaceId: string, userIds: readonly string[]): Promise<Map<string, TeamRow[]>> {
    return loadGrouped(
      userIds,
      (ids) =>
        this.database.db
          .selectFrom('team_members as m')
          .innerJoin('teams as t', (j) => j.onRef('t.id', '=', 'm.team_id').onRef('t.workspace_id', '=', 'm.workspace_id'))
          .selectAll('t')
          .select('m.user_id')
          .where('m.workspace_id', '=', workspaceId)
          .where('m.user_id', 'in', ids)
          .orderBy('t.name')
          .execute(),
      (r) => r.user_id,
      ({ user_id: _, ...team }) => team,
    );
  }

  /** Members of each team, in one statement for any number of teams. */
  async membersByTeamIds(workspaceId: string, teamIds: readonly string[]): Promise<Map<string, UserRow[]>> {
    return loadGrouped(
      teamIds,
      (ids) =>
        this.database.db
          .selectFrom('team_members as m')
          .innerJoin('users as u', (j) => j.onRef('u.id', '=', 'm.user_id').onRef('u.workspace_id', '=', 'm.workspace_id'))
          .selectAll('u')
          .select('m.team_id')
          .where('m.workspace_id', '=', workspaceId)
          .where('m.team_id', 'in', ids)
          .orderBy('u.email')
          .execute(),
      (r) => r.team_id,
      ({ team_id: _, ...user }) => user,
    );
  }

  async create(viewer: Viewer, rawInput: unknown): Promise<TeamRow> {
    requireCapability(viewer, 'people.manage_teams');
    const input = parseInput(createInput, rawInput);
    return this.write(viewer, async (trx) => {
      const team = await trx
        .insertInto('teams')
        .values({ id: randomUUID(), workspace_id: viewer.workspaceId, name: input.name, description: input.description ?? '' })
        .returningAll()
        .executeTakeFirstOrThrow();
      await this.event(trx, viewer, 'team.created', team.id, { name: team.name });
      return team;
    }, input.name);
  }

  async update(viewer: Viewer, id: string, rawInput: unknown): Promise<TeamRow> {
    requireCapability(viewer, 'people.manage_teams');
    const input = parseInput(updateInput, rawInput);
    return this.write(viewer, async (trx) => {
      await this.get(viewer, id, trx);
      const team = await trx
        .updateTable('teams')
        .set({
          ...(input.name !== undefined && { name: input.name }),
          ...(input.description !== undefined && { description: input.description }),
          updated_at: new Date(),
        })
        .where('workspace_id', '=', viewer.workspaceId)
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow();
      await this.event(trx, viewer, 'team.updated', id, input);
      return team;
    }, input.name);
  }

  /** Disabling a team withdraws everything it grants (gateway access) without losing its members. */
  async setDisabled(viewer: Viewer, id: string, disabled: boolean): Promise<TeamRow> {
    requireCapability(viewer, 'people.manage_teams');
    return this.write(viewer, (trx) => setKillSwitch(trx, 'teams', viewer, id, disabled, { type: 'Team', event: 'team' }));
  }

  async delete(viewer: Viewer, id: string): Promise<TeamRow> {
    requireCapability(viewer, 'people.manage_teams');
    return this.write(viewer, async (trx) => {
      const team = await this.get(viewer, id, trx);
      await trx.deleteFrom('teams').where('workspace_id', '=', viewer.workspaceId).where('id', '=', id).execute();
      await this.event(trx, viewer, 'team.deleted', id, { name: team.name });
      return team;
    });
  }

  async addMembers(viewer: Viewer, teamId: string, userIds: readonly string[]): Promise<TeamRow> {
    requireCapability(viewer, 'people.manage_teams');
    return this.write(viewer, async (trx) => {
      const team = await this.get(viewer, teamId, trx);
      const users = await this.requireUsers(trx, viewer, userIds);
      const deactivated = users.find((u) => u.state === 'deactivated');
      if (deactivated) {
        throw new ConflictError(`user ${deactivated.email} is deactivated; reactivate them before adding them to a team`, 'userIds');
      }
      if (users.length > 0) {
        await trx
          .insertInto('team_members')
          .values(users.map((u) => ({ workspace_id: viewer.workspaceId, team_id: teamId, user_id: u.id })))
          .onConflict((oc) => oc.columns(['team_id', 'user_id']).doNothing())
          .execute();
      }
      await this.event(trx, viewer, 'team.members_added', teamId, { userIds: users.map((u) => u.id) });
      return team;
    });
  }

  async removeMembers(viewer: Viewer, teamId: string, userIds: readonly string[]): Promise<TeamRow> {
    requireCapability(viewer, 'people.manage_teams');
    return this.write(viewer, async (trx) => {
      const team = await this.get(viewer, teamId, trx);
      const users = await this.requireUsers(trx, viewer, userIds);
      if (users.length > 0) {
        await trx
          .deleteFrom('team_members')
          .where('workspace_id', '=', viewer.workspaceId)
          .where('team_id', '=', teamId)
          .where('user_id', 'in', users.map((u) => u.id))
          .execute();
      }
      await this.event(trx, viewer, 'team.members_removed', teamId, { userIds: users.map((u) => u.id) });
      return team;
    });
  }

  private async requireUsers(trx: Kysely<DB>, viewer: Viewer, userIds: readonly string[]): Promise<UserRow[]> {
    const unique = [...new Set(userIds)];
    if (unique.length === 0) return [];
    const users = await trx
      .selectFrom('users')
      .selectAll()
      .where('workspace_id', '=', viewer.workspaceId)
      .where('id', 'in', unique)
      .execute();
    const missing = unique.find((id) => !users.some((u) => u.id === id));
    if (missing) throw new NotFoundError('User', missing);
    return users;
  }

  private event(trx: Kysely<DB>, viewer: Viewer, type: string, teamId: string, details: Record<string, unknown>) {
    return recordWorkspaceEvent(trx, viewer.workspaceId, viewer.actor, { type, subjectType: 'Team', subjectId: teamId, details });
  }

  private async write<T>(viewer: Viewer, fn: (trx: Kysely<DB>) => Promise<T>, name?: string): Promise<T> {
    try {
      return await this.database.db.transaction().execute(fn);
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`a team named "${name}" already exists`, 'input.name');
      throw err;
    }
  }
}
