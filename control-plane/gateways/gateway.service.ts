import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { requireCapability, type Viewer } from '../access/viewer.js';
import type { Database } from '../db/database.js';
import type { DB } from '../db/tables.js';
import { ConflictError, NotFoundError, isUniqueViolation } from '../errors.js';
import { recordWorkspaceEvent } from '../events/workspace-events.js';
import { description, displayName, parseInput } from '../shared/input.js';
import type { GatewayRow } from './gateway.table.js';
import { loadGrouped } from '../shared/grouped.js';

export const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const slug = z.string().regex(SLUG, 'must be 1-63 lowercase letters, digits and inner hyphens');

const createInput = z.object({
  name: displayName(),
  slug: slug.optional(),
  description: description.optional(),
  teamIds: z.array(z.string()).max(100).optional(),
});
const updateInput = z.object({ name: displayName().optional(), slug: slug.optional(), description: description.optional() });

/** `Platform Tools!` → `platform-tools`. */
export function slugify(name: string): string {
  const s = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/g, '');
  return s || 'gateway';
}

export class GatewayService {
  constructor(private readonly database: Database) {}

  list(viewer: Viewer, includeArchived: boolean, { limit, offset }: { limit: number; offset: number }): Promise<GatewayRow[]> {
    requireCapability(viewer, 'gateways.view');
    let q = this.database.db.selectFrom('gateways').selectAll().where('workspace_id', '=', viewer.workspaceId);
    if (!includeArchived) q = q.where('archived_at', 'is', null);
    return q.orderBy('name').orderBy('id').limit(limit).offset(offset).execute();
  }

  async byIds(workspaceId: string, ids: readonly string[]): Promise<GatewayRow[]> {
    if (ids.length === 0) return [];
    return this.database.db.selectFrom('gateways').selectAll().where('workspace_id', '=', workspaceId).where('id', 'in', ids).execute();
  }

  async get(viewer: Viewer, id: string, trx: Kysely<DB> = this.database.db): Promise<GatewayRow> {
    const row = await trx.selectFrom('gateways').selectAll().where('workspace_id', '=', viewer.workspaceId).where('id', '=', id).executeTakeFirst();
    if (!row) throw new NotFoundError('Gateway', id);
    return row;
  }

  async bySlug(viewer: Viewer, value: string): Promise<GatewayRow> {
    requireCapability(viewer, 'gateways.view');
    const row = await this.database.db.selectFrom('gateways').selectAll().where('workspace_id', '=', viewer.workspaceId).where('slug', '=', value).executeTakeFirst();
    if (!row) throw new NotFoundError('Gateway', value);
    return row;
  }

  /** Teams each gateway is provisioned to, in one statement. */
  async teamIdsByGatewayIds(workspaceId: string, ids: readonly string[]): Promise<Map<string, string[]>> {
    return loadGrouped(
      ids,
      (batch) => this.database.db.selectFrom('gateway_teams').select(['gateway_id', 'team_id']).where('workspace_id', '=', workspaceId).where('gateway_id', 'in', batch).execute(),
      (r) => r.gateway_id,
      (r) => r.team_id,
    );
  }

  async create(viewer: Viewer, rawInput: unknown): Promise<GatewayRow> {
    requireCapability(viewer, 'gateways.manage');
    const input = parseInput(createInput, rawInput);
    const teamIds = [...new Set(input.teamIds ?? [])];
    if (teamIds.length > 0) requireCapability(viewer, 'gateways.manage_access');
    const value = input.slug ?? slugify(input.name);
    return this.write(value, async (trx) => {
      const gateway = await trx
        .insertInto('gateways')
        .values({ id: randomUUID(), workspace_id: viewer.workspaceId, name: input.name, slug: value, description: input.description ?? '' })
        .returningAll()
        .executeTakeFirstOrThrow();
      await this.insertTeams(trx, viewer, gateway.id, teamIds);
      await this.event(trx, viewer, 'gateway.created', gateway.id, { name: gateway.name, slug: gateway.slug, teamIds });
      return gateway;
    });
  }

  async update(viewer: Viewer, id: string, rawInput: unknown): Promise<GatewayRow> {
    requireCapability(viewer, 'gateways.manage');
    const input = parseInput(updateInput, rawInput);
    return this.write(input.slug ?? '', async (trx) => {
      await this.get(viewer, id, trx);
      const gateway = await trx
        .updateTable('gateways')
        .set({
          ...(input.name !== undefined && { name: input.name }),
          ...(input.slug !== undefined && { slug: input.slug }),
          ...(input.description !== undefined && { description: input.description }),
          updated_at: new Date(),
        })
        .where('workspace_id', '=', viewer.workspaceId)
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow();
      await this.event(trx, viewer, 'gateway.updated', id, input);
      return gateway;
    });
  }

  async setDisabled(viewer: Viewer, id: string, disabled: boolean): Promise<GatewayRow> {
    requireCapability(viewer, 'gateways.manage');
    return this.change(viewer, id, { disabled }, disabled ? 'gateway.disabled' : 'gateway.enabled');
  }

  /** Archiving keeps the gateway, its history and logs; data planes refuse its calls until it is restored. */
  async setArchived(viewer: Viewer, id: string, archived: boolean): Promise<GatewayRow> {
    requireCapability(viewer, 'gateways.manage');
    return this.database.db.transaction().execute(async (trx) => {
      const current = await this.get(viewer, id, trx);
      if (archived === (current.archived_at !== null)) {
        throw new ConflictError(`gateway ${current.slug} is already ${archived ? 'archived' : 'active'}`);
      }
      return this.change(viewer, id, { archived_at: archived ? new Date() : null }, archived ? 'gateway.archived' : 'gateway.restored', trx);
    });
  }

  async setTeams(viewer: Viewer, id: string, teamIds: readonly string[], provision: boolean): Promise<GatewayRow> {
    requireCapability(viewer, 'gateways.manage_access');
    return this.database.db.transaction().execute(async (trx) => {
      const gateway = await this.get(viewer, id, trx);
      const unique = [...new Set(teamIds)];
      if (provision) await this.insertTeams(trx, viewer, id, unique);
      else if (unique.length > 0) {
        await trx.deleteFrom('gateway_teams').where('workspace_id', '=', viewer.workspaceId).where('gateway_id', '=', id).where('team_id', 'in', unique).execute();
      }
      await this.event(trx, viewer, provision ? 'gateway.teams_provisioned' : 'gateway.teams_unprovisioned', id, { teamIds: unique });
      return gateway;
    });
  }

  private async insertTeams(trx: Kysely<DB>, viewer: Viewer, gatewayId: string, teamIds: readonly string[]) {
    if (teamIds.length === 0) return;
    const found = await trx.selectFrom('teams').select('id').where('workspace_id', '=', viewer.workspaceId).where('id', 'in', teamIds).execute();
    const missing = teamIds.find((t) => !found.some((f) => f.id === t));
    if (missing) throw new NotFoundError('Team', missing);
    await trx
      .insertInto('gateway_teams')
      .values(teamIds.map((team_id) => ({ workspace_id: viewer.workspaceId, gateway_id: gatewayId, team_id })))
      .onConflict((oc) => oc.columns(['gateway_id', 'team_id']).doNothing())
      .execute();
  }

  private async change(
    viewer: Viewer,
    id: string,
    set: { disabled?: boolean; archived_at?: Date | null },
    type: string,
    trx?: Kysely<DB>,
  ): Promise<GatewayRow> {
    const run = async (t: Kysely<DB>) => {
      await this.get(viewer, id, t);
      const gateway = await t
        .updateTable('gateways')
        .set({ ...set, updated_at: new Date() })
        .where('workspace_id', '=', viewer.workspaceId)
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow();
      await this.event(t, viewer, type, id, {});
      return gateway;
    };
    return trx ? run(trx) : this.database.db.transaction().execute(run);
  }

  private event(trx: Kysely<DB>, viewer: Viewer, type: string, id: string, details: Record<string, unknown>) {
    return recordWorkspaceEvent(trx, viewer.workspaceId, viewer.actor, { type, subjectType: 'Gateway', subjectId: id, details });
  }

  private async write<T>(slugValue: string, fn: (trx: Kysely<DB>) => Promise<T>): Promise<T> {
    try {
      return await this.database.db.transaction().execute(fn);
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`a gateway with slug "${slugValue}" already exists in this workspace`, 'input.slug');
      throw err;
    }
  }
}
