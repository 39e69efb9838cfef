import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { deriveDeliveryKey, wrapSnapshotKey, type EncryptedSecret } from '../../schema/snapshot/index.js';
import { requireCapability, type Viewer } from '../access/viewer.js';
import type { AlertService } from '../alerts/alert.service.js';
import { snapshotRejectedAlert } from '../alerts/sources.js';
import type { Database } from '../db/database.js';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError, isUniqueViolation } from '../errors.js';
import { recordWorkspaceEvent } from '../events/workspace-events.js';
import type { Vault } from '../identities/vault.js';
import type { SnapshotPublisher, StoredSnapshot } from '../snapshot/publisher.js';
import { displayName, parseInput } from '../shared/input.js';
import { TOKEN_PREFIXES, generateToken, hashToken, tokenDisplayPrefix } from '../shared/tokens.js';
import type { DataPlaneRow } from './data-plane.table.js';

/**
 * The internal capability of a data-plane principal. Not in the public catalog, so no
 * role (built-in or custom) can hold it, and a data plane holds nothing else.
 */
export const RECEIVE_SNAPSHOTS = 'snapshots.receive';

const registerInput = z.object({ name: displayName() });
const MAX_REASON_LENGTH = 2000;
/** How often last-seen time is written at most on acknowledgements. */
const LAST_SEEN_RESOLUTION_MS = 10_000;

export interface RegisteredDataPlane {
  readonly dataPlane: DataPlaneRow;
  /** The data-plane token. Shown once; only its hash and the key derived from it are kept. */
  readonly token: string;
}

/** One snapshot as delivered to one data plane: the body plus the snapshot key wrapped for it. */
export interface SnapshotDelivery {
  readonly version: number;
  readonly contentHash: string;
  readonly body: Record<string, unknown>;
  /** The key id the body's secrets name (`EncryptedSecret.keyId`). */
  readonly snapshotKeyId: string;
  /** That key, wrapped under the receiving data plane's delivery key. */
  readonly snapshotKey: EncryptedSecret;
}

export interface SnapshotReceipt {
  readonly version: number;
  readonly at: Date;
}

const deliveryKeyContext = (dataPlaneId: string) => `data_plane:${dataPlaneId}:delivery-key`;

/**
 * Data planes: registration (a token shown once), revocation, the principal a data-plane
 * token authenticates as, snapshot delivery and the acknowledgements that come back.
 */
export class DataPlaneService {
  constructor(
    private readonly database: Database,
    private readonly vault: Vault,
    private readonly snapshots: SnapshotPublisher,
    private readonly options: { readonly alerts?: AlertService } = {},
  ) {}

  async register(viewer: Viewer, rawInput: unknown): Promise<RegisteredDataPlane> {
    requireCapability(viewer, 'workspace.manage_data_planes');
    const input = parseInput(registerInput, rawInput);
    const id = randomUUID();
    const token = generateToken(TOKEN_PREFIXES.dataPlane);
    const deliveryKey = deriveDeliveryKey(token, id);
    try {
      return await this.database.db.transaction().execute(async (trx) => {
        const dataPlane = await trx
          .insertInto('data_planes')
          .values({
            id,
            workspace_id: viewer.workspaceId,
            name: input.name,
            token_hash: hashToken(token),
            token_prefix: tokenDisplayPrefix(token),
            wrapped_delivery_key: JSON.stringify(this.vault.seal(deliveryKey.toString('base64'), deliveryKeyContext(id))),
          })
          .returningAll()
          .executeTakeFirstOrThrow();
        await recordWorkspaceEvent(trx, viewer.workspaceId, viewer.actor, {
          type: 'data_plane.registered',
          subjectType: 'DataPlane',
          subjectId: id,
          details: { name: input.name, prefix: dataPlane.token_prefix },
        });
        return { dataPlane, token };
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`a data plane named "${input.name}" already exists`, 'input.name');
      throw err;
    }
  }

  async revoke(viewer: Viewer, id: string): Promise<DataPlaneRow> {
    requireCapability(viewer, 'workspace.manage_data_planes');
    return this.database.db.transaction().execute(async (trx) => {
      const row = await trx
        .updateTable('data_planes')
        .set({ revoked_at: new Date() })
        .where('workspace_id', '=', viewer.workspaceId)
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .returningAll()
        .executeTakeFirst();
      if (!row) {
        const existing = await trx.selectFrom('data_planes').select('id').where('workspace_id', '=', viewer.workspaceId).where('id', '=', id).executeTakeFirst();
        if (!existing) throw new NotFoundError('DataPlane', id);
        throw new ConflictError('the data plane is already revoked');
      }
      await recordWorkspaceEvent(trx, viewer.workspaceId, viewer.actor, {
        type: 'data_plane.revoked',
        subjectType: 'DataPlane',
        subjectId: id,
        details: { name: row.name },
      });
      return row;
    });
  }

  list(viewer: Viewer, includeRevoked: boolean, { limit, offset }: { limit: number; offset: number }): Promise<DataPlaneRow[]> {
    requireCapability(viewer, 'workspace.view_settings');
    let q = this.database.db.selectFrom('data_planes').selectAll().where('workspace_id', '=', viewer.workspaceId);
    if (!includeRevoked) q = q.where('revoked_at', 'is', null);
    return q.orderBy('created_at').orderBy('id').limit(limit).offset(offset).execute();
  }

  async byIds(workspaceId: string, ids: readonly string[]): Promise<DataPlaneRow[]> {
    if (ids.length === 0) return [];
    return this.database.db.selectFrom('data_planes').selectAll().where('workspace_id', '=', workspaceId).where('id', 'in', ids).execute();
  }

  /**
   * Resolves a presented data-plane token to its principal, or null when it is not one,
   * unknown or revoked. Stamps last contact.
   */
  async authenticate(token: string): Promise<Viewer | null> {
    if (!token.startsWith(TOKEN_PREFIXES.dataPlane) || token.length > 200) return null;
    const row = await this.database.db
      .selectFrom('data_planes')
      .select(['id', 'workspace_id', 'revoked_at'])
      .where('token_hash', '=', hashToken(token))
      .executeTakeFirst();
    if (!row || row.revoked_at !== null) return null;
    void this.database.db
      .updateTable('data_planes')
      .set({ last_seen_at: new Date() })
      .where('id', '=', row.id)
      .execute()
      .catch(() => undefined);
    return dataPlaneViewer(row.workspace_id, row.id);
  }

  /**
   * The latest snapshot for a data plane, if newer than `sinceVersion`, with the snapshot
   * key wrapped under its delivery key. Throws when the data plane was revoked meanwhile.
   */
  async deliver(viewer: Viewer, snapshot: StoredSnapshot): Promise<SnapshotDelivery> {
    const dataPlaneId = requireDataPlane(viewer);
    const row = await this.database.db
      .selectFrom('data_planes')
      .select(['revoked_at', 'wrapped_delivery_key'])
      .where('workspace_id', '=', viewer.workspaceId)
      .where('id', '=', dataPlaneId)
      .executeTakeFirst();
    if (!row || row.revoked_at !== null) throw new ForbiddenError(RECEIVE_SNAPSHOTS, 'this data plane was revoked');
    const deliveryKey = Buffer.from(this.vault.open(row.wrapped_delivery_key, deliveryKeyContext(dataPlaneId)), 'base64');
    const key = await this.snapshots.snapshotKey(viewer.workspaceId);
    return {
      version: snapshot.version,
      contentHash: snapshot.contentHash,
      body: snapshot.body,
      snapshotKeyId: key.id,
      snapshotKey: wrapSnapshotKey(deliveryKey, dataPlaneId, viewer.workspaceId, key.id, key.key),
    };
  }

  /** Records that the data plane validated and now serves `version`. */
  async acknowledge(viewer: Viewer, version: number): Promise<SnapshotReceipt> {
    const dataPlaneId = requireDataPlane(viewer);
    await this.requirePublished(viewer.workspaceId, version);
    const at = new Date();
    const row = await this.database.db
      .updateTable('data_planes')
      .set({ acked_version: String(version), acked_at: at, last_seen_at: at })
      .where('workspace_id', '=', viewer.workspaceId)
      .where('id', '=', dataPlaneId)
      .where('revoked_at', 'is', null)
      .returning('id')
      .executeTakeFirst();
    if (!row) throw new ForbiddenError(RECEIVE_SNAPSHOTS, 'this data plane was revoked');
    return { version, at };
  }

  /** Records that the data plane refused `version` and keeps serving what it held. */
  async reject(viewer: Viewer, version: number, reason: string): Promise<SnapshotReceipt> {
    const dataPlaneId = requireDataPlane(viewer);
    if (!Number.isSafeInteger(version) || version < 1) throw new ValidationError('version', 'version: must be a positive integer');
    const trimmed = reason.trim().slice(0, MAX_REASON_LENGTH);
    if (trimmed === '') throw new ValidationError('reason', 'reason: say why the snapshot was rejected');
    const at = new Date();
    return this.database.db.transaction().execute(async (trx) => {
      const row = await trx
        .updateTable('data_planes')
        .set({ last_rejection: trimmed, last_rejected_version: String(version), last_rejected_at: at, last_seen_at: at })
        .where('workspace_id', '=', viewer.workspaceId)
        .where('id', '=', dataPlaneId)
        .where('revoked_at', 'is', null)
        .returning(['id', 'name'])
        .executeTakeFirst();
      if (!row) throw new ForbiddenError(RECEIVE_SNAPSHOTS, 'this data plane was revoked');
      await recordWorkspaceEvent(trx, viewer.workspaceId, viewer.actor, {
        type: 'data_plane.snapshot_rejected',
        subjectType: 'DataPlane',
        subjectId: dataPlaneId,
        details: { name: row.name, version, reason: trimmed },
      });
      await this.options.alerts?.raise(snapshotRejectedAlert({ workspaceId: viewer.workspaceId, dataPlaneId, dataPlaneName: row.name, version, reason: trimmed, actor: viewer.actor }), trx);
      return { version, at };
    });
  }

  private async requirePublished(workspaceId: string, version: number): Promise<void> {
    if (!Number.isSafeInteger(version) || version < 1) throw new ValidationError('version', 'version: must be a positive integer');
    let latest = await this.snapshots.latest(workspaceId);
    if (!latest || version > latest.version) latest = await this.snapshots.latest(workspaceId, { fresh: true });
    if (!latest || version > latest.version) {
      throw new ValidationError('version', `version: ${version} was never published; the latest is ${latest?.version ?? 'none'}`);
    }
  }
}

/** The principal of a data-plane token: receives snapshots of its workspace and nothing else. */
export function dataPlaneViewer(workspaceId: string, dataPlaneId: string): Viewer {
  return {
    workspaceId,
    actor: `data_plane:${dataPlaneId}`,
    apiKeyId: null,
    roleId: '',
    capabilities: new Set([RECEIVE_SNAPSHOTS]),
    dataPlaneId,
  };
}

function requireDataPlane(viewer: Viewer): string {
  if (!viewer.dataPlaneId || !viewer.capabilities.has(RECEIVE_SNAPSHOTS)) {
    throw new ForbiddenError(RECEIVE_SNAPSHOTS, 'only a data plane, with its data-plane token, can do this');
  }
  return viewer.dataPlaneId;
}
