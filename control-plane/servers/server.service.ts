import { randomUUID } from 'node:crypto';
import type { Insertable, Kysely, Updateable } from 'kysely';
import { z } from 'zod';
import { requireCapability, type Viewer } from '../access/viewer.js';
import type { Database } from '../db/database.js';
import type { DB } from '../db/tables.js';
import { ConflictError, NotFoundError, ValidationError, isUniqueViolation } from '../errors.js';
import { recordWorkspaceEvent } from '../events/workspace-events.js';
import { syncSharedIdentity } from '../identities/identity.service.js';
import type { Vault } from '../identities/vault.js';
import { description, displayName, parseInput } from '../shared/input.js';
import {
  createServerInput,
  updateServerInput,
  validateCommand,
  validateEnv,
  validateUpstreamUrl,
  type CreateServerInput,
  type UpdateServerInput,
} from './server-input.js';
import type { SealedSecret, ServerContainerRow, ServerRow, ServerTable } from './server.table.js';
import type { ThreatService } from './threats/threat.service.js';
import { loadGrouped } from '../shared/grouped.js';
import { setKillSwitch } from '../shared/kill-switch.js';

export interface ListOptions {
  readonly limit: number;
  readonly offset: number;
}

/** The AAD a sealed server secret is bound to: it opens only for this server and field. */
export const serverSecretContext = (serverId: string, field: 'header' | 'env', name: string) => `server:${serverId}:${field}:${name}`;

/** The columns a create or update writes, as plain values (JSON columns serialised on write). */
interface ServerWrite {
  name: string;
  description: string;
  kind: ServerTable['kind'];
  transport: ServerTable['transport'];
  url: string | null;
  allow_insecure: boolean;
  command: string | null;
  args: string[];
  env: Record<string, string>;
  secret_env: Record<string, SealedSecret>;
  cwd: string | null;
  auth_kind: 'none' | 'headers' | 'oauth';
  auth_headers: Record<string, SealedSecret>;
}

const containerInput = z.object({ name: displayName(), description: description.optional() });
const containerUpdate = z.object({ name: displayName().optional(), description: description.optional() });

export class ServerService {
  constructor(
    private readonly database: Database,
    private readonly vault: Vault,
    /** Anti-mimicry screening of new and renamed servers, when set. */
    private readonly threats?: ThreatService,
  ) {}

  list(viewer: Viewer, { limit, offset }: ListOptions): Promise<ServerRow[]> {
    requireCapability(viewer, 'servers.view');
    return this.database.db
      .selectFrom('servers')
      .selectAll()
      .where('workspace_id', '=', viewer.workspaceId)
      .orderBy('name')
      .orderBy('id')
      .limit(limit)
      .offset(offset)
      .execute();
  }

  async byIds(workspaceId: string, ids: readonly string[]): Promise<ServerRow[]> {
    if (ids.length === 0) return [];
    return this.database.db.selectFrom('servers').selectAll().where('workspace_id', '=', workspaceId).where('id', 'in', ids).execute();
  }

  async get(viewer: Viewer, id: string, trx: Kysely<DB> = this.database.db): Promise<ServerRow> {
    const row = await trx.selectFrom('servers').selectAll().where('workspace_id', '=', viewer.workspaceId).where('id', '=', id).executeTakeFirst();
    if (!row) throw new NotFoundError('Server', id);
    return row;
  }

  async create(viewer: Viewer, rawInput: unknown): Promise<ServerRow> {
    requireCapability(viewer, 'servers.manage');
    const input = parseInput(createServerInput, rawInput);
    const kinds = [input.remote && 'remote', input.managed && 'managed', input.workstation && 'workstation'].filter(Boolean);
    if (kinds.length !== 1) {
      throw new ValidationError('input', 'input: give exactly one of remote, managed or workstation');
    }
    const id = randomUUID();
    const write = this.toWrite(id, input);
    return this.write(viewer, input.name, async (trx) => {
      const inserted = await trx
        .insertInto('servers')
        .values({ id, workspace_id: viewer.workspaceId, ...this.serialize(write) } as Insertable<ServerTable>)
        .returningAll()
        .executeTakeFirstOrThrow();
      const row = (await this.threats?.screenServer(trx, viewer.actor, inserted)) ?? inserted;
      await syncSharedIdentity(trx, viewer, row);
      await this.event(trx, viewer, 'server.created', id, { name: row.name, kind: row.kind, transport: row.transport });
      return row;
    });
  }

  async update(viewer: Viewer, id: string, rawInput: unknown): Promise<ServerRow> {
    requireCapability(viewer, 'servers.manage');
    const input = parseInput(updateServerInput, rawInput);
    return this.write(viewer, input.name, async (trx) => {
      const current = await this.get(viewer, id, trx);
      if (input.remote && current.kind !== 'remote') throw new ValidationError('input.remote', `input.remote: server ${current.name} is ${current.kind}`);
      if (input.managed && current.kind !== 'managed') throw new ValidationError('input.managed', `input.managed: server ${current.name} is ${current.kind}`);
      const patch: Partial<ServerWrite> = {};
      if (input.name !== undefined) patch.name = input.name;
      if (input.description !== undefined) patch.description = input.description;
      if (input.remote) Object.assign(patch, this.remoteFields(input.remote));
      if (input.managed) Object.assign(patch, this.managedFields(id, input.managed));
      if (input.auth) Object.assign(patch, this.authFields(id, input.auth));
      const updated = await trx
        .updateTable('servers')
        .set({ ...this.serialize(patch), updated_at: new Date() } as Updateable<ServerTable>)
        .where('workspace_id', '=', viewer.workspaceId)
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow();
      const row = (await this.threats?.screenServer(trx, viewer.actor, updated, current)) ?? updated;
      await syncSharedIdentity(trx, viewer, row);
      await this.event(trx, viewer, 'server.updated', id, { fields: Object.keys(input) });
      return row;
    });
  }

  async setDisabled(viewer: Viewer, id: string, disabled: boolean): Promise<ServerRow> {
    requireCapability(viewer, 'servers.manage');
    return this.write(viewer, undefined, (trx) => setKillSwitch(trx, 'servers', viewer, id, disabled, { type: 'Server', event: 'server' }));
  }

  async delete(viewer: Viewer, id: string): Promise<ServerRow> {
    requireCapability(viewer, 'servers.manage');
    return this.write(viewer, undefined, async (trx) => {
      const server = await this.get(viewer, id, trx);
      const assigned = await trx
        .selectFrom('assignments')
        .select('id')
        .where('workspace_id', '=', viewer.workspaceId)
        .where('server_id', '=', id)
        .execute();
      if (assigned.length > 0) {
        throw new ConflictError(`server ${server.name} is assigned to ${assigned.length} gateway assignment(s); remove them first`);
      }
      await trx.deleteFrom('servers').where('workspace_id', '=', viewer.workspaceId).where('id', '=', id).execute();
      await this.event(trx, viewer, 'server.deleted', id, { name: server.name });
      return server;
    });
  }

  /** Decrypted connection details for discovery and snapshot delivery. Never leaves the process. */
  openSecrets(server: ServerRow): { headers: Record<string, string>; env: Record<string, string> } {
    const headers: Record<string, string> = {};
    for (const [name, sealed] of Object.entries(server.auth_headers)) headers[name] = this.vault.open(sealed, serverSecretContext(server.id, 'header', name));
    const env: Record<string, string> = {};
    for (const [name, sealed] of Object.entries(server.secret_env)) env[name] = this.vault.open(sealed, serverSecretContext(server.id, 'env', name));
    return { headers, env };
  }

  /** Re-seals every server secret of the workspace under the vault's active key. */
  async resealSecrets(viewer: Viewer): Promise<number> {
    requireCapability(viewer, 'workspace.manage_settings');
    return this.database.db.transaction().execute(async (trx) => {
      const servers = await trx.selectFrom('servers').selectAll().where('workspace_id', '=', viewer.workspaceId).forUpdate().execute();
      let count = 0;
      for (const server of servers) {
        const reseal = (field: 'header' | 'env', sealed: Record<string, SealedSecret>) =>
          Object.fromEntries(
            Object.entries(sealed).map(([name, value]) => {
              if (!this.vault.needsReseal(value)) return [name, value];
              count++;
              const context = serverSecretContext(server.id, field, name);
              return [name, this.vault.seal(this.vault.open(value, context), context)];
            }),
          );
        await trx
          .updateTable('servers')
          .set({ auth_headers: JSON.stringify(reseal('header', server.auth_headers)), secret_env: JSON.stringify(reseal('env', server.secret_env)) })
          .where('id', '=', server.id)
          .execute();
      }
      await recordWorkspaceEvent(trx, viewer.workspaceId, viewer.actor, {
        type: 'vault.resealed',
        subjectType: 'Workspace',
        subjectId: viewer.workspaceId,
        details: { secrets: count, keyId: this.vault.activeKeyId },
      });
      return count;
    });
  }

  // Containers ---------------------------------------------------------------------------

  listContainers(viewer: Viewer, { limit, offset }: ListOptions): Promise<ServerContainerRow[]> {
    requireCapability(viewer, 'servers.view');
    return this.database.db
      .selectFrom('server_containers')
      .selectAll()
      .where('workspace_id', '=', viewer.workspaceId)
      .orderBy('name')
      .orderBy('id')
      .limit(limit)
      .offset(offset)
      .execute();
  }

  async containersByIds(workspaceId: string, ids: readonly string[]): Promise<ServerContainerRow[]> {
    if (ids.length === 0) return [];
    return this.database.db.selectFrom('server_containers').selectAll().where('workspace_id', '=', workspaceId).where('id', 'in', ids).execute();
  }

  async getContainer(viewer: Viewer, id: string, trx: Kysely<DB> = this.database.db): Promise<ServerContainerRow> {
    const row = await trx.selectFrom('server_containers').selectAll().where('workspace_id', '=', viewer.workspaceId).where('id', '=', id).executeTakeFirst();
    if (!row) throw new NotFoundError('ServerContainer', id);
    return row;
  }

  /** Servers of each container, in one statement. */
  async serversByContainerIds(workspaceId: string, ids: readonly string[]): Promise<Map<string, ServerRow[]>> {
    return loadGrouped(
      ids,
      (batch) =>
        this.database.db
          .selectFrom('server_container_members as m')
          .innerJoin('servers as s', (j) => j.onRef('s.id', '=', 'm.server_id').onRef('s.workspace_id', '=', 'm.workspace_id'))
          .selectAll('s')
          .select('m.container_id')
          .where('m.workspace_id', '=', workspaceId)
          .where('m.container_id', 'in', batch)
          .orderBy('s.name')
          .execute(),
      (r) => r.container_id,
      ({ container_id: _, ...server }) => server,
    );
  }

  /** Containers each server belongs to, in one statement. */
  async containersByServerIds(workspaceId: string, ids: readonly string[]): Promise<Map<string, ServerContainerRow[]>> {
    return loadGrouped(
      ids,
      (batch) =>
        this.database.db
          .selectFrom('server_container_members as m')
          .innerJoin('server_containers as c', (j) => j.onRef('c.id', '=', 'm.container_id').onRef('c.workspace_id', '=', 'm.workspace_id'))
          .selectAll('c')
          .select('m.server_id')
          .where('m.workspace_id', '=', workspaceId)
          .where('m.server_id', 'in', batch)
          .orderBy('c.name')
          .execute(),
      (r) => r.server_id,
      ({ server_id: _, ...container }) => container,
    );
  }

  async createContainer(viewer: Viewer, rawInput: unknown): Promise<ServerContainerRow> {
    requireCapability(viewer, 'servers.manage');
    const input = parseInput(containerInput, rawInput);
    return this.write(viewer, input.name, async (trx) => {
      const row = await trx
        .insertInto('server_containers')
        .values({ id: randomUUID(), workspace_id: viewer.workspaceId, name: input.name, description: input.description ?? '' })
        .returningAll()
        .executeTakeFirstOrThrow();
      await this.event(trx, viewer, 'server_container.created', row.id, { name: row.name }, 'ServerContainer');
      return row;
    }, 'container');
  }

  async updateContainer(viewer: Viewer, id: string, rawInput: unknown): Promise<ServerContainerRow> {
    requireCapability(viewer, 'servers.manage');
    const input = parseInput(containerUpdate, rawInput);
    return this.write(viewer, input.name, async (trx) => {
      await this.getContainer(viewer, id, trx);
      const row = await trx
        .updateTable('server_containers')
        .set({ ...(input.name !== undefined && { name: input.name }), ...(input.description !== undefined && { description: input.description }), updated_at: new Date() })
        .where('workspace_id', '=', viewer.workspaceId)
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow();
      await this.event(trx, viewer, 'server_container.updated', id, input, 'ServerContainer');
      return row;
    }, 'container');
  }

  async setContainerDisabled(viewer: Viewer, id: string, disabled: boolean): Promise<ServerContainerRow> {
    requireCapability(viewer, 'servers.manage');
    return this.write(viewer, undefined, (trx) =>
      setKillSwitch(trx, 'server_containers', viewer, id, disabled, { type: 'ServerContainer', event: 'server_container' }),
    );
  }

  async setContainerMembers(viewer: Viewer, id: string, serverIds: readonly string[], add: boolean): Promise<ServerContainerRow> {
    requireCapability(viewer, 'servers.manage');
    return this.write(viewer, undefined, async (trx) => {
      const container = await this.getContainer(viewer, id, trx);
      const unique = [...new Set(serverIds)];
      if (unique.length > 0) {
        const found = await trx.selectFrom('servers').select('id').where('workspace_id', '=', viewer.workspaceId).where('id', 'in', unique).execute();
        const missing = unique.find((s) => !found.some((f) => f.id === s));
        if (missing) throw new NotFoundError('Server', missing);
        if (add) {
          await trx
            .insertInto('server_container_members')
            .values(unique.map((server_id) => ({ workspace_id: viewer.workspaceId, container_id: id, server_id })))
            .onConflict((oc) => oc.columns(['container_id', 'server_id']).doNothing())
            .execute();
        } else {
          await trx.deleteFrom('server_container_members').where('workspace_id', '=', viewer.workspaceId).where('container_id', '=', id).where('server_id', 'in', unique).execute();
        }
      }
      await this.event(trx, viewer, add ? 'server_container.servers_added' : 'server_container.servers_removed', id, { serverIds: unique }, 'ServerContainer');
      return container;
    });
  }

  async deleteContainer(viewer: Viewer, id: string): Promise<ServerContainerRow> {
    requireCapability(viewer, 'servers.manage');
    return this.write(viewer, undefined, async (trx) => {
      const container = await this.getContainer(viewer, id, trx);
      const assigned = await trx.selectFrom('assignments').select('id').where('workspace_id', '=', viewer.workspaceId).where('container_id', '=', id).execute();
      if (assigned.length > 0) throw new ConflictError(`container ${container.name} is assigned to ${assigned.length} gateway assignment(s); remove them first`);
      await trx.deleteFrom('server_containers').where('workspace_id', '=', viewer.workspaceId).where('id', '=', id).execute();
      await this.event(trx, viewer, 'server_container.deleted', id, { name: container.name }, 'ServerContainer');
      return container;
    });
  }

  // Internals ----------------------------------------------------------------------------

  private toWrite(id: string, input: CreateServerInput): ServerWrite {
    const base = { name: input.name, description: input.description ?? '', ...this.authFields(id, input.auth ?? { kind: 'none', headers: [] }) };
    if (input.remote) return { ...base, kind: 'remote', ...this.remoteFields(input.remote), command: null, args: [], env: {}, secret_env: {}, cwd: null };
    if (input.managed) return { ...base, kind: 'managed', allow_insecure: false, ...this.managedFields(id, input.managed) };
    return { ...base, kind: 'workstation', transport: 'tunnel', url: null, allow_insecure: false, command: null, args: [], env: {}, secret_env: {}, cwd: null };
  }

  private remoteFields(remote: NonNullable<CreateServerInput['remote']>) {
    return {
      transport: remote.transport as ServerWrite['transport'],
      url: validateUpstreamUrl(remote.url, remote.allowInsecure, 'input.remote.url'),
      allow_insecure: remote.allowInsecure,
    };
  }

  private managedFields(id: string, managed: NonNullable<UpdateServerInput['managed']>) {
    validateCommand(managed.command, managed.cwd, 'input.managed.command');
    validateEnv(managed.env, 'input.managed.env');
    if (managed.launch === 'http' && !managed.url) throw new ValidationError('input.managed.url', 'input.managed.url: an HTTP managed server needs the URL it listens on');
    const env: Record<string, string> = {};
    const secretEnv: Record<string, SealedSecret> = {};
    for (const v of managed.env) {
      if (v.secret) secretEnv[v.name] = this.vault.seal(v.value, serverSecretContext(id, 'env', v.name));
      else env[v.name] = v.value;
    }
    return {
      transport: managed.launch as ServerWrite['transport'],
      url: managed.launch === 'http' ? validateUpstreamUrl(managed.url!, false, 'input.managed.url') : null,
      command: managed.command,
      args: [...managed.args],
      env,
      secret_env: secretEnv,
      cwd: managed.cwd ?? null,
    };
  }

  private authFields(id: string, auth: NonNullable<CreateServerInput['auth']>) {
    if (auth.kind === 'none') return { auth_kind: 'none', auth_headers: {} } as const;
    if (auth.headers.length === 0) throw new ValidationError('input.auth.headers', 'input.auth.headers: give at least one header');
    const headers: Record<string, SealedSecret> = {};
    for (const h of auth.headers) headers[h.name] = this.vault.seal(h.value, serverSecretContext(id, 'header', h.name));
    return { auth_kind: 'headers', auth_headers: headers } as const;
  }

  private serialize(w: Partial<ServerWrite>): Record<string, unknown> {
    const out: Record<string, unknown> = { ...w };
    for (const key of ['args', 'env', 'secret_env', 'auth_headers'] as const) {
      if (w[key] !== undefined) out[key] = JSON.stringify(w[key]);
    }
    return out;
  }

  private event(trx: Kysely<DB>, viewer: Viewer, type: string, id: string, details: Record<string, unknown>, subjectType = 'Server') {
    return recordWorkspaceEvent(trx, viewer.workspaceId, viewer.actor, { type, subjectType, subjectId: id, details });
  }

  private async write<T>(viewer: Viewer, name: string | undefined, fn: (trx: Kysely<DB>) => Promise<T>, noun = 'server'): Promise<T> {
    try {
      return await this.database.db.transaction().execute(fn);
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`a ${noun} named "${name}" already exists`, 'input.name');
      throw err;
    }
  }
}
