import { sql, type Kysely } from 'kysely';
import { requireCapability, type Viewer } from '../../access/viewer.js';
import type { AlertService, RaiseAlertInput } from '../../alerts/alert.service.js';
import type { Database } from '../../db/database.js';
import type { DB } from '../../db/tables.js';
import { ConflictError, NotFoundError } from '../../errors.js';
import { recordWorkspaceEvent } from '../../events/workspace-events.js';
import { loadGrouped } from '../../shared/grouped.js';
import type { FeatureDiff } from '../feature-hash.js';
import type { FeatureKind, ServerFeatureRow, ServerRow } from '../server.table.js';
import { detectMimicry, type MimicryFinding } from './mimicry.js';
import { createPoisoningDetector, type OtherServerTool, type PoisoningDetector, type ThreatReason } from './poisoning.js';
import { auditFeatureApproved, auditFeatureFlagged, auditPinsBroken, auditServerHeld, auditServerReleased, type BrokenPin } from './threat-audit.js';

/**
 * Threat detection in the control plane, at the two moments a server tells us something
 * new: discovery (tool poisoning, cross-server shadowing, and the rug-pull diff) and
 * registration (anti-mimicry). See README.md in this folder for the rules and decisions.
 *
 * Every hit is written in the caller's transaction: the verdict on the row, a workspace
 * event (`threat.poisoning_suspected`, `threat.mimicry_suspected`), a `policy_action` audit
 * entry (`threat-audit.ts`; rug pulls too), an alert when an {@link AlertService} is wired,
 * and the `onThreat` callback. The workspace event makes the snapshot publisher recompile,
 * which withholds what was flagged.
 */

export type ThreatType = 'POISONING_SUSPECTED' | 'MIMICRY_SUSPECTED';

/** What `onThreat` receives for each detector hit. */
export interface ThreatNotice {
  readonly type: ThreatType;
  /** One line for a person. */
  readonly subject: string;
  /** The object flagged: the server (for a feature, its server; `details` names the feature). */
  readonly subjectRef: { readonly type: 'Server'; readonly id: string };
  readonly details: Record<string, unknown>;
}

/**
 * Called once per hit inside the transaction that records it; write with `trx` only (on
 * embedded PGlite another connection would wait for this transaction). A throw rolls the
 * detection back with the rest of the transaction.
 */
export type ThreatListener = (workspaceId: string, threat: ThreatNotice, trx: Kysely<DB>) => void | Promise<void>;

export interface ThreatServiceOptions {
  /** Raises POISONING_SUSPECTED and MIMICRY_SUSPECTED alerts when set; approvals resolve them. */
  readonly alerts?: AlertService;
  readonly onThreat?: ThreatListener;
}

/** What one discovery's screening found. */
export interface DiscoveryScreening {
  /** Features of the discovered server flagged now. */
  readonly flagged: readonly { readonly kind: FeatureKind; readonly name: string; readonly score: number; readonly reasons: readonly ThreatReason[] }[];
  /** Features of other servers flagged now because this server's new tools made their mentions shadowing. */
  readonly flaggedElsewhere: readonly { readonly serverId: string; readonly kind: FeatureKind; readonly name: string }[];
}

export interface ApproveFeatureInput {
  readonly serverId: string;
  readonly kind: FeatureKind;
  readonly name: string;
  /** The definition hash the admin reviewed; refused with CONFLICT when the definition has changed since. */
  readonly hash?: string | undefined;
}

/** A pin of a feature, with where it is pinned; the GraphQL `pinDiffs` compares it with the live definition. */
export interface FeaturePinRow {
  readonly assignment_id: string;
  readonly gateway_id: string;
  readonly gateway_slug: string;
  readonly server_id: string;
  readonly kind: FeatureKind;
  readonly name: string;
  readonly pinned_hash: string;
  readonly pinned_definition: Record<string, unknown>;
  readonly pinned_at: Date | string;
  readonly pinned_by: string;
}

/** Other servers' feature rows examined per statement when a new tool name appears. */
const NAME_SEARCH_CHUNK = 50;
/** New tool names searched for in other servers' definitions per discovery, at most. */
const MAX_NAMES_SEARCHED = 500;
const FEATURE_NOUN: Readonly<Record<FeatureKind, string>> = { tool: 'tool', prompt: 'prompt', resource: 'resource', resourceTemplate: 'resource template' };

export const poisoningFoldKey = (serverId: string, kind: FeatureKind, name: string) => `poisoning:${serverId}:${kind}:${name}`;
export const mimicryFoldKey = (serverId: string) => `mimicry:${serverId}`;

export class ThreatService {
  private readonly detector: PoisoningDetector = createPoisoningDetector();
  private readonly listeners: ThreatListener[] = [];
  private readonly alerts: AlertService | undefined;

  constructor(
    private readonly database: Database,
    options: ThreatServiceOptions = {},
  ) {
    this.alerts = options.alerts;
    if (options.onThreat) this.listeners.push(options.onThreat);
  }

  /** Adds a listener for every later hit (see {@link ThreatListener}). Returns a function that removes it. */
  onThreat(listener: ThreatListener): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  // Discovery ----------------------------------------------------------------------------

  /**
   * Screens what a discovery stored, inside its transaction, after its features are
   * written: remembers the previous definition of each changed feature (the rug-pull diff),
   * scans every feature whose definition has not been scanned at its current hash (new,
   * changed, or stored before detection existed), and rescans other servers' features that
   * mention a tool name this server just added. A definition change drops an earlier
   * approval: the new definition is judged afresh.
   */
  async screenDiscovery(trx: Kysely<DB>, server: ServerRow, actor: string, runId: string, diff: FeatureDiff): Promise<DiscoveryScreening> {
    const workspaceId = server.workspace_id;
    await this.auditBrokenPins(trx, server, runId, diff.changed);
    for (const { previous, current } of diff.changed) {
      await trx
        .updateTable('server_features')
        .set({ previous_hash: previous.hash, previous_definition: JSON.stringify(previous.definition) })
        .where('workspace_id', '=', workspaceId)
        .where('server_id', '=', server.id)
        .where('kind', '=', current.kind)
        .where('name', '=', current.name)
        .execute();
    }

    const features = await trx
      .selectFrom('server_features')
      .select(['kind', 'name', 'definition', 'hash', 'threat_hash'])
      .where('workspace_id', '=', workspaceId)
      .where('server_id', '=', server.id)
      .execute();
    const toScan = features.filter((f) => f.threat_hash !== f.hash);
    const addedTools = diff.added.filter((f) => f.kind === 'tool').map((f) => f.name);
    if (toScan.length === 0 && addedTools.length === 0) return { flagged: [], flaggedElsewhere: [] };

    const workspaceTools = await this.workspaceTools(trx, workspaceId);
    const flagged: DiscoveryScreening['flagged'][number][] = [];
    const context = this.contextFor(server.id, workspaceTools);
    const clean: { kind: FeatureKind; name: string }[] = [];
    for (const feature of toScan) {
      const verdict = this.detector.scan({ kind: feature.kind, name: feature.name, definition: feature.definition }, context);
      if (!verdict.flagged && verdict.reasons.length === 0) {
        clean.push({ kind: feature.kind, name: feature.name });
        continue;
      }
      await trx
        .updateTable('server_features')
        .set({
          threat_state: verdict.flagged ? 'flagged' : 'clear',
          threat_score: verdict.score,
          threat_reasons: JSON.stringify(verdict.reasons),
          threat_hash: feature.hash,
          threat_reviewed_by: null,
          threat_reviewed_at: null,
        })
        .where('workspace_id', '=', workspaceId)
        .where('server_id', '=', server.id)
        .where('kind', '=', feature.kind)
        .where('name', '=', feature.name)
        .execute();
      if (verdict.flagged) {
        flagged.push({ kind: feature.kind, name: feature.name, score: verdict.score, reasons: verdict.reasons });
        await this.featureFlagged(trx, server.id, server.name, actor, { kind: feature.kind, name: feature.name, hash: feature.hash, score: verdict.score, reasons: verdict.reasons, runId });
      }
    }
    if (clean.length > 0) {
      await trx
        .updateTable('server_features')
        .set((eb) => ({
          threat_state: 'clear',
          threat_score: 0,
          threat_reasons: '[]',
          threat_hash: eb.ref('hash'),
          threat_reviewed_by: null,
          threat_reviewed_at: null,
        }))
        .where('workspace_id', '=', workspaceId)
        .where('server_id', '=', server.id)
        .where((eb) => eb.or(clean.map((f) => eb.and([eb('kind', '=', f.kind), eb('name', '=', f.name)]))))
        .execute();
    }
    const flaggedElsewhere = await this.rescanMentions(trx, server, actor, runId, addedTools, workspaceTools);
    return { flagged, flaggedElsewhere };
  }

  /**
   * Rug pulls: pins of features this discovery saw change whose approved hash differs from
   * the new one. Each is withheld on its gateway (the snapshot compiles `PIN_MISMATCH`);
   * one audit entry per pin, in one statement each way.
   */
  private async auditBrokenPins(trx: Kysely<DB>, server: ServerRow, runId: string, changed: FeatureDiff['changed']): Promise<void> {
    if (changed.length === 0) return;
    const rows = await trx
      .selectFrom('assignment_pins as p')
      .innerJoin('assignments as a', (j) => j.onRef('a.id', '=', 'p.assignment_id').onRef('a.workspace_id', '=', 'p.workspace_id'))
      .innerJoin('gateways as g', (j) => j.onRef('g.id', '=', 'a.gateway_id').onRef('g.workspace_id', '=', 'a.workspace_id'))
      .select(['p.assignment_id', 'p.kind', 'p.name', 'p.pinned_hash', 'a.namespace_prefix', 'g.id as gateway_id', 'g.slug as gateway_slug'])
      .where('p.workspace_id', '=', server.workspace_id)
      .where('p.server_id', '=', server.id)
      .where((eb) => eb.or(changed.map(({ current: f }) => eb.and([eb('p.kind', '=', f.kind), eb('p.name', '=', f.name)]))))
      .orderBy('g.slug')
      .orderBy('p.assignment_id')
      .execute();
    const hashOf = new Map(changed.map(({ current: f }) => [`${f.kind}\u0000${f.name}`, f.hash]));
    const pins: BrokenPin[] = [];
    for (const row of rows) {
      const currentHash = hashOf.get(`${row.kind}\u0000${row.name}`);
      if (currentHash === undefined || currentHash === row.pinned_hash) continue;
      pins.push({
        assignmentId: row.assignment_id,
        gatewayId: row.gateway_id,
        gatewaySlug: row.gateway_slug,
        namespacePrefix: row.namespace_prefix,
        kind: row.kind,
        name: row.name,
        pinnedHash: row.pinned_hash,
        currentHash,
      });
    }
    if (pins.length === 0) return;
    await auditPinsBroken(trx, { workspaceId: server.workspace_id, runId, serverId: server.id, serverName: server.name, pins, alert: this.alerts !== undefined });
  }

  /** Every tool of the workspace with its server's name, in one statement. */
  private workspaceTools(trx: Kysely<DB>, workspaceId: string): Promise<OtherServerTool[]> {
    return trx
      .selectFrom('server_features as f')
      .innerJoin('servers as s', (j) => j.onRef('s.id', '=', 'f.server_id').onRef('s.workspace_id', '=', 'f.workspace_id'))
      .select(['f.server_id as serverId', 's.name as serverName', 'f.name as name'])
      .where('f.workspace_id', '=', workspaceId)
      .where('f.kind', '=', 'tool')
      .execute();
  }

  private contextFor(serverId: string, tools: readonly OtherServerTool[]) {
    const own = new Set<string>();
    const others: OtherServerTool[] = [];
    for (const tool of tools) {
      if (tool.serverId === serverId) own.add(tool.name);
      else others.push(tool);
    }
    return this.detector.prepare({ otherTools: others, ownToolNames: own });
  }

  /**
   * Other servers' features that were clear when scanned, whose definitions mention one of
   * `names` (tools this server just added): scanned again, since a mention that named
   * nothing before may now shadow this server's tool. Approved features stay approved.
   */
  private async rescanMentions(
    trx: Kysely<DB>,
    server: ServerRow,
    actor: string,
    runId: string,
    names: readonly string[],
    workspaceTools: readonly OtherServerTool[],
  ): Promise<DiscoveryScreening['flaggedElsewhere'][number][]> {
    const searched = names.filter((n) => n.length >= 3).slice(0, MAX_NAMES_SEARCHED);
    if (searched.length === 0) return [];
    const candidates: { server_id: string; kind: FeatureKind; name: string; definition: Record<string, unknown>; hash: string }[] = [];
    for (let i = 0; i < searched.length; i += NAME_SEARCH_CHUNK) {
      const chunk = searched.slice(i, i + NAME_SEARCH_CHUNK);
      const rows = await trx
        .selectFrom('server_features')
        .select(['server_id', 'kind', 'name', 'definition', 'hash'])
        .where('workspace_id', '=', server.workspace_id)
        .where('server_id', '!=', server.id)
        .where('threat_state', '=', 'clear')
        .where((eb) => eb.or(chunk.map((n) => eb(sql`definition::text`, 'ilike', `%${escapeLike(n)}%`))))
        // A concurrent discovery of that server holds its rows and judges them itself; waiting could deadlock.
        .forUpdate()
        .skipLocked()
        .execute();
      for (const row of rows) if (!candidates.some((c) => c.server_id === row.server_id && c.kind === row.kind && c.name === row.name)) candidates.push(row);
    }
    if (candidates.length === 0) return [];
    const serverNames = new Map(workspaceTools.map((t) => [t.serverId, t.serverName]));
    const contexts = new Map<string, ReturnType<ThreatService['contextFor']>>();
    const flagged: DiscoveryScreening['flaggedElsewhere'][number][] = [];
    for (const feature of candidates) {
      let context = contexts.get(feature.server_id);
      if (!context) contexts.set(feature.server_id, (context = this.contextFor(feature.server_id, workspaceTools)));
      const verdict = this.detector.scan(feature, context);
      if (!verdict.flagged) continue;
      await trx
        .updateTable('server_features')
        .set({ threat_state: 'flagged', threat_score: verdict.score, threat_reasons: JSON.stringify(verdict.reasons), threat_hash: feature.hash })
        .where('workspace_id', '=', server.workspace_id)
        .where('server_id', '=', feature.server_id)
        .where('kind', '=', feature.kind)
        .where('name', '=', feature.name)
        .execute();
      flagged.push({ serverId: feature.server_id, kind: feature.kind, name: feature.name });
      await this.featureFlagged(trx, feature.server_id, serverNames.get(feature.server_id) ?? feature.server_id, actor, {
        kind: feature.kind,
        name: feature.name,
        hash: feature.hash,
        score: verdict.score,
        reasons: verdict.reasons,
        runId,
      });
    }
    return flagged;
  }

  private async featureFlagged(
    trx: Kysely<DB>,
    serverId: string,
    serverName: string,
    actor: string,
    hit: { kind: FeatureKind; name: string; hash: string; score: number; reasons: readonly ThreatReason[]; runId: string },
  ): Promise<void> {
    const row = await trx.selectFrom('servers').select('workspace_id').where('id', '=', serverId).executeTakeFirstOrThrow();
    const details = {
      serverId,
      serverName,
      kind: hit.kind,
      name: hit.name,
      hash: hit.hash,
      score: hit.score,
      runId: hit.runId,
      reasons: hit.reasons.map((r) => ({ code: r.code, rule: r.rule, field: r.field, message: r.message, excerpt: r.excerpt })),
    };
    await recordWorkspaceEvent(trx, row.workspace_id, actor, { type: 'threat.poisoning_suspected', subjectType: 'Server', subjectId: serverId, details });
    await auditFeatureFlagged(trx, {
      workspaceId: row.workspace_id,
      runId: hit.runId,
      serverId,
      serverName,
      kind: hit.kind,
      name: hit.name,
      score: hit.score,
      reasons: hit.reasons,
      alert: this.alerts !== undefined,
    });
    const top = hit.reasons[0];
    await this.notify(trx, row.workspace_id, actor, {
      type: 'POISONING_SUSPECTED',
      subject: `${capitalize(FEATURE_NOUN[hit.kind])} "${hit.name}" of server ${serverName} looks poisoned${top ? ` (${top.message})` : ''}; withheld until an admin approves it`,
      subjectRef: { type: 'Server', id: serverId },
      details,
    }, poisoningFoldKey(serverId, hit.kind, hit.name), 'error');
  }

  // Registration -------------------------------------------------------------------------

  /**
   * Anti-mimicry for a server just created (`previous` absent) or updated: when its name or
   * URL passes for another server of the workspace it waits in `pending_review` (out of
   * every gateway) until {@link approveServer}. A rename or new URL is judged again; a
   * server that no longer resembles anything leaves review by itself. Runs in the caller's
   * transaction and returns the row as stored.
   */
  async screenServer(trx: Kysely<DB>, actor: string, row: ServerRow, previous?: ServerRow): Promise<ServerRow> {
    if (previous && previous.name === row.name && previous.url === row.url) return row;
    // Oldest first: the server resembled first is the one that was there first.
    const others = await trx
      .selectFrom('servers')
      .select(['id', 'name', 'url'])
      .where('workspace_id', '=', row.workspace_id)
      .where('id', '!=', row.id)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    const findings = detectMimicry({ name: row.name, url: row.url }, others);
    if (findings.length === 0) {
      if (row.review_state !== 'pending_review' || row.resembles_server_id === null) return row;
      const cleared = await this.setReview(trx, row, { review_state: 'approved', review_reason: null, threat_reasons: '[]', resembles_server_id: null });
      await recordWorkspaceEvent(trx, row.workspace_id, actor, {
        type: 'server.review_cleared',
        subjectType: 'Server',
        subjectId: row.id,
        details: { name: row.name, reason: 'no longer resembles another server' },
      });
      await auditServerReleased(trx, { workspaceId: row.workspace_id, actor, serverId: row.id, serverName: row.name, findings: row.threat_reasons.map((f) => f.code), how: 'release' });
      await this.alerts?.resolveByFoldKey(trx, row.workspace_id, 'MIMICRY_SUSPECTED', mimicryFoldKey(row.id), actor);
      return cleared;
    }
    const reason = findings.map((f) => f.message).join('; ');
    const flagged = await this.setReview(trx, row, {
      review_state: 'pending_review',
      review_reason: `${reason}. It stays out of gateways until an admin approves it.`,
      threat_reasons: JSON.stringify(findings),
      resembles_server_id: findings[0]!.serverId,
      reviewed_by: null,
      reviewed_at: null,
    });
    const details = { serverId: row.id, name: row.name, url: row.url, findings: findings.map(toDetail) };
    await recordWorkspaceEvent(trx, row.workspace_id, actor, { type: 'threat.mimicry_suspected', subjectType: 'Server', subjectId: row.id, details });
    await auditServerHeld(trx, { workspaceId: row.workspace_id, serverId: row.id, serverName: row.name, findings, alert: this.alerts !== undefined });
    await this.notify(trx, row.workspace_id, actor, {
      type: 'MIMICRY_SUSPECTED',
      subject: `Server ${row.name} looks like server ${findings[0]!.serverName} (${findings[0]!.code}); held for review`,
      subjectRef: { type: 'Server', id: row.id },
      details,
    }, mimicryFoldKey(row.id), 'warning');
    return flagged;
  }

  private setReview(trx: Kysely<DB>, row: ServerRow, patch: Record<string, unknown>): Promise<ServerRow> {
    return trx
      .updateTable('servers')
      .set(patch)
      .where('workspace_id', '=', row.workspace_id)
      .where('id', '=', row.id)
      .returningAll()
      .executeTakeFirstOrThrow();
  }

  // Approvals ----------------------------------------------------------------------------

  /**
   * Clears a flagged feature so gateways serve it again, recording who did. Needs
   * `servers.manage`: a flag belongs to the server's definition, on every gateway.
   * Approving an approved feature changes nothing; approving a feature that is not
   * flagged is a CONFLICT. The approval holds for this definition only.
   */
  async approveFeature(viewer: Viewer, input: ApproveFeatureInput): Promise<ServerFeatureRow> {
    requireCapability(viewer, 'servers.manage');
    return this.database.db.transaction().execute(async (trx) => {
      const server = await trx.selectFrom('servers').select(['id', 'name']).where('workspace_id', '=', viewer.workspaceId).where('id', '=', input.serverId).executeTakeFirst();
      if (!server) throw new NotFoundError('Server', input.serverId);
      const feature = await trx
        .selectFrom('server_features')
        .selectAll()
        .where('workspace_id', '=', viewer.workspaceId)
        .where('server_id', '=', input.serverId)
        .where('kind', '=', input.kind)
        .where('name', '=', input.name)
        .forUpdate()
        .executeTakeFirst();
      const noun = FEATURE_NOUN[input.kind];
      if (!feature) throw new NotFoundError('ServerFeature', `${input.kind}:${input.name}`);
      if (input.hash !== undefined && input.hash !== feature.hash) {
        throw new ConflictError(`${noun} "${feature.name}" of server ${server.name} changed since you reviewed it (hash ${feature.hash}); review the new definition`, 'input.hash');
      }
      if (feature.threat_state === 'approved') return feature;
      if (feature.threat_state !== 'flagged') throw new ConflictError(`${noun} "${feature.name}" of server ${server.name} is not flagged; there is nothing to approve`);
      const row = await trx
        .updateTable('server_features')
        .set({ threat_state: 'approved', threat_reviewed_by: viewer.actor, threat_reviewed_at: new Date() })
        .where('workspace_id', '=', viewer.workspaceId)
        .where('server_id', '=', input.serverId)
        .where('kind', '=', input.kind)
        .where('name', '=', input.name)
        .returningAll()
        .executeTakeFirstOrThrow();
      await recordWorkspaceEvent(trx, viewer.workspaceId, viewer.actor, {
        type: 'server.feature_approved',
        subjectType: 'Server',
        subjectId: input.serverId,
        details: { kind: row.kind, name: row.name, hash: row.hash, score: row.threat_score, rules: row.threat_reasons.map((r) => r.rule) },
      });
      await auditFeatureApproved(trx, {
        workspaceId: viewer.workspaceId,
        actor: viewer.actor,
        serverId: input.serverId,
        serverName: server.name,
        kind: row.kind,
        name: row.name,
        hash: row.hash,
        findings: row.threat_reasons.map((r) => r.code),
      });
      await this.alerts?.resolveByFoldKey(trx, viewer.workspaceId, 'POISONING_SUSPECTED', poisoningFoldKey(input.serverId, input.kind, input.name), viewer.actor);
      return row;
    });
  }

  /**
   * Lets a server held for review (anti-mimicry) into gateways, recording who approved it.
   * Needs `servers.manage`. Approving an approved server changes nothing.
   */
  async approveServer(viewer: Viewer, serverId: string): Promise<ServerRow> {
    requireCapability(viewer, 'servers.manage');
    return this.database.db.transaction().execute(async (trx) => {
      const server = await trx.selectFrom('servers').selectAll().where('workspace_id', '=', viewer.workspaceId).where('id', '=', serverId).forUpdate().executeTakeFirst();
      if (!server) throw new NotFoundError('Server', serverId);
      if (server.review_state === 'approved') return server;
      const row = await this.setReview(trx, server, { review_state: 'approved', reviewed_by: viewer.actor, reviewed_at: new Date() });
      await recordWorkspaceEvent(trx, viewer.workspaceId, viewer.actor, {
        type: 'server.approved',
        subjectType: 'Server',
        subjectId: serverId,
        details: { name: server.name, previousState: server.review_state, reason: server.review_reason, resemblesServerId: server.resembles_server_id },
      });
      await auditServerReleased(trx, { workspaceId: viewer.workspaceId, actor: viewer.actor, serverId, serverName: server.name, findings: server.threat_reasons.map((f) => f.code), how: 'approve' });
      await this.alerts?.resolveByFoldKey(trx, viewer.workspaceId, 'MIMICRY_SUSPECTED', mimicryFoldKey(serverId), viewer.actor);
      return row;
    });
  }

  // Reads --------------------------------------------------------------------------------

  /** Features of the viewer's workspace withheld as flagged, most recently changed first. Needs `servers.view`. */
  listFlagged(viewer: Viewer, { limit, offset }: { limit: number; offset: number }): Promise<ServerFeatureRow[]> {
    requireCapability(viewer, 'servers.view');
    return this.database.db
      .selectFrom('server_features')
      .selectAll()
      .where('workspace_id', '=', viewer.workspaceId)
      .where('threat_state', '=', 'flagged')
      .orderBy('changed_at', 'desc')
      .orderBy('server_id')
      .orderBy('kind')
      .orderBy('name')
      .limit(limit)
      .offset(offset)
      .execute();
  }

  /** Pins of the features of each server, with the gateway each is on, in one statement. */
  pinsByServerIds(workspaceId: string, serverIds: readonly string[]): Promise<Map<string, FeaturePinRow[]>> {
    return loadGrouped(
      serverIds,
      (ids) =>
        this.database.db
          .selectFrom('assignment_pins as p')
          .innerJoin('assignments as a', (j) => j.onRef('a.id', '=', 'p.assignment_id').onRef('a.workspace_id', '=', 'p.workspace_id'))
          .innerJoin('gateways as g', (j) => j.onRef('g.id', '=', 'a.gateway_id').onRef('g.workspace_id', '=', 'a.workspace_id'))
          .select(['p.assignment_id', 'g.id as gateway_id', 'g.slug as gateway_slug', 'p.server_id', 'p.kind', 'p.name', 'p.pinned_hash', 'p.pinned_definition', 'p.pinned_at', 'p.pinned_by'])
          .where('p.workspace_id', '=', workspaceId)
          .where('p.server_id', 'in', ids)
          .orderBy('g.slug')
          .orderBy('p.assignment_id')
          .execute(),
      (row) => row.server_id,
    );
  }

  // Internals ----------------------------------------------------------------------------

  private async notify(trx: Kysely<DB>, workspaceId: string, actor: string, notice: ThreatNotice, foldKey: string, severity: 'error' | 'warning'): Promise<void> {
    if (this.alerts) {
      const alert: RaiseAlertInput = { workspaceId, type: notice.type, severity, subject: notice.subject, details: notice.details, subjectRef: notice.subjectRef, foldKey, actor };
      await this.alerts.raise(alert, trx);
    }
    for (const listener of this.listeners) await listener(workspaceId, notice, trx);
  }
}

function toDetail(f: MimicryFinding) {
  return { code: f.code, serverId: f.serverId, serverName: f.serverName, message: f.message };
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** Escapes `%`, `_` and `\` for a LIKE pattern with the default escape character. */
function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}
