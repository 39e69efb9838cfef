import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { FEATURE_TYPES, namespacedFeatureName, type FeatureType } from '../../schema/snapshot/index.js';
import { requireCapability, type Viewer } from '../access/viewer.js';
import type { AlertService } from '../alerts/alert.service.js';
import { featureProvisionedAlert } from '../alerts/sources.js';
import type { Database } from '../db/database.js';
import type { DB } from '../db/tables.js';
import { ConflictError, NotFoundError, ValidationError } from '../errors.js';
import { recordWorkspaceEvent } from '../events/workspace-events.js';
import type { FeatureKind, ServerFeatureRow } from '../servers/server.table.js';
import { auditPinApproved } from '../servers/threats/threat-audit.js';
import { parseInput } from '../shared/input.js';
import { z } from 'zod';
import type { AssignmentPinRow, AssignmentRow, MetadataOverride, Provisioning, ProvisioningMode } from './gateway.table.js';
import { loadGrouped } from '../shared/grouped.js';
import { setKillSwitch } from '../shared/kill-switch.js';

/** Feature types as the snapshot names them → feature kinds as discovery stores them. */
export const KIND_OF: Readonly<Record<FeatureType, FeatureKind>> = {
  tools: 'tool',
  prompts: 'prompt',
  resources: 'resource',
  resourceTemplates: 'resourceTemplate',
};

/** Letters, digits, `-` and `.`: valid in tool names and in URI schemes alike. */
const PREFIX = /^(?:[a-z0-9][a-z0-9.-]{0,31})?$/;

export const UNREVIEWED_PROVISIONING: Provisioning = Object.freeze({
  tools: { mode: 'UNREVIEWED', selected: [] },
  prompts: { mode: 'UNREVIEWED', selected: [] },
  resources: { mode: 'UNREVIEWED', selected: [] },
  resourceTemplates: { mode: 'UNREVIEWED', selected: [] },
});

const assignInput = z.object({
  gatewayId: z.string(),
  serverId: z.string().optional(),
  containerId: z.string().optional(),
  identityScheme: z.enum(['shared', 'personal']).default('shared'),
  namespacePrefix: z.string().regex(PREFIX, 'must be empty or up to 32 lowercase letters, digits, "-" and "."').default(''),
});
const updateInput = z.object({
  identityScheme: z.enum(['shared', 'personal']).optional(),
  namespacePrefix: z.string().regex(PREFIX, 'must be empty or up to 32 lowercase letters, digits, "-" and "."').optional(),
});
const provisioningInput = z.object({
  featureType: z.enum(FEATURE_TYPES),
  mode: z.enum(['ALLOW_ALL', 'ALLOW_SELECTED', 'BLOCK_ALL']),
  selected: z.array(z.string().min(1).max(2048)).max(5000).default([]),
});
const fieldOverride = <T extends z.ZodType>(value: T) =>
  z.discriminatedUnion('action', [
    z.object({ action: z.literal('keep') }),
    z.object({ action: z.literal('strip') }),
    z.object({ action: z.literal('replace'), value }),
  ]);
const overrideInput = z.object({
  featureType: z.enum(FEATURE_TYPES),
  name: z.string().min(1).max(2048),
  title: fieldOverride(z.string().max(200)).default({ action: 'keep' }),
  description: fieldOverride(z.string().max(10_000)).default({ action: 'keep' }),
  annotations: fieldOverride(z.record(z.string(), z.unknown())).default({ action: 'keep' }),
});
const pinInput = z.object({
  featureType: z.enum(FEATURE_TYPES),
  name: z.string().min(1).max(2048),
  serverId: z.string().optional(),
});

/** A name two features would both be exposed under on one gateway. */
export interface NameCollision {
  readonly featureType: FeatureType;
  readonly name: string;
  readonly sources: readonly { assignmentId: string; serverId: string; upstreamName: string }[];
}

/** A pin with the approved and the live definition side by side. */
export interface PinView extends AssignmentPinRow {
  readonly featureType: FeatureType;
  readonly currentHash: string | null;
  readonly currentDefinition: Record<string, unknown> | null;
  readonly status: 'OK' | 'CHANGED' | 'MISSING';
}

export class AssignmentService {
  constructor(
    private readonly database: Database,
    private readonly options: { readonly alerts?: AlertService } = {},
  ) {}

  async byIds(workspaceId: string, ids: readonly string[]): Promise<AssignmentRow[]> {
    if (ids.length === 0) return [];
    return this.database.db.selectFrom('assignments').selectAll().where('workspace_id', '=', workspaceId).where('id', 'in', ids).execute();
  }

  /** Assignments of each gateway, in one statement. */
  async byGatewayIds(workspaceId: string, ids: readonly string[]): Promise<Map<string, AssignmentRow[]>> {
    return loadGrouped(
      ids,
      (batch) =>
        this.database.db.selectFrom('assignments').selectAll().where('workspace_id', '=', workspaceId).where('gateway_id', 'in', batch).orderBy('created_at').orderBy('id').execute(),
      (r) => r.gateway_id,
    );
  }

  async get(viewer: Viewer, id: string, trx: Kysely<DB> = this.database.db): Promise<AssignmentRow> {
    const row = await trx.selectFrom('assignments').selectAll().where('workspace_id', '=', viewer.workspaceId).where('id', '=', id).executeTakeFirst();
    if (!row) throw new NotFoundError('Assignment', id);
    return row;
  }

  async assign(viewer: Viewer, rawInput: unknown): Promise<AssignmentRow> {
    requireCapability(viewer, 'gateways.manage');
    const input = parseInput(assignInput, rawInput);
    if ((input.serverId === undefined) === (input.containerId === undefined)) {
      throw new ValidationError('input', 'input: give exactly one of serverId or containerId');
    }
    return this.database.db.transaction().execute(async (trx) => {
      const gateway = await trx.selectFrom('gateways').selectAll().where('workspace_id', '=', viewer.workspaceId).where('id', '=', input.gatewayId).executeTakeFirst();
      if (!gateway) throw new NotFoundError('Gateway', input.gatewayId);
      if (gateway.archived_at) throw new ConflictError(`gateway ${gateway.slug} is archived; restore it before assigning servers`);
      if (input.serverId) {
        const server = await trx.selectFrom('servers').select(['id', 'name', 'review_state']).where('workspace_id', '=', viewer.workspaceId).where('id', '=', input.serverId).executeTakeFirst();
        if (!server) throw new NotFoundError('Server', input.serverId);
        if (server.review_state !== 'approved') {
          throw new ConflictError(`server ${server.name} is ${server.review_state.replace('_', ' ')}; it stays out of gateways until an admin approves it`);
        }
      } else {
        const container = await trx.selectFrom('server_containers').select('id').where('workspace_id', '=', viewer.workspaceId).where('id', '=', input.containerId!).executeTakeFirst();
        if (!container) throw new NotFoundError('ServerContainer', input.containerId!);
      }
      const row = await trx
        .insertInto('assignments')
        .values({
          id: randomUUID(),
          workspace_id: viewer.workspaceId,
          gateway_id: input.gatewayId,
          server_id: input.serverId ?? null,
          container_id: input.containerId ?? null,
          identity_scheme: input.identityScheme,
          namespace_prefix: input.namespacePrefix,
          provisioning: JSON.stringify(UNREVIEWED_PROVISIONING),
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      await this.event(trx, viewer, 'assignment.created', row.id, { gatewayId: row.gateway_id, serverId: row.server_id, containerId: row.container_id });
      return row;
    });
  }

  async update(viewer: Viewer, id: string, rawInput: unknown): Promise<AssignmentRow> {
    requireCapability(viewer, 'gateways.manage');
    const input = parseInput(updateInput, rawInput);
    return this.database.db.transaction().execute(async (trx) => {
      const current = await this.get(viewer, id, trx);
      const row = await trx
        .updateTable('assignments')
        .set({
          ...(input.identityScheme !== undefined && { identity_scheme: input.identityScheme }),
          ...(input.namespacePrefix !== undefined && { namespace_prefix: input.namespacePrefix }),
          updated_at: new Date(),
        })
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow();
      await this.requireNoCollisions(trx, viewer.workspaceId, current.gateway_id);
      await this.event(trx, viewer, 'assignment.updated', id, input);
      return row;
    });
  }

  async setDisabled(viewer: Viewer, id: string, disabled: boolean): Promise<AssignmentRow> {
    requireCapability(viewer, 'gateways.manage');
    return this.database.db
      .transaction()
      .execute((trx) => setKillSwitch(trx, 'assignments', viewer, id, disabled, { type: 'Assignment', event: 'assignment' }));
  }

  async remove(viewer: Viewer, id: string): Promise<AssignmentRow> {
    requireCapability(viewer, 'gateways.manage');
    return this.database.db.transaction().execute(async (trx) => {
      const row = await this.get(viewer, id, trx);
      await trx.deleteFrom('assignments').where('workspace_id', '=', viewer.workspaceId).where('id', '=', id).execute();
      await this.event(trx, viewer, 'assignment.removed', id, { gatewayId: row.gateway_id });
      return row;
    });
  }

  async setProvisioning(viewer: Viewer, id: string, rawInput: unknown): Promise<AssignmentRow> {
    requireCapability(viewer, 'gateways.manage_provisioning');
    const input = parseInput(provisioningInput, rawInput);
    const selected = input.mode === 'ALLOW_SELECTED' ? [...new Set(input.selected)].sort() : [];
    return this.database.db.transaction().execute(async (trx) => {
      const current = await this.get(viewer, id, trx);
      if (input.mode === 'ALLOW_SELECTED' && selected.length > 0) {
        const known = new Set((await this.featuresOf(trx, viewer.workspaceId, current, input.featureType)).map((f) => f.name));
        const unknown = selected.filter((n) => !known.has(n));
        if (unknown.length > 0) {
          throw new ValidationError(
            'input.selected',
            `input.selected: ${unknown.slice(0, 5).join(', ')}${unknown.length > 5 ? ` and ${unknown.length - 5} more` : ''} not among the discovered ${input.featureType}; run discovery first`,
          );
        }
      }
      const provisioning: Provisioning = { ...current.provisioning, [input.featureType]: { mode: input.mode as ProvisioningMode, selected } };
      const row = await trx
        .updateTable('assignments')
        .set({ provisioning: JSON.stringify(provisioning), updated_at: new Date() })
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow();
      await this.requireNoCollisions(trx, viewer.workspaceId, current.gateway_id);
      await this.event(trx, viewer, 'assignment.provisioning_changed', id, { featureType: input.featureType, mode: input.mode, selected });
      if (this.options.alerts) await this.options.alerts.raise(await featureProvisionedAlert(trx, viewer, row, { featureType: input.featureType, mode: input.mode, selected }), trx);
      return row;
    });
  }

  async setMetadataOverride(viewer: Viewer, id: string, rawInput: unknown): Promise<AssignmentRow> {
    requireCapability(viewer, 'gateways.manage_provisioning');
    const input = parseInput(overrideInput, rawInput);
    return this.database.db.transaction().execute(async (trx) => {
      const current = await this.get(viewer, id, trx);
      const key = `${input.featureType}:${input.name}`;
      const overrides: Record<string, MetadataOverride> = { ...current.metadata_overrides };
      const toField = <T>(o: { action: string; value?: T }): T | null | undefined => (o.action === 'keep' ? undefined : o.action === 'strip' ? null : (o.value as T));
      const next: MetadataOverride = {
        ...(input.title.action !== 'keep' && { title: toField(input.title) }),
        ...(input.description.action !== 'keep' && { description: toField(input.description) }),
        ...(input.annotations.action !== 'keep' && { annotations: toField(input.annotations) as Record<string, unknown> | null }),
      };
      if (Object.keys(next).length === 0) delete overrides[key];
      else overrides[key] = next;
      const row = await trx
        .updateTable('assignments')
        .set({ metadata_overrides: JSON.stringify(overrides), updated_at: new Date() })
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow();
      await this.event(trx, viewer, 'assignment.metadata_override_changed', id, { featureType: input.featureType, name: input.name });
      return row;
    });
  }

  /** Pins a feature to its current definition; pinning again approves a changed definition. */
  async pin(viewer: Viewer, id: string, rawInput: unknown): Promise<PinView> {
    requireCapability(viewer, 'gateways.manage_provisioning');
    const input = parseInput(pinInput, rawInput);
    return this.database.db.transaction().execute(async (trx) => {
      const assignment = await this.get(viewer, id, trx);
      const candidates = (await this.featuresOf(trx, viewer.workspaceId, assignment, input.featureType)).filter(
        (f) => f.name === input.name && (!input.serverId || f.server_id === input.serverId),
      );
      if (candidates.length === 0) throw new NotFoundError('Feature', `${input.featureType}:${input.name}`);
      if (candidates.length > 1) throw new ValidationError('input.serverId', `input.serverId: several servers of the container expose ${input.name}; name the server`);
      const feature = candidates[0]!;
      const existing = await trx
        .selectFrom('assignment_pins')
        .select('pinned_hash')
        .where('assignment_id', '=', id)
        .where('server_id', '=', feature.server_id)
        .where('kind', '=', feature.kind)
        .where('name', '=', feature.name)
        .executeTakeFirst();
      await trx
        .insertInto('assignment_pins')
        .values({
          workspace_id: viewer.workspaceId,
          assignment_id: id,
          server_id: feature.server_id,
          kind: feature.kind,
          name: feature.name,
          pinned_hash: feature.hash,
          pinned_definition: JSON.stringify(feature.definition),
          pinned_by: viewer.actor,
        })
        .onConflict((oc) =>
          oc.columns(['assignment_id', 'server_id', 'kind', 'name']).doUpdateSet({
            pinned_hash: feature.hash,
            pinned_definition: JSON.stringify(feature.definition),
            pinned_at: new Date(),
            pinned_by: viewer.actor,
          }),
        )
        .execute();
      await this.event(trx, viewer, existing ? 'assignment.pin_approved' : 'assignment.pinned', id, {
        featureType: input.featureType,
        name: feature.name,
        serverId: feature.server_id,
        previousHash: existing?.pinned_hash ?? null,
        hash: feature.hash,
      });
      if (existing && existing.pinned_hash !== feature.hash) {
        // Pinning a changed definition again lifts a rug-pull withhold: audited beside the detector's entry.
        const { gateway_id: gatewayId, namespace_prefix: namespacePrefix } = assignment;
        const pin = { serverId: feature.server_id, gatewayId, assignmentId: id, namespacePrefix, kind: feature.kind, name: feature.name };
        await auditPinApproved(trx, { workspaceId: viewer.workspaceId, actor: viewer.actor, ...pin, previousHash: existing.pinned_hash, hash: feature.hash });
      }
      const pins = await this.pinsOf(trx, viewer.workspaceId, [id]);
      return pins.get(id)!.find((p) => p.server_id === feature.server_id && p.kind === feature.kind && p.name === feature.name)!;
    });
  }

  async unpin(viewer: Viewer, id: string, rawInput: unknown): Promise<AssignmentRow> {
    requireCapability(viewer, 'gateways.manage_provisioning');
    const input = parseInput(pinInput, rawInput);
    return this.database.db.transaction().execute(async (trx) => {
      const assignment = await this.get(viewer, id, trx);
      let q = trx.deleteFrom('assignment_pins').where('workspace_id', '=', viewer.workspaceId).where('assignment_id', '=', id).where('kind', '=', KIND_OF[input.featureType]).where('name', '=', input.name);
      if (input.serverId) q = q.where('server_id', '=', input.serverId);
      const result = await q.executeTakeFirst();
      if (Number(result.numDeletedRows) === 0) throw new NotFoundError('Pin', `${input.featureType}:${input.name}`);
      await this.event(trx, viewer, 'assignment.unpinned', id, { featureType: input.featureType, name: input.name });
      return assignment;
    });
  }

  /** Pins of each assignment with the live definitions beside the approved ones. */
  async pinsOf(trx: Kysely<DB>, workspaceId: string, assignmentIds: readonly string[]): Promise<Map<string, PinView[]>> {
    const out = new Map<string, PinView[]>(assignmentIds.map((id) => [id, []]));
    if (assignmentIds.length === 0) return out;
    const rows = await trx
      .selectFrom('assignment_pins as p')
      .leftJoin('server_features as f', (j) =>
        j.onRef('f.server_id', '=', 'p.server_id').onRef('f.kind', '=', 'p.kind').onRef('f.name', '=', 'p.name').onRef('f.workspace_id', '=', 'p.workspace_id'),
      )
      .selectAll('p')
      .select(['f.hash as current_hash', 'f.definition as current_definition'])
      .where('p.workspace_id', '=', workspaceId)
      .where('p.assignment_id', 'in', assignmentIds)
      .orderBy('p.kind')
      .orderBy('p.name')
      .execute();
    const typeOf = Object.fromEntries(Object.entries(KIND_OF).map(([t, k]) => [k, t])) as Record<FeatureKind, FeatureType>;
    for (const r of rows) {
      const { current_hash, current_definition, ...pin } = r;
      out.get(r.assignment_id)?.push({
        ...pin,
        featureType: typeOf[pin.kind],
        currentHash: current_hash ?? null,
        currentDefinition: (current_definition as Record<string, unknown> | null) ?? null,
        status: current_hash == null ? 'MISSING' : current_hash === pin.pinned_hash ? 'OK' : 'CHANGED',
      });
    }
    return out;
  }

  /** Every name two provisioned features of one gateway would share. */
  async collisions(trx: Kysely<DB>, workspaceId: string, gatewayId: string): Promise<NameCollision[]> {
    const assignments = await trx.selectFrom('assignments').selectAll().where('workspace_id', '=', workspaceId).where('gateway_id', '=', gatewayId).execute();
    const byName = new Map<string, { featureType: FeatureType; name: string; sources: NameCollision['sources'][number][] }>();
    for (const a of assignments) {
      for (const featureType of FEATURE_TYPES) {
        const { mode, selected } = a.provisioning[featureType];
        if (mode !== 'ALLOW_ALL' && mode !== 'ALLOW_SELECTED') continue;
        const allowed = mode === 'ALLOW_SELECTED' ? new Set(selected) : undefined;
        for (const f of await this.featuresOf(trx, workspaceId, a, featureType)) {
          if (allowed && !allowed.has(f.name)) continue;
          const name = namespacedFeatureName(featureType, a.namespace_prefix, f.name);
          const key = `${featureType}\u0000${name}`;
          let entry = byName.get(key);
          if (!entry) byName.set(key, (entry = { featureType, name, sources: [] }));
          entry.sources.push({ assignmentId: a.id, serverId: f.server_id, upstreamName: f.name });
        }
      }
    }
    return [...byName.values()].filter((e) => e.sources.length > 1);
  }

  private async requireNoCollisions(trx: Kysely<DB>, workspaceId: string, gatewayId: string): Promise<void> {
    const found = await this.collisions(trx, workspaceId, gatewayId);
    if (found.length === 0) return;
    const first = found[0]!;
    const who = first.sources.map((s) => `${s.upstreamName} (assignment ${s.assignmentId}, server ${s.serverId})`).join(' and ');
    throw new ConflictError(
      `two features would both be exposed as ${first.featureType.replace(/s$/, '').replace('resourceTemplate', 'resource template')} "${first.name}": ${who}. Give one assignment a namespace prefix or provision fewer features.`,
    );
  }

  /** Discovered features of the assignment's server, or of every member server of its container. */
  private async featuresOf(trx: Kysely<DB>, workspaceId: string, a: AssignmentRow, featureType: FeatureType): Promise<ServerFeatureRow[]> {
    let q = trx.selectFrom('server_features').selectAll().where('workspace_id', '=', workspaceId).where('kind', '=', KIND_OF[featureType]);
    if (a.server_id) q = q.where('server_id', '=', a.server_id);
    else {
      q = q.where('server_id', 'in', (eb) =>
        eb.selectFrom('server_container_members').select('server_id').where('workspace_id', '=', workspaceId).where('container_id', '=', a.container_id!),
      );
    }
    return q.orderBy('name').execute();
  }

  private event(trx: Kysely<DB>, viewer: Viewer, type: string, id: string, details: Record<string, unknown>) {
    return recordWorkspaceEvent(trx, viewer.workspaceId, viewer.actor, { type, subjectType: 'Assignment', subjectId: id, details });
  }
}
