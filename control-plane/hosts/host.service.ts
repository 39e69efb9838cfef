import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { ListOptions } from '../access/role.service.js';
import { requireCapability, type Viewer } from '../access/viewer.js';
import type { Database } from '../db/database.js';
import type { DB } from '../db/tables.js';
import { ConflictError, NotFoundError, isUniqueViolation } from '../errors.js';
import { recordWorkspaceEvent } from '../events/workspace-events.js';
import { description, displayName, parseInput } from '../shared/input.js';
import { TOKEN_PREFIXES, generateToken, hashToken, tokenDisplayPrefix } from '../shared/tokens.js';
import type { AccessTokenRow, ConnectionRow, HostRow } from './host.table.js';
import { loadGrouped } from '../shared/grouped.js';
import { setKillSwitch } from '../shared/kill-switch.js';

export const HOST_KINDS = ['agent', 'app'] as const;

/** Longest lifetime a token may be minted with: ten years. */
const MAX_TOKEN_DAYS = 3650;
const DAY_MS = 86_400_000;

const createHostInput = z.object({
  name: displayName(),
  kind: z.enum(HOST_KINDS).default('agent'),
  description: description.optional(),
});
const updateHostInput = z.object({ name: displayName().optional(), description: description.optional() });
const createConnectionInput = z.object({
  hostId: z.string(),
  gatewayId: z.string(),
  name: displayName(),
  userId: z.string().optional(),
});
const createTokenInput = z.object({
  connectionId: z.string(),
  name: displayName(),
  expiresInDays: z.number().int('must be a whole number of days').min(1, 'must be at least 1').max(MAX_TOKEN_DAYS, `must be at most ${MAX_TOKEN_DAYS}`).optional(),
});

export interface CreatedAccessToken {
  readonly accessToken: AccessTokenRow;
  /** The token itself. Shown once; only its hash is kept. */
  readonly secret: string;
}

/**
 * What the snapshot compiler reads about access in one workspace. Tokens appear only by
 * hash, and revoked ones not at all.
 */
export interface AccessSnapshotRows {
  readonly hosts: readonly Pick<HostRow, 'id' | 'name' | 'kind' | 'disabled'>[];
  readonly connections: readonly Pick<ConnectionRow, 'id' | 'host_id' | 'gateway_id' | 'user_id' | 'name' | 'disabled'>[];
  readonly accessTokens: readonly Pick<AccessTokenRow, 'id' | 'connection_id' | 'token_hash' | 'expires_at'>[];
}

/**
 * Hosts (the apps and agents that connect), their connections to gateways and the API
 * access tokens headless agents present on a connection.
 */
export class HostService {
  constructor(private readonly database: Database) {}

  list(viewer: Viewer, { limit, offset }: ListOptions): Promise<HostRow[]> {
    requireCapability(viewer, 'hosts.view');
    return this.database.db
      .selectFrom('hosts')
      .selectAll()
      .where('workspace_id', '=', viewer.workspaceId)
      .orderBy('name')
      .orderBy('id')
      .limit(limit)
      .offset(offset)
      .execute();
  }

  async get(viewer: Viewer, id: string, trx: Kysely<DB> = this.database.db): Promise<HostRow> {
    const row = await trx.selectFrom('hosts').selectAll().where('workspace_id', '=', viewer.workspaceId).where('id', '=', id).executeTakeFirst();
    if (!row) throw new NotFoundError('Host', id);
    return row;
  }

  async byIds(workspaceId: string, ids: readonly string[]): Promise<HostRow[]> {
    if (ids.length === 0) return [];
    return this.database.db.selectFrom('hosts').selectAll().where('workspace_id', '=', workspaceId).where('id', 'in', ids).execute();
  }

  async connectionsByIds(workspaceId: string, ids: readonly string[]): Promise<ConnectionRow[]> {
    if (ids.length === 0) return [];
    return this.database.db.selectFrom('connections').selectAll().where('workspace_id', '=', workspaceId).where('id', 'in', ids).execute();
  }

  async accessTokensByIds(workspaceId: string, ids: readonly string[]): Promise<AccessTokenRow[]> {
    if (ids.length === 0) return [];
    return this.database.db.selectFrom('access_tokens').selectAll().where('workspace_id', '=', workspaceId).where('id', 'in', ids).execute();
  }

  /** Connections of each host, in one statement for any number of hosts. */
  async connectionsByHostIds(workspaceId: string, hostIds: readonly string[]): Promise<Map<string, ConnectionRow[]>> {
    return loadGrouped(
      hostIds,
      (ids) => this.database.db.selectFrom('connections').selectAll().where('workspace_id', '=', workspaceId).where('host_id', 'in', ids).orderBy('name').orderBy('id').execute(),
      (row) => row.host_id,
    );
  }

  /** Tokens of each connection, revoked ones included, newest first; one statement. */
  async accessTokensByConnectionIds(workspaceId: string, connectionIds: readonly string[]): Promise<Map<string, AccessTokenRow[]>> {
    return loadGrouped(
      connectionIds,
      (ids) =>
        this.database.db.selectFrom('access_tokens').selectAll().where('workspace_id', '=', workspaceId).where('connection_id', 'in', ids).orderBy('created_at', 'desc').orderBy('id').execute(),
      (row) => row.connection_id,
    );
  }

  async create(viewer: Viewer, rawInput: unknown): Promise<HostRow> {
    requireCapability(viewer, 'hosts.manage');
    const input = parseInput(createHostInput, rawInput);
    return this.write(async (trx) => {
      const host = await trx
        .insertInto('hosts')
        .values({
          id: randomUUID(),
          workspace_id: viewer.workspaceId,
          name: input.name,
          kind: input.kind,
          description: input.description ?? '',
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      await this.event(trx, viewer, 'host.created', 'Host', host.id, { name: host.name, kind: host.kind });
      return host;
    }, input.name);
  }

  async update(viewer: Viewer, id: string, rawInput: unknown): Promise<HostRow> {
    requireCapability(viewer, 'hosts.manage');
    const input = parseInput(updateHostInput, rawInput);
    return this.write(async (trx) => {
      await this.get(viewer, id, trx);
      const host = await trx
        .updateTable('hosts')
        .set({
          ...(input.name !== undefined && { name: input.name }),
          ...(input.description !== undefined && { description: input.description }),
          updated_at: new Date(),
        })
        .where('workspace_id', '=', viewer.workspaceId)
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow();
      await this.event(trx, viewer, 'host.updated', 'Host', id, input);
      return host;
    }, input.name);
  }

  /** Host kill switch: a disabled host's connections refuse every call; they keep their own state. */
  async setDisabled(viewer: Viewer, id: string, disabled: boolean): Promise<HostRow> {
    requireCapability(viewer, 'hosts.disable');
    return this.write((trx) =>
      setKillSwitch(trx, 'hosts', viewer, id, disabled, { type: 'Host', event: 'host', details: (host) => ({ name: host.name }) }),
    );
  }

  /** Deletes a host with its connections and their tokens. */
  async delete(viewer: Viewer, id: string): Promise<HostRow> {
    requireCapability(viewer, 'hosts.manage');
    return this.write(async (trx) => {
      const host = await this.get(viewer, id, trx);
      const connections = await trx
        .selectFrom('connections')
        .select('id')
        .where('workspace_id', '=', viewer.workspaceId)
        .where('host_id', '=', id)
        .execute();
      await trx.deleteFrom('hosts').where('workspace_id', '=', viewer.workspaceId).where('id', '=', id).execute();
      await this.event(trx, viewer, 'host.deleted', 'Host', id, { name: host.name, connectionIds: connections.map((c) => c.id) });
      return host;
    });
  }

  async getConnection(viewer: Viewer, id: string, trx: Kysely<DB> = this.database.db): Promise<ConnectionRow> {
    const row = await trx
      .selectFrom('connections')
      .selectAll()
      .where('workspace_id', '=', viewer.workspaceId)
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) throw new NotFoundError('Connection', id);
    return row;
  }

  /**
   * Connects a host to one gateway of the workspace, optionally acting for a user. The
   * gateway must not be archived and the user must be active.
   */
  async createConnection(viewer: Viewer, rawInput: unknown): Promise<ConnectionRow> {
    requireCapability(viewer, 'hosts.manage');
    const input = parseInput(createConnectionInput, rawInput);
    return this.write(async (trx) => {
      const host = await this.get(viewer, input.hostId, trx);
      const gateway = await trx
        .selectFrom('gateways')
        .select(['id', 'slug', 'archived_at'])
        .where('workspace_id', '=', viewer.workspaceId)
        .where('id', '=', input.gatewayId)
        .executeTakeFirst();
      if (!gateway) throw new NotFoundError('Gateway', input.gatewayId);
      if (gateway.archived_at !== null) {
        throw new ConflictError(`gateway ${gateway.slug} is archived; restore it before connecting to it`, 'input.gatewayId');
      }
      if (input.userId !== undefined) {
        const user = await trx
          .selectFrom('users')
          .select(['id', 'email', 'state'])
          .where('workspace_id', '=', viewer.workspaceId)
          .where('id', '=', input.userId)
          .executeTakeFirst();
        if (!user) throw new NotFoundError('User', input.userId);
        if (user.state !== 'active') {
          throw new ConflictError(`user ${user.email} is ${user.state}; a connection can act only for an active user`, 'input.userId');
        }
      }
      const connection = await trx
        .insertInto('connections')
        .values({
          id: randomUUID(),
          workspace_id: viewer.workspaceId,
          host_id: host.id,
          gateway_id: gateway.id,
          user_id: input.userId ?? null,
          name: input.name,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      await this.event(trx, viewer, 'connection.created', 'Connection', connection.id, {
        name: connection.name,
        hostId: host.id,
        gatewayId: gateway.id,
        userId: connection.user_id,
      });
      return connection;
    });
  }

  /** Connection kill switch: its tokens stop working in every data plane while it is disabled. */
  async setConnectionDisabled(viewer: Viewer, id: string, disabled: boolean): Promise<ConnectionRow> {
    requireCapability(viewer, 'hosts.disable');
    return this.write((trx) =>
      setKillSwitch(trx, 'connections', viewer, id, disabled, {
        type: 'Connection',
        event: 'connection',
        details: (connection) => ({ name: connection.name, hostId: connection.host_id, gatewayId: connection.gateway_id }),
      }),
    );
  }

  /** Deletes a connection with its tokens. */
  async deleteConnection(viewer: Viewer, id: string): Promise<ConnectionRow> {
    requireCapability(viewer, 'hosts.manage');
    return this.write(async (trx) => {
      const connection = await this.getConnection(viewer, id, trx);
      await trx.deleteFrom('connections').where('workspace_id', '=', viewer.workspaceId).where('id', '=', id).execute();
      await this.event(trx, viewer, 'connection.deleted', 'Connection', id, { name: connection.name, hostId: connection.host_id });
      return connection;
    });
  }

  /** Mints a token scoped to one connection. The secret is returned here and never again. */
  async createAccessToken(viewer: Viewer, rawInput: unknown): Promise<CreatedAccessToken> {
    requireCapability(viewer, 'hosts.manage');
    const input = parseInput(createTokenInput, rawInput);
    return this.write(async (trx) => {
      const connection = await this.getConnection(viewer, input.connectionId, trx);
      const secret = generateToken(TOKEN_PREFIXES.accessToken);
      const accessToken = await trx
        .insertInto('access_tokens')
        .values({
          id: randomUUID(),
          workspace_id: viewer.workspaceId,
          connection_id: connection.id,
          name: input.name,
          token_hash: hashToken(secret),
          token_prefix: tokenDisplayPrefix(secret),
          created_by: viewer.actor,
          expires_at: input.expiresInDays === undefined ? null : new Date(Date.now() + input.expiresInDays * DAY_MS),
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      await this.event(trx, viewer, 'access_token.created', 'AccessToken', accessToken.id, {
        name: accessToken.name,
        connectionId: connection.id,
        prefix: accessToken.token_prefix,
        expiresAt: accessToken.expires_at,
      });
      return { accessToken, secret };
    });
  }

  async revokeAccessToken(viewer: Viewer, id: string): Promise<AccessTokenRow> {
    requireCapability(viewer, 'hosts.manage');
    return this.write(async (trx) => {
      const row = await trx
        .updateTable('access_tokens')
        .set({ revoked_at: new Date() })
        .where('workspace_id', '=', viewer.workspaceId)
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .returningAll()
        .executeTakeFirst();
      if (!row) {
        const existing = await trx.selectFrom('access_tokens').select('id').where('workspace_id', '=', viewer.workspaceId).where('id', '=', id).executeTakeFirst();
        if (!existing) throw new NotFoundError('AccessToken', id);
        throw new ConflictError('the access token is already revoked');
      }
      await this.event(trx, viewer, 'access_token.revoked', 'AccessToken', id, { name: row.name, connectionId: row.connection_id });
      return row;
    });
  }

  /** Hosts, connections and live (unrevoked) token hashes of a workspace, for the snapshot compiler. */
  async accessSnapshotRows(workspaceId: string, trx: Kysely<DB> = this.database.db): Promise<AccessSnapshotRows> {
    // One after another: inside a caller's transaction all three share one connection.
    const hosts = await trx.selectFrom('hosts').select(['id', 'name', 'kind', 'disabled']).where('workspace_id', '=', workspaceId).orderBy('id').execute();
    const connections = await trx
      .selectFrom('connections')
      .select(['id', 'host_id', 'gateway_id', 'user_id', 'name', 'disabled'])
      .where('workspace_id', '=', workspaceId)
      .orderBy('id')
      .execute();
    const accessTokens = await trx
      .selectFrom('access_tokens')
      .select(['id', 'connection_id', 'token_hash', 'expires_at'])
      .where('workspace_id', '=', workspaceId)
      .where('revoked_at', 'is', null)
      .orderBy('id')
      .execute();
    return { hosts, connections, accessTokens };
  }

  private event(trx: Kysely<DB>, viewer: Viewer, type: string, subjectType: string, subjectId: string, details: Record<string, unknown>) {
    return recordWorkspaceEvent(trx, viewer.workspaceId, viewer.actor, { type, subjectType, subjectId, details });
  }

  private async write<T>(fn: (trx: Kysely<DB>) => Promise<T>, name?: string): Promise<T> {
    try {
      return await this.database.db.transaction().execute(fn);
    } catch (err) {
      // Only host names are unique by choice; other writes pass no name and rethrow.
      if (isUniqueViolation(err) && name !== undefined) throw new ConflictError(`a host named "${name}" already exists`, 'input.name');
      throw err;
    }
  }
}
