import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { z } from 'zod';
import { ForbiddenError, ConflictError, NotFoundError, ValidationError, isUniqueViolation } from '../errors.js';
import { requireCapability, type Viewer } from '../access/viewer.js';
import type { AlertService } from '../alerts/alert.service.js';
import type { Database } from '../db/database.js';
import type { DB } from '../db/tables.js';
import { recordWorkspaceEvent } from '../events/workspace-events.js';
import { parseInput } from '../shared/input.js';
import type { AccessRequestState, GatewayAccessRequestRow } from './access-request.table.js';

const MAX_TEXT = 1000;
const text = (field: string) =>
  z
    .string()
    .trim()
    .max(MAX_TEXT, `must be at most ${MAX_TEXT} characters`)
    .refine((s) => !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(s), `${field} must not contain control characters`);

const requestInput = z.object({ gatewayId: z.string(), userId: z.string(), reason: text('reason').default('') });
const noteInput = text('note').optional();

export interface AccessRequestFilter {
  readonly state?: AccessRequestState | null;
  readonly userId?: string | null;
  readonly gatewayId?: string | null;
}

/** Fold key of a request's alert, so that deciding the request resolves it. */
export const accessRequestFoldKey = (id: string) => `gateway_access_request:${id}`;

/** Actor-independent subject type of requests in events and alerts. */
const SUBJECT_TYPE = 'GatewayAccessRequest';

/**
 * Gateway access requests: a user asks for a gateway, admins are alerted and approve (the
 * user joins a team the gateway is provisioned to, which reaches every data plane with the
 * next snapshot) or deny. See README.md in this folder for who may file a request.
 */
export class GatewayAccessRequestService {
  constructor(
    private readonly database: Database,
    private readonly alerts: AlertService | undefined,
  ) {}

  /**
   * Files a request for `userId`. Needs `people.view` (the caller acts on behalf of a user
   * it can see). Conflicts when the user is deactivated, already reaches the gateway, or
   * already has a pending request for it.
   */
  async request(viewer: Viewer, rawInput: unknown): Promise<GatewayAccessRequestRow> {
    requireCapability(viewer, 'people.view');
    const input = parseInput(requestInput, rawInput);
    try {
      return await this.database.db.transaction().execute(async (trx) => {
        const user = await trx.selectFrom('users').select(['id', 'email', 'state']).where('workspace_id', '=', viewer.workspaceId).where('id', '=', input.userId).executeTakeFirst();
        if (!user) throw new NotFoundError('User', input.userId);
        if (user.state === 'deactivated') throw new ConflictError(`user ${user.email} is deactivated and cannot request access`, 'input.userId');
        const gateway = await trx
          .selectFrom('gateways')
          .select(['id', 'slug', 'archived_at'])
          .where('workspace_id', '=', viewer.workspaceId)
          .where('id', '=', input.gatewayId)
          .executeTakeFirst();
        if (!gateway) throw new NotFoundError('Gateway', input.gatewayId);
        if (gateway.archived_at) throw new ConflictError(`gateway ${gateway.slug} is archived`, 'input.gatewayId');
        const through = await this.grantingTeam(trx, viewer.workspaceId, user.id, gateway.id);
        if (through) throw new ConflictError(`user ${user.email} already reaches gateway ${gateway.slug} through team ${through}`, 'input.gatewayId');
        const pending = await trx
          .selectFrom('gateway_access_requests')
          .select('id')
          .where('workspace_id', '=', viewer.workspaceId)
          .where('user_id', '=', user.id)
          .where('gateway_id', '=', gateway.id)
          .where('state', '=', 'pending')
          .executeTakeFirst();
        if (pending) throw duplicate(user.email, gateway.slug);

        const row = await trx
          .insertInto('gateway_access_requests')
          .values({ id: randomUUID(), workspace_id: viewer.workspaceId, user_id: user.id, gateway_id: gateway.id, reason: input.reason, requested_by: viewer.actor })
          .returningAll()
          .executeTakeFirstOrThrow();
        await this.event(trx, viewer, 'gateway_access_request.requested', row);
        await this.alerts?.raise(
          {
            workspaceId: viewer.workspaceId,
            type: 'GATEWAY_ACCESS_REQUEST',
            severity: 'info',
            subject: `${user.email} asks for access to gateway ${gateway.slug}`,
            details: { requestId: row.id, userId: user.id, email: user.email, gatewayId: gateway.id, gatewaySlug: gateway.slug, reason: row.reason },
            subjectRef: { type: SUBJECT_TYPE, id: row.id },
            foldKey: accessRequestFoldKey(row.id),
            actor: viewer.actor,
          },
          trx,
        );
        return row;
      });
    } catch (err) {
      // Two concurrent requests: the partial unique index lets one through.
      if (isUniqueViolation(err)) throw duplicate(input.userId, input.gatewayId);
      throw err;
    }
  }

  /**
   * Approves a pending request by adding the user to `teamId`, which must be an enabled team
   * the gateway is provisioned to. Needs `gateways.manage_access`.
   */
  async approve(viewer: Viewer, id: string, teamId: string, rawNote?: string | null): Promise<GatewayAccessRequestRow> {
    requireCapability(viewer, 'gateways.manage_access');
    const note = parseInput(noteInput, rawNote ?? undefined, 'note');
    return this.database.db.transaction().execute(async (trx) => {
      const request = await this.pendingForUpdate(trx, viewer, id);
      const team = await trx.selectFrom('teams').select(['id', 'name', 'disabled']).where('workspace_id', '=', viewer.workspaceId).where('id', '=', teamId).executeTakeFirst();
      if (!team) throw new NotFoundError('Team', teamId);
      const provisioned = await trx
        .selectFrom('gateway_teams')
        .select('team_id')
        .where('workspace_id', '=', viewer.workspaceId)
        .where('gateway_id', '=', request.gateway_id)
        .where('team_id', '=', team.id)
        .executeTakeFirst();
      if (!provisioned) {
        throw new ValidationError('teamId', `teamId: team ${team.name} does not have the requested gateway; provision the gateway to it first, or pick a team that has it`);
      }
      if (team.disabled) throw new ValidationError('teamId', `teamId: team ${team.name} is disabled and grants nothing`);
      const user = await trx.selectFrom('users').select(['email', 'state']).where('workspace_id', '=', viewer.workspaceId).where('id', '=', request.user_id).executeTakeFirstOrThrow();
      if (user.state === 'deactivated') throw new ConflictError(`user ${user.email} was deactivated; reactivate them before approving`);

      await trx
        .insertInto('team_members')
        .values({ workspace_id: viewer.workspaceId, team_id: team.id, user_id: request.user_id })
        .onConflict((oc) => oc.columns(['team_id', 'user_id']).doNothing())
        .execute();
      // The same event TeamService records: the snapshot publisher recompiles on it.
      await recordWorkspaceEvent(trx, viewer.workspaceId, viewer.actor, {
        type: 'team.members_added',
        subjectType: 'Team',
        subjectId: team.id,
        details: { userIds: [request.user_id], gatewayAccessRequestId: request.id },
      });
      return this.decide(trx, viewer, request.id, { state: 'approved', team_id: team.id, decision_note: note ?? null });
    });
  }

  /** Denies a pending request, with an optional note the user can read. Needs `gateways.manage_access`. */
  async deny(viewer: Viewer, id: string, rawNote?: string | null): Promise<GatewayAccessRequestRow> {
    requireCapability(viewer, 'gateways.manage_access');
    const note = parseInput(noteInput, rawNote ?? undefined, 'note');
    return this.database.db.transaction().execute(async (trx) => {
      const request = await this.pendingForUpdate(trx, viewer, id);
      return this.decide(trx, viewer, request.id, { state: 'denied', team_id: null, decision_note: note ?? null });
    });
  }

  /** Requests newest first. Needs `people.view` or `gateways.manage_access`. */
  list(viewer: Viewer, filter: AccessRequestFilter, { limit, offset }: { limit: number; offset: number }): Promise<GatewayAccessRequestRow[]> {
    requireCanRead(viewer);
    let q = this.database.db.selectFrom('gateway_access_requests').selectAll().where('workspace_id', '=', viewer.workspaceId);
    if (filter.state) q = q.where('state', '=', filter.state);
    if (filter.userId) q = q.where('user_id', '=', filter.userId);
    if (filter.gatewayId) q = q.where('gateway_id', '=', filter.gatewayId);
    return q.orderBy('created_at', 'desc').orderBy('id').limit(limit).offset(offset).execute();
  }

  async get(viewer: Viewer, id: string): Promise<GatewayAccessRequestRow> {
    const [row] = await this.byIds(viewer, [id]);
    if (!row) throw new NotFoundError(SUBJECT_TYPE, id);
    return row;
  }

  async byIds(viewer: Viewer, ids: readonly string[]): Promise<GatewayAccessRequestRow[]> {
    requireCanRead(viewer);
    if (ids.length === 0) return [];
    return this.database.db.selectFrom('gateway_access_requests').selectAll().where('workspace_id', '=', viewer.workspaceId).where('id', 'in', ids).execute();
  }

  // Internals ----------------------------------------------------------------------------

  /** Name of an enabled team of the user that has the gateway, if any. */
  private async grantingTeam(trx: Kysely<DB>, workspaceId: string, userId: string, gatewayId: string): Promise<string | undefined> {
    const row = await trx
      .selectFrom('team_members as m')
      .innerJoin('gateway_teams as gt', (j) => j.onRef('gt.team_id', '=', 'm.team_id').onRef('gt.workspace_id', '=', 'm.workspace_id'))
      .innerJoin('teams as t', (j) => j.onRef('t.id', '=', 'm.team_id').onRef('t.workspace_id', '=', 'm.workspace_id'))
      .select('t.name')
      .where('m.workspace_id', '=', workspaceId)
      .where('m.user_id', '=', userId)
      .where('gt.gateway_id', '=', gatewayId)
      .where('t.disabled', '=', false)
      .orderBy('t.name')
      .executeTakeFirst();
    return row?.name;
  }

  private async pendingForUpdate(trx: Kysely<DB>, viewer: Viewer, id: string): Promise<GatewayAccessRequestRow> {
    const row = await trx.selectFrom('gateway_access_requests').selectAll().where('workspace_id', '=', viewer.workspaceId).where('id', '=', id).forUpdate().executeTakeFirst();
    if (!row) throw new NotFoundError(SUBJECT_TYPE, id);
    if (row.state !== 'pending') throw new ConflictError(`the request was already ${row.state}`);
    return row;
  }

  private async decide(
    trx: Kysely<DB>,
    viewer: Viewer,
    id: string,
    decision: { state: 'approved' | 'denied'; team_id: string | null; decision_note: string | null },
  ): Promise<GatewayAccessRequestRow> {
    const row = await trx
      .updateTable('gateway_access_requests')
      .set({ ...decision, decided_by: viewer.actor, decided_at: sql`now()`, updated_at: sql`now()` })
      .where('workspace_id', '=', viewer.workspaceId)
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
    await this.event(trx, viewer, `gateway_access_request.${decision.state}`, row);
    await this.alerts?.resolveByFoldKey(trx, viewer.workspaceId, 'GATEWAY_ACCESS_REQUEST', accessRequestFoldKey(id), viewer.actor);
    return row;
  }

  private event(trx: Kysely<DB>, viewer: Viewer, type: string, row: GatewayAccessRequestRow) {
    return recordWorkspaceEvent(trx, viewer.workspaceId, viewer.actor, {
      type,
      subjectType: SUBJECT_TYPE,
      subjectId: row.id,
      details: {
        userId: row.user_id,
        gatewayId: row.gateway_id,
        state: row.state,
        reason: row.reason,
        ...(row.team_id && { teamId: row.team_id }),
        ...(row.decision_note && { note: row.decision_note }),
      },
    });
  }
}

function requireCanRead(viewer: Viewer): void {
  if (!viewer.capabilities.has('people.view') && !viewer.capabilities.has('gateways.manage_access')) {
    throw new ForbiddenError('people.view', 'seeing gateway access requests needs the people.view or gateways.manage_access capability');
  }
}

function duplicate(user: string, gateway: string): ConflictError {
  return new ConflictError(`${user} already has a pending request for gateway ${gateway}`, 'input.gatewayId');
}
