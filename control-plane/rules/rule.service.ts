import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { z } from 'zod';
import { testRuleOnText, type RuleTestResult } from '../../schema/rules/engine/index.js';
import { MAX_AUDIT_BODY_BYTES, RULE_HOOKS, RULE_PARTS, type SnapshotRule } from '../../schema/snapshot/index.js';
import { requireCapability, type Viewer } from '../access/viewer.js';
import type { Database } from '../db/database.js';
import type { DB } from '../db/tables.js';
import { ConflictError, NotFoundError, ValidationError, isUniqueViolation } from '../errors.js';
import { recordWorkspaceEvent } from '../events/workspace-events.js';
import type { GatewayRow } from '../gateways/gateway.table.js';
import type { Vault } from '../identities/vault.js';
import { loadGrouped } from '../shared/grouped.js';
import { parseInput } from '../shared/input.js';
import { loadOrCreateRuleHashSalt } from './rule-hash-salt.js';
import {
  actionToInput,
  createRuleInput,
  detectionToInput,
  ruleDefinitionInput,
  testRuleInput,
  updateRuleInput,
  type RuleDefinition,
} from './rule-input.js';
import { ruleHashSaltContext } from './rule-secrets.js';
import { RULE_TEMPLATES, findRuleTemplate, type RuleTemplate } from './rule-templates.js';
import type { RuleRow } from './rule.table.js';

/** Most rules one gateway may hold: each runs on every call it covers. */
export const MAX_RULES_PER_GATEWAY = 200;
/** Longest `testRule` sample, in characters. */
export const MAX_TEST_SAMPLE = 1024 * 1024;

const auditSettingsInput = z.strictObject({
  bodies: z.enum(['full', 'metadata']),
  maxBodyBytes: z
    .int('must be a whole number of bytes')
    .min(0, 'must be 0 or more')
    .max(MAX_AUDIT_BODY_BYTES, `must be at most ${MAX_AUDIT_BODY_BYTES} (16 MiB)`),
});

/**
 * Gateway content rules: an ordered list per gateway, validated at the edge (patterns
 * compile with RE2, entity types exist, parts match hooks, scoped assignments are on the
 * gateway, engines exist) and stored in the snapshot's own shapes. Every change records a
 * workspace event in its transaction, which makes the publisher compile and push a new
 * snapshot. Also the gateway's audit settings, which travel in the same snapshot.
 */
export class RuleService {
  constructor(
    private readonly database: Database,
    private readonly vault: Vault,
  ) {}

  templates(): readonly RuleTemplate[] {
    return RULE_TEMPLATES;
  }

  /** The gateway's rules in evaluation order. */
  async list(viewer: Viewer, gatewayId: string): Promise<RuleRow[]> {
    requireCapability(viewer, 'gateways.view');
    await this.gateway(this.database.db, viewer, gatewayId);
    return (await this.byGatewayIds(viewer.workspaceId, [gatewayId])).get(gatewayId) ?? [];
  }

  /** Rules of many gateways, each list in evaluation order, in one statement. */
  byGatewayIds(workspaceId: string, ids: readonly string[]): Promise<Map<string, RuleRow[]>> {
    return loadGrouped(
      ids,
      (batch) =>
        this.database.db
          .selectFrom('rules')
          .selectAll()
          .where('workspace_id', '=', workspaceId)
          .where('gateway_id', 'in', batch)
          .orderBy('position')
          .orderBy('id')
          .execute(),
      (row) => row.gateway_id,
    );
  }

  async byIds(workspaceId: string, ids: readonly string[]): Promise<RuleRow[]> {
    if (ids.length === 0) return [];
    return this.database.db.selectFrom('rules').selectAll().where('workspace_id', '=', workspaceId).where('id', 'in', ids).execute();
  }

  async get(viewer: Viewer, id: string, trx: Kysely<DB> = this.database.db): Promise<RuleRow> {
    const row = await trx.selectFrom('rules').selectAll().where('workspace_id', '=', viewer.workspaceId).where('id', '=', id).executeTakeFirst();
    if (!row) throw new NotFoundError('Rule', id);
    return row;
  }

  async create(viewer: Viewer, rawInput: unknown): Promise<RuleRow> {
    requireCapability(viewer, 'gateways.manage_rules');
    const { gatewayId, position, ...definition } = parseInput(createRuleInput, rawInput);
    return this.write(definition.name, async (trx) => {
      await this.lockGateway(trx, viewer, gatewayId);
      await this.checkReferences(trx, viewer, gatewayId, definition, 'input');
      const count = await this.countRules(trx, viewer, gatewayId);
      if (count >= MAX_RULES_PER_GATEWAY) throw new ConflictError(`a gateway may hold at most ${MAX_RULES_PER_GATEWAY} rules`);
      const at = Math.min(position ?? count, count);
      if (at < count) {
        await trx
          .updateTable('rules')
          .set((eb) => ({ position: eb('position', '+', 1) }))
          .where('workspace_id', '=', viewer.workspaceId)
          .where('gateway_id', '=', gatewayId)
          .where('position', '>=', at)
          .execute();
      }
      const rule = await trx
        .insertInto('rules')
        .values({ id: randomUUID(), workspace_id: viewer.workspaceId, gateway_id: gatewayId, position: at, ...this.columns(definition) })
        .returningAll()
        .executeTakeFirstOrThrow();
      await this.event(trx, viewer, 'rule.created', rule, { position: at });
      return rule;
    });
  }

  async createFromTemplate(viewer: Viewer, gatewayId: string, templateKey: string, overrides: { name?: string; enabled?: boolean } = {}): Promise<RuleRow> {
    requireCapability(viewer, 'gateways.manage_rules');
    const template = findRuleTemplate(templateKey);
    if (!template) {
      throw new ValidationError('templateKey', `templateKey: unknown template "${templateKey.slice(0, 60)}"; known: ${RULE_TEMPLATES.map((t) => t.key).join(', ')}`);
    }
    return this.create(viewer, { ...structuredClone(template.definition), ...overrides, gatewayId });
  }

  /** Replaces the given fields; the rest keep their value. The merged rule is validated whole. */
  async update(viewer: Viewer, id: string, rawInput: unknown): Promise<RuleRow> {
    requireCapability(viewer, 'gateways.manage_rules');
    const patch = parseInput(updateRuleInput, rawInput);
    return this.database.db
      .transaction()
      .execute(async (trx) => {
        const current = await this.get(viewer, id, trx);
        await this.lockGateway(trx, viewer, current.gateway_id);
        const merged = { ...definitionInputOf(current), ...Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) };
        const definition = parseInput(ruleDefinitionInput, merged);
        await this.checkReferences(trx, viewer, current.gateway_id, definition, 'input');
        const rule = await trx
          .updateTable('rules')
          .set({ ...this.columns(definition), updated_at: new Date() })
          .where('workspace_id', '=', viewer.workspaceId)
          .where('id', '=', id)
          .returningAll()
          .executeTakeFirstOrThrow();
        await this.event(trx, viewer, 'rule.updated', rule, { fields: Object.keys(patch).filter((k) => patch[k as keyof typeof patch] !== undefined) });
        return rule;
      })
      .catch((err: unknown) => {
        if (isUniqueViolation(err)) throw new ConflictError('a rule with this name already exists on the gateway', 'input.name');
        throw err;
      });
  }

  async setEnabled(viewer: Viewer, id: string, enabled: boolean): Promise<RuleRow> {
    requireCapability(viewer, 'gateways.manage_rules');
    return this.database.db.transaction().execute(async (trx) => {
      await this.get(viewer, id, trx);
      const rule = await trx
        .updateTable('rules')
        .set({ enabled, updated_at: new Date() })
        .where('workspace_id', '=', viewer.workspaceId)
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow();
      await this.event(trx, viewer, enabled ? 'rule.enabled' : 'rule.disabled', rule, {});
      return rule;
    });
  }

  /** Deletes the rule and closes the gap it leaves in its gateway's order. */
  async delete(viewer: Viewer, id: string): Promise<void> {
    requireCapability(viewer, 'gateways.manage_rules');
    await this.database.db.transaction().execute(async (trx) => {
      const rule = await this.get(viewer, id, trx);
      await this.lockGateway(trx, viewer, rule.gateway_id);
      await trx.deleteFrom('rules').where('workspace_id', '=', viewer.workspaceId).where('id', '=', id).execute();
      await trx
        .updateTable('rules')
        .set((eb) => ({ position: eb('position', '-', 1) }))
        .where('workspace_id', '=', viewer.workspaceId)
        .where('gateway_id', '=', rule.gateway_id)
        .where('position', '>', rule.position)
        .execute();
      await this.event(trx, viewer, 'rule.deleted', rule, {});
    });
  }

  /** Sets the gateway's evaluation order: `ruleIds` must name every rule of the gateway exactly once. */
  async reorder(viewer: Viewer, gatewayId: string, ruleIds: readonly string[]): Promise<RuleRow[]> {
    requireCapability(viewer, 'gateways.manage_rules');
    return this.database.db.transaction().execute(async (trx) => {
      await this.lockGateway(trx, viewer, gatewayId);
      const current = await trx
        .selectFrom('rules')
        .select('id')
        .where('workspace_id', '=', viewer.workspaceId)
        .where('gateway_id', '=', gatewayId)
        .execute();
      const known = new Set(current.map((r) => r.id));
      const seen = new Set<string>();
      ruleIds.forEach((ruleId, i) => {
        if (!known.has(ruleId)) throw new ValidationError(`ruleIds.${i}`, `ruleIds.${i}: rule ${ruleId} is not on this gateway`);
        if (seen.has(ruleId)) throw new ValidationError(`ruleIds.${i}`, `ruleIds.${i}: rule ${ruleId} is listed twice`);
        seen.add(ruleId);
      });
      const missing = current.filter((r) => !seen.has(r.id)).map((r) => r.id);
      if (missing.length > 0) {
        throw new ValidationError('ruleIds', `ruleIds: must list every rule of the gateway; missing ${missing.length === 1 ? 'rule' : 'rules'} ${missing.join(', ')}`);
      }
      if (ruleIds.length > 0) {
        await trx
          .updateTable('rules')
          .set({ position: sql<number>`array_position(${sql.val(ruleIds)}::uuid[], id) - 1`, updated_at: new Date() })
          .where('workspace_id', '=', viewer.workspaceId)
          .where('gateway_id', '=', gatewayId)
          .execute();
      }
      await recordWorkspaceEvent(trx, viewer.workspaceId, viewer.actor, {
        type: 'rule.reordered',
        subjectType: 'Gateway',
        subjectId: gatewayId,
        details: { ruleIds: [...ruleIds] },
      });
      return trx
        .selectFrom('rules')
        .selectAll()
        .where('workspace_id', '=', viewer.workspaceId)
        .where('gateway_id', '=', gatewayId)
        .orderBy('position')
        .orderBy('id')
        .execute();
    });
  }

  /**
   * Runs a rule (given, or saved: `ruleId`) over a sample exactly as a data plane would
   * over one string value, with the workspace's real hash salt, and saves nothing.
   */
  async test(viewer: Viewer, source: { rule?: unknown; ruleId?: string }, sample: string): Promise<RuleTestResult> {
    requireCapability(viewer, 'gateways.manage_rules');
    if ((source.rule === undefined) === (source.ruleId === undefined)) {
      throw new ValidationError('rule', 'rule: give exactly one of rule and ruleId');
    }
    if (sample.length > MAX_TEST_SAMPLE) throw new ValidationError('sample', `sample: at most ${MAX_TEST_SAMPLE} characters`);
    let rule: SnapshotRule;
    if (source.ruleId !== undefined) {
      const row = await this.get(viewer, source.ruleId);
      rule = { ...toSnapshotRule(row), order: 0 };
    } else {
      const input = parseInput(testRuleInput, source.rule, 'rule');
      rule = {
        id: 'test',
        gatewayId: 'test',
        name: input.name,
        order: 0,
        hooks: RULE_HOOKS,
        scope: { assignmentIds: [], features: [], parts: RULE_PARTS },
        detection: input.detection,
        action: input.action,
        failureMode: 'closed',
        raiseAlert: false,
      };
    }
    if (rule.detection.kind === 'engine') {
      throw new ValidationError(
        source.ruleId !== undefined ? 'ruleId' : 'rule.detection.engine',
        'testRule runs regex, PII and detector rules; test a custom rule engine with testRuleEngineConnection',
      );
    }
    const sealed = await loadOrCreateRuleHashSalt(this.database.db, viewer.workspaceId, (plaintext, context) => this.vault.seal(plaintext, context));
    const hashSalt = this.vault.open(sealed, ruleHashSaltContext(viewer.workspaceId));
    return testRuleOnText(rule, sample, { hashSalt });
  }

  /** What data planes record of the gateway's calls: bodies or only metadata, and the body cap. */
  async updateAuditSettings(viewer: Viewer, gatewayId: string, rawInput: unknown): Promise<GatewayRow> {
    requireCapability(viewer, 'gateways.manage');
    const input = parseInput(auditSettingsInput, rawInput, 'input');
    return this.database.db.transaction().execute(async (trx) => {
      await this.gateway(trx, viewer, gatewayId);
      const gateway = await trx
        .updateTable('gateways')
        .set({ audit_bodies: input.bodies, audit_max_body_bytes: input.maxBodyBytes, updated_at: new Date() })
        .where('workspace_id', '=', viewer.workspaceId)
        .where('id', '=', gatewayId)
        .returningAll()
        .executeTakeFirstOrThrow();
      await recordWorkspaceEvent(trx, viewer.workspaceId, viewer.actor, {
        type: 'gateway.audit_settings_updated',
        subjectType: 'Gateway',
        subjectId: gatewayId,
        details: { bodies: input.bodies, maxBodyBytes: input.maxBodyBytes },
      });
      return gateway;
    });
  }

  private columns(definition: RuleDefinition) {
    return {
      name: definition.name,
      enabled: definition.enabled,
      hooks: JSON.stringify(RULE_HOOKS.filter((hook) => definition.hooks.includes(hook))),
      scope: JSON.stringify(definition.scope),
      detection: JSON.stringify(definition.detection),
      action: JSON.stringify(definition.action),
      failure_mode: definition.failureMode,
      raise_alert: definition.raiseAlert,
      engine_id: definition.detection.kind === 'engine' ? definition.detection.engineId : null,
    };
  }

  /** Scoped assignments must be on the gateway, and an engine must exist in the workspace. */
  private async checkReferences(trx: Kysely<DB>, viewer: Viewer, gatewayId: string, definition: RuleDefinition, prefix: string): Promise<void> {
    const { assignmentIds } = definition.scope;
    if (assignmentIds.length > 0) {
      const found = await trx
        .selectFrom('assignments')
        .select('id')
        .where('workspace_id', '=', viewer.workspaceId)
        .where('gateway_id', '=', gatewayId)
        .where('id', 'in', assignmentIds)
        .execute();
      const on = new Set(found.map((a) => a.id));
      assignmentIds.forEach((assignmentId, i) => {
        if (!on.has(assignmentId)) {
          const field = `${prefix}.scope.assignmentIds.${i}`;
          throw new ValidationError(field, `${field}: assignment ${assignmentId} is not on this gateway`);
        }
      });
    }
    if (definition.detection.kind === 'engine') {
      const engine = await trx
        .selectFrom('rule_engines')
        .select('id')
        .where('workspace_id', '=', viewer.workspaceId)
        .where('id', '=', definition.detection.engineId)
        .executeTakeFirst();
      if (!engine) {
        const field = `${prefix}.detection.engine.engineId`;
        throw new ValidationError(field, `${field}: rule engine ${definition.detection.engineId} does not exist in this workspace`);
      }
    }
  }

  private async gateway(trx: Kysely<DB>, viewer: Viewer, gatewayId: string): Promise<GatewayRow> {
    const gateway = await trx.selectFrom('gateways').selectAll().where('workspace_id', '=', viewer.workspaceId).where('id', '=', gatewayId).executeTakeFirst();
    if (!gateway) throw new NotFoundError('Gateway', gatewayId);
    return gateway;
  }

  /** Serializes changes to one gateway's rule order (positions are read, then shifted). */
  private async lockGateway(trx: Kysely<DB>, viewer: Viewer, gatewayId: string): Promise<void> {
    const gateway = await trx
      .selectFrom('gateways')
      .select(['id', 'archived_at'])
      .where('workspace_id', '=', viewer.workspaceId)
      .where('id', '=', gatewayId)
      .forUpdate()
      .executeTakeFirst();
    if (!gateway) throw new NotFoundError('Gateway', gatewayId);
    if (gateway.archived_at !== null) throw new ConflictError('the gateway is archived; restore it before changing its rules');
  }

  private async countRules(trx: Kysely<DB>, viewer: Viewer, gatewayId: string): Promise<number> {
    const row = await trx
      .selectFrom('rules')
      .select((eb) => eb.fn.countAll<string>().as('count'))
      .where('workspace_id', '=', viewer.workspaceId)
      .where('gateway_id', '=', gatewayId)
      .executeTakeFirstOrThrow();
    return Number(row.count);
  }

  private event(trx: Kysely<DB>, viewer: Viewer, type: string, rule: RuleRow, details: Record<string, unknown>) {
    // Names and ids only: patterns and allow lists stay out of the change log.
    return recordWorkspaceEvent(trx, viewer.workspaceId, viewer.actor, {
      type,
      subjectType: 'Rule',
      subjectId: rule.id,
      details: { name: rule.name, gatewayId: rule.gateway_id, detection: rule.detection.kind, action: rule.action.kind, ...details },
    });
  }

  private async write<T>(name: string, fn: (trx: Kysely<DB>) => Promise<T>): Promise<T> {
    try {
      return await this.database.db.transaction().execute(fn);
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`a rule named "${name}" already exists on the gateway`, 'input.name');
      throw err;
    }
  }
}

/** A stored rule in the definition input shape, for merging an update into. */
function definitionInputOf(row: RuleRow): Record<string, unknown> {
  return {
    name: row.name,
    enabled: row.enabled,
    hooks: [...row.hooks],
    scope: { assignmentIds: [...row.scope.assignmentIds], features: [...row.scope.features], parts: [...row.scope.parts] },
    detection: detectionToInput(row.detection),
    action: actionToInput(row.action),
    failureMode: row.failure_mode,
    raiseAlert: row.raise_alert,
  };
}

/** A stored rule as the snapshot carries it. */
export function toSnapshotRule(row: RuleRow): SnapshotRule {
  return {
    id: row.id,
    gatewayId: row.gateway_id,
    name: row.name,
    order: row.position,
    hooks: row.hooks,
    scope: row.scope,
    detection: row.detection,
    action: row.action,
    failureMode: row.failure_mode,
    raiseAlert: row.raise_alert,
  };
}
