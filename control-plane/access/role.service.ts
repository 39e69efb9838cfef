import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { z } from 'zod';
import type { Database } from '../db/database.js';
import type { DB } from '../db/tables.js';
import { ConflictError, DomainError, NotFoundError, ValidationError, isUniqueViolation } from '../errors.js';
import { recordWorkspaceEvent } from '../events/workspace-events.js';
import { description, displayName, parseInput } from '../shared/input.js';
import type { RoleRow } from './access.table.js';
import { findCapability } from './capabilities.js';
import { requireCapabilitiesHeld, requireCapability, type Viewer } from './viewer.js';
import { loadGrouped } from '../shared/grouped.js';

/** A role still held by users or live API keys cannot be deleted. */
export class RoleInUseError extends DomainError {
  readonly code = 'CONFLICT' as const;
  override readonly name = 'RoleInUseError';
  constructor(
    readonly userCount: number,
    readonly apiKeyCount: number,
  ) {
    super(
      `the role is assigned to ${userCount} user(s) and ${apiKeyCount} API key(s); move them to another role first`,
    );
  }
}

const capabilityList = z.array(z.string()).max(200);

const createInput = z.object({
  name: displayName(),
  description: description.optional(),
  capabilities: capabilityList,
});
const updateInput = z.object({
  name: displayName().optional(),
  description: description.optional(),
  capabilities: capabilityList.optional(),
});
const duplicateInput = z.object({ name: displayName().optional() });

export interface ListOptions {
  readonly limit: number;
  readonly offset: number;
}

function validateCapabilities(names: readonly string[], field: string): string[] {
  const unknown = names.filter((n) => !findCapability(n));
  if (unknown.length > 0) {
    throw new ValidationError(field, `${field}: unknown capabilit${unknown.length === 1 ? 'y' : 'ies'} ${unknown.join(', ')}`);
  }
  return [...new Set(names)].sort();
}

export class RoleService {
  constructor(private readonly database: Database) {}

  list(viewer: Viewer, { limit, offset }: ListOptions): Promise<RoleRow[]> {
    requireCapability(viewer, 'people.view');
    return this.database.db
      .selectFrom('roles')
      .selectAll()
      .where('workspace_id', '=', viewer.workspaceId)
      .orderBy(sql`builtin IS NULL`)
      .orderBy('name')
      .orderBy('id')
      .limit(limit)
      .offset(offset)
      .execute();
  }

  async byIds(workspaceId: string, ids: readonly string[]): Promise<RoleRow[]> {
    if (ids.length === 0) return [];
    return this.database.db
      .selectFrom('roles')
      .selectAll()
      .where('workspace_id', '=', workspaceId)
      .where('id', 'in', ids)
      .execute();
  }

  async capabilitiesByRoleIds(workspaceId: string, ids: readonly string[]): Promise<Map<string, string[]>> {
    return loadGrouped(
      ids,
      (batch) =>
        this.database.db.selectFrom('role_capabilities').select(['role_id', 'capability']).where('workspace_id', '=', workspaceId).where('role_id', 'in', batch).orderBy('capability').execute(),
      (r) => r.role_id,
      (r) => r.capability,
    );
  }

  async get(viewer: Viewer, id: string, trx: Kysely<DB> = this.database.db): Promise<RoleRow> {
    const row = await trx
      .selectFrom('roles')
      .selectAll()
      .where('workspace_id', '=', viewer.workspaceId)
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) throw new NotFoundError('Role', id);
    return row;
  }

  async create(viewer: Viewer, rawInput: unknown): Promise<RoleRow> {
    requireCapability(viewer, 'people.manage_roles');
    const input = parseInput(createInput, rawInput);
    const capabilities = validateCapabilities(input.capabilities, 'input.capabilities');
    requireCapabilitiesHeld(viewer, capabilities);
    return this.inTransaction(async (trx) => {
      const role = await this.insertRole(trx, viewer, input.name, input.description ?? '', capabilities);
      await recordWorkspaceEvent(trx, viewer.workspaceId, viewer.actor, {
        type: 'role.created',
        subjectType: 'Role',
        subjectId: role.id,
        details: { name: role.name, capabilities },
      });
      return role;
    });
  }

  async duplicate(viewer: Viewer, id: string, rawInput: unknown): Promise<RoleRow> {
    requireCapability(viewer, 'people.manage_roles');
    const input = parseInput(duplicateInput, rawInput ?? {});
    return this.inTransaction(async (trx) => {
      const source = await this.get(viewer, id, trx);
      const capabilities = (await trx
        .selectFrom('role_capabilities')
        .select('capability')
        .where('workspace_id', '=', viewer.workspaceId)
        .where('role_id', '=', source.id)
        .execute()).map((r) => r.capability);
      requireCapabilitiesHeld(viewer, capabilities);
      const name = input.name ?? (await this.freeCopyName(trx, viewer.workspaceId, source.name));
      const role = await this.insertRole(trx, viewer, name, source.description, capabilities);
      await recordWorkspaceEvent(trx, viewer.workspaceId, viewer.actor, {
        type: 'role.duplicated',
        subjectType: 'Role',
        subjectId: role.id,
        details: { from: source.id, name },
      });
      return role;
    });
  }

  async update(viewer: Viewer, id: string, rawInput: unknown): Promise<RoleRow> {
    requireCapability(viewer, 'people.manage_roles');
    const input = parseInput(updateInput, rawInput);
    const capabilities = input.capabilities && validateCapabilities(input.capabilities, 'input.capabilities');
    if (capabilities) requireCapabilitiesHeld(viewer, capabilities);
    return this.inTransaction(async (trx) => {
      const current = await this.get(viewer, id, trx);
      if (current.builtin) {
        throw new ConflictError(`the built-in role ${current.name} cannot be edited; duplicate it and edit the copy`);
      }
      const role = await trx
        .updateTable('roles')
        .set({
          ...(input.name !== undefined && { name: input.name }),
          ...(input.description !== undefined && { description: input.description }),
          updated_at: new Date(),
        })
        .where('workspace_id', '=', viewer.workspaceId)
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow();
      if (capabilities) {
        await trx.deleteFrom('role_capabilities').where('workspace_id', '=', viewer.workspaceId).where('role_id', '=', id).execute();
        if (capabilities.length > 0) {
          await trx
            .insertInto('role_capabilities')
            .values(capabilities.map((capability) => ({ workspace_id: viewer.workspaceId, role_id: id, capability })))
            .execute();
        }
      }
      await recordWorkspaceEvent(trx, viewer.workspaceId, viewer.actor, {
        type: 'role.updated',
        subjectType: 'Role',
        subjectId: id,
        details: input,
      });
      return role;
    });
  }

  async delete(viewer: Viewer, id: string): Promise<RoleRow> {
    requireCapability(viewer, 'people.manage_roles');
    return this.inTransaction(async (trx) => {
      const role = await this.get(viewer, id, trx);
      if (role.builtin) throw new ConflictError(`the built-in role ${role.name} cannot be deleted`);
      // Lock the role so a concurrent invite cannot assign it between the count and the delete.
      await trx.selectFrom('roles').select('id').where('id', '=', id).forUpdate().execute();
      const users = await trx
        .selectFrom('users')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('workspace_id', '=', viewer.workspaceId)
        .where('role_id', '=', id)
        .executeTakeFirstOrThrow();
      const keys = await trx
        .selectFrom('api_keys')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('workspace_id', '=', viewer.workspaceId)
        .where('role_id', '=', id)
        .where('revoked_at', 'is', null)
        .executeTakeFirstOrThrow();
      if (Number(users.n) > 0 || Number(keys.n) > 0) throw new RoleInUseError(Number(users.n), Number(keys.n));
      // Revoked keys keep their history; point them at nothing by deleting them with the role.
      await trx.deleteFrom('api_keys').where('workspace_id', '=', viewer.workspaceId).where('role_id', '=', id).execute();
      await trx.deleteFrom('roles').where('workspace_id', '=', viewer.workspaceId).where('id', '=', id).execute();
      await recordWorkspaceEvent(trx, viewer.workspaceId, viewer.actor, {
        type: 'role.deleted',
        subjectType: 'Role',
        subjectId: id,
        details: { name: role.name },
      });
      return role;
    });
  }

  /** Capabilities of a role, for privilege-escalation checks elsewhere. */
  async capabilitiesOf(trx: Kysely<DB>, workspaceId: string, roleId: string): Promise<string[]> {
    const rows = await trx
      .selectFrom('role_capabilities')
      .select('capability')
      .where('workspace_id', '=', workspaceId)
      .where('role_id', '=', roleId)
      .execute();
    return rows.map((r) => r.capability);
  }

  private async insertRole(trx: Kysely<DB>, viewer: Viewer, name: string, desc: string, capabilities: readonly string[]) {
    try {
      const role = await trx
        .insertInto('roles')
        .values({ id: randomUUID(), workspace_id: viewer.workspaceId, name, description: desc, builtin: null })
        .returningAll()
        .executeTakeFirstOrThrow();
      if (capabilities.length > 0) {
        await trx
          .insertInto('role_capabilities')
          .values(capabilities.map((capability) => ({ workspace_id: viewer.workspaceId, role_id: role.id, capability })))
          .execute();
      }
      return role;
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`a role named "${name}" already exists`, 'input.name');
      throw err;
    }
  }

  private async freeCopyName(trx: Kysely<DB>, workspaceId: string, base: string): Promise<string> {
    const taken = new Set(
      (await trx.selectFrom('roles').select('name').where('workspace_id', '=', workspaceId).execute()).map((r) =>
        r.name.toLowerCase(),
      ),
    );
    for (let i = 1; ; i++) {
      const candidate = i === 1 ? `${base} (copy)` : `${base} (copy ${i})`;
      if (!taken.has(candidate.toLowerCase())) return candidate;
    }
  }

  private inTransaction<T>(fn: (trx: Kysely<DB>) => Promise<T>): Promise<T> {
    return this.database.db.transaction().execute(fn);
  }
}
