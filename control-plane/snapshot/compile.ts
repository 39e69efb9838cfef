import {
  FEATURE_NOUNS,
  FEATURE_TYPES,
  KILL_SWITCH_KINDS,
  RULE_HOOKS,
  RULE_PARTS,
  SNAPSHOT_FORMAT_VERSION,
  computeSnapshotContentHash,
  namespacedFeatureName,
  type AssignmentDisabledBy,
  type EncryptedSecret,
  type FeatureType,
  type GatewaySnapshot,
  type KillSwitchKind,
  type MetadataFieldOverride,
  type ProvisioningMode,
  type RuleAction,
  type RuleDetection,
  type SnapshotAccess,
  type SnapshotAccessToken,
  type SnapshotAssignment,
  type SnapshotConnection,
  type SnapshotContent,
  type SnapshotFeature,
  type SnapshotGateway,
  type SnapshotGatewayAudit,
  type SnapshotHost,
  type SnapshotMetadataOverrides,
  type SnapshotRule,
  type SnapshotRuleEngine,
  type SnapshotTeam,
  type SnapshotUpstream,
  type SnapshotUpstreamAuth,
  type SnapshotUser,
  type WithheldReason,
} from '../../schema/snapshot/index.js';
import type {
  SnapshotSource,
  SourceAssignment,
  SourceDiscoveredFeature,
  SourceMetadataOverride,
  SourceRule,
  SourceServer,
} from './source.js';
import { DEFAULT_GATEWAY_AUDIT } from './source.js';

/** What the publisher decides, not the rows. */
export interface CompileGatewaySnapshotOptions {
  /** The version this snapshot will be published as; greater than every earlier one. */
  readonly version: number;
  /** The compile time; also the instant before which expired tokens are left out. */
  readonly generatedAt: Date | string;
}

/**
 * Two or more features would be exposed under one name on one gateway. Not an error:
 * discovery can cause it at any time (an upstream adds a name another assignment already
 * exposes), and refusing to publish would also hold back every later change, kill
 * switches included. The compiler withholds every claimant as `NAME_COLLISION` and
 * reports the collision as a diagnostic; mutations refuse to create one in the first place.
 */
export interface FeatureNameCollision {
  readonly code: 'FEATURE_NAME_COLLISION';
  readonly message: string;
  readonly gatewayId: string;
  readonly gatewaySlug: string;
  readonly featureType: FeatureType;
  /** The name all of them would be exposed as. */
  readonly name: string;
  /** Every feature claiming the name, in assignment order. */
  readonly features: readonly {
    readonly assignmentId: string;
    readonly serverId: string;
    readonly upstreamName: string;
  }[];
}

/**
 * A rule scoped only to assignments no longer on its gateway (deleted since the rule was
 * saved). It applies to nothing, so it is left out rather than widened to every assignment.
 */
export interface RuleOutOfScope {
  readonly code: 'RULE_OUT_OF_SCOPE';
  readonly message: string;
  readonly ruleId: string;
  readonly gatewayId: string;
}

/** Something the compiler worked around and an admin should hear about. */
export type SnapshotCompileDiagnostic = FeatureNameCollision | RuleOutOfScope;

/** A snapshot and what was withheld to make it. */
export interface CompiledGatewaySnapshot {
  readonly snapshot: GatewaySnapshot;
  /** Empty when nothing needed working around. */
  readonly diagnostics: readonly SnapshotCompileDiagnostic[];
}

/**
 * One reason a workspace cannot be compiled. Every problem is collected before throwing.
 * Rows that came out of the database cannot cause these (foreign keys and unique
 * constraints rule them out); they guard against sources built by hand or a broken repository.
 */
export type SnapshotCompileProblem =
  | {
      /** A row points at a row that is not in the source. */
      readonly code: 'UNKNOWN_REFERENCE';
      readonly message: string;
      /** The referring row, as `<kind> <id>`. */
      readonly from: string;
      readonly field: string;
      readonly id: string;
    }
  | {
      /** Two rows claim what must be unique (an id, a gateway slug, a token hash). */
      readonly code: 'DUPLICATE';
      readonly message: string;
      readonly entity: string;
      readonly key: string;
    }
  | {
      /** A row breaks a rule of its own (an assignment with both or neither target). */
      readonly code: 'INVALID_ROW';
      readonly message: string;
      readonly from: string;
    };

/**
 * The workspace's rows do not make a valid snapshot. Nothing is published; data planes
 * keep the last good snapshot. Its message names the first problem; `problems` has all.
 */
export class SnapshotCompileError extends Error {
  override readonly name = 'SnapshotCompileError';
  readonly code = 'SNAPSHOT_COMPILE' as const;
  constructor(readonly problems: readonly SnapshotCompileProblem[]) {
    const [first] = problems;
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''})` : '';
    super(`cannot compile the gateway snapshot: ${first?.message ?? 'unknown problem'}${more}`);
  }
}

/**
 * Compiles one workspace's rows into the snapshot data planes enforce. Pure: the same
 * source and options give the same snapshot, byte for byte, and nothing outside the
 * arguments is read. Fails closed: a feature is exposed only when an admin provisioned
 * it and discovery has seen it, and is withheld when its pin no longer matches or its
 * name collides. Throws {@link SnapshotCompileError}; see
 * {@link compileGatewaySnapshotWithDiagnostics} for what was withheld.
 *
 * Runs in time linear in the rows (plus sorting); objects are built with their keys in
 * canonical order so hashing the result needs no re-sorting.
 */
export function compileGatewaySnapshot(source: SnapshotSource, options: CompileGatewaySnapshotOptions): GatewaySnapshot {
  return compileGatewaySnapshotWithDiagnostics(source, options).snapshot;
}

/** {@link compileGatewaySnapshot}, also returning the name collisions it withheld. */
export function compileGatewaySnapshotWithDiagnostics(
  source: SnapshotSource,
  options: CompileGatewaySnapshotOptions,
): CompiledGatewaySnapshot {
  if (!Number.isSafeInteger(options.version) || options.version < 1) {
    throw new RangeError(`options.version must be a positive integer, got ${options.version}`);
  }
  const generatedAtMs = new Date(options.generatedAt).getTime();
  if (Number.isNaN(generatedAtMs)) {
    throw new RangeError(`options.generatedAt is not a valid date: ${String(options.generatedAt)}`);
  }
  const generatedAt = new Date(generatedAtMs).toISOString();

  const compiler = new Compiler(source, generatedAtMs);
  const content = compiler.compile();
  if (compiler.problems.length > 0) throw new SnapshotCompileError(compiler.problems);

  const contentHash = computeSnapshotContentHash(content);
  const snapshot: GatewaySnapshot = {
    access: content.access,
    contentHash,
    formatVersion: content.formatVersion,
    gateways: content.gateways,
    generatedAt,
    killSwitches: content.killSwitches,
    ruleEngines: content.ruleEngines,
    rules: content.rules,
    version: options.version,
    workspace: content.workspace,
    workspaceId: content.workspaceId,
  };
  return { snapshot, diagnostics: compiler.diagnostics };
}

/** Discovered features of one server and type, sorted by name, plus a lazy name index. */
interface DiscoveredList {
  readonly sorted: SourceDiscoveredFeature[];
  byName: Map<string, SourceDiscoveredFeature> | null;
}

type DiscoveredByType = { [T in FeatureType]: DiscoveredList };

interface ClaimedName {
  readonly assignmentId: string;
  readonly serverId: string;
  readonly upstreamName: string;
}

const EMPTY_LIST: DiscoveredList = { sorted: [], byName: new Map() };
const NO_FEATURES: readonly SnapshotFeature[] = Object.freeze([]);
const DISABLED_BY_ORDER: readonly AssignmentDisabledBy[] = ['assignment', 'server', 'container', 'identity'];

class Compiler {
  readonly problems: SnapshotCompileProblem[] = [];
  readonly diagnostics: SnapshotCompileDiagnostic[] = [];
  private readonly servers = new Map<string, SourceServer>();
  private readonly containers = new Map<string, { disabled: boolean; memberIds: string[] }>();
  private readonly discovered = new Map<string, DiscoveredByType>();
  /** assignment id → feature type → upstream name → approved hash. */
  private readonly pins = new Map<string, PerFeatureType<Map<string, string>>>();
  /** assignment id → feature type → upstream name → overrides. */
  private readonly overrides = new Map<string, PerFeatureType<Map<string, SnapshotMetadataOverrides>>>();
  private readonly disabledIdentities = new Set<string>();
  private readonly gatewayIds = new Set<string>();

  constructor(
    private readonly source: SnapshotSource,
    private readonly generatedAtMs: number,
  ) {}

  compile(): SnapshotContent {
    const { source } = this;
    this.indexServers();
    this.indexFeatureChoices();
    for (const identity of source.identities) if (identity.disabled) this.disabledIdentities.add(identity.id);

    const gateways = this.compileGateways();
    const access = this.compileAccess();
    const { rules, ruleEngines } = this.compileRules(gateways);
    return {
      access,
      formatVersion: SNAPSHOT_FORMAT_VERSION,
      gateways,
      killSwitches: this.compileKillSwitches(),
      ruleEngines,
      rules,
      workspace: {
        enabled: !source.workspace.disabled,
        name: source.workspace.name,
        ruleHashSalt: compileSecret(source.workspace.ruleHashSalt),
      },
      workspaceId: source.workspace.id,
    };
  }

  /**
   * Enabled rules of live (not archived) gateways, in gateway (slug) order, then `order`,
   * then id; and the engines they use, by id. Scope assignment ids no longer on the
   * gateway are dropped; a rule left with none of the ones it named is left out.
   */
  private compileRules(gateways: readonly SnapshotGateway[]): { rules: SnapshotRule[]; ruleEngines: SnapshotRuleEngine[] } {
    const { source } = this;
    const engines = new Map<string, SnapshotRuleEngine>();
    for (const engine of source.ruleEngines ?? []) {
      if (engines.has(engine.id)) this.duplicate('rule engine id', engine.id);
      engines.set(engine.id, engine);
    }
    const gatewayIndex = new Map<string, { index: number; gateway: SnapshotGateway; assignmentIds: Set<string> }>();
    gateways.forEach((gateway, index) =>
      gatewayIndex.set(gateway.id, { index, gateway, assignmentIds: new Set(gateway.assignments.map((a) => a.id)) }),
    );

    const ruleIds = new Set<string>();
    const kept: { index: number; row: SourceRule; assignmentIds: string[] }[] = [];
    const usedEngines = new Set<string>();
    for (const row of source.rules ?? []) {
      if (ruleIds.has(row.id)) this.duplicate('rule id', row.id);
      ruleIds.add(row.id);
      const at = gatewayIndex.get(row.gatewayId);
      if (!at) {
        this.unknown(`rule ${row.id}`, 'gatewayId', row.gatewayId);
        continue;
      }
      if (row.detection.kind === 'engine' && !engines.has(row.detection.engineId)) {
        this.unknown(`rule ${row.id}`, 'engineId', row.detection.engineId);
        continue;
      }
      if (!row.enabled || at.gateway.archived) continue;
      if (!Number.isSafeInteger(row.order)) {
        this.invalid(`rule ${row.id}`, `rule ${row.id} has an order that is not an integer`);
        continue;
      }
      const assignmentIds = [...new Set(row.scope.assignmentIds.filter((id) => at.assignmentIds.has(id)))].sort(compareStrings);
      if (row.scope.assignmentIds.length > 0 && assignmentIds.length === 0) {
        this.diagnostics.push({
          code: 'RULE_OUT_OF_SCOPE',
          message: `rule \`${row.name}\` of gateway \`${at.gateway.slug}\` is scoped only to assignments no longer on the gateway; it is left out until its scope is edited`,
          ruleId: row.id,
          gatewayId: row.gatewayId,
        });
        continue;
      }
      if (row.detection.kind === 'engine') usedEngines.add(row.detection.engineId);
      kept.push({ index: at.index, row, assignmentIds });
    }
    kept.sort((a, b) => a.index - b.index || a.row.order - b.row.order || compareStrings(a.row.id, b.row.id));

    const rules = kept.map(({ row, assignmentIds }): SnapshotRule => ({
      action: compileRuleAction(row.action),
      detection: compileRuleDetection(row.detection),
      failureMode: row.failureMode,
      gatewayId: row.gatewayId,
      hooks: RULE_HOOKS.filter((hook) => row.hooks.includes(hook)),
      id: row.id,
      name: row.name,
      order: row.order,
      raiseAlert: row.raiseAlert,
      scope: {
        assignmentIds,
        features: [...new Set(row.scope.features)].sort(compareStrings),
        parts: RULE_PARTS.filter((part) => row.scope.parts.includes(part)),
      },
    }));
    const ruleEngines = [...usedEngines].sort(compareStrings).map((engineId) => compileRuleEngine(engines.get(engineId)!));
    return { rules, ruleEngines };
  }

  private indexServers(): void {
    const { source } = this;
    for (const server of source.servers) {
      if (this.servers.has(server.id)) this.duplicate('server id', server.id);
      this.servers.set(server.id, server);
    }
    for (const container of source.containers) {
      if (this.containers.has(container.id)) this.duplicate('container id', container.id);
      this.containers.set(container.id, { disabled: container.disabled, memberIds: [] });
    }
    for (const member of source.containerMembers) {
      const container = this.containers.get(member.containerId);
      if (!container) {
        this.unknown(`container member ${member.serverId}`, 'containerId', member.containerId);
        continue;
      }
      if (!this.servers.has(member.serverId)) {
        this.unknown(`container ${member.containerId}`, 'members', member.serverId);
        continue;
      }
      container.memberIds.push(member.serverId);
    }
    for (const container of this.containers.values()) container.memberIds.sort(compareStrings);

    for (const feature of source.discoveredFeatures) {
      let byType = this.discovered.get(feature.serverId);
      if (!byType) {
        if (!this.servers.has(feature.serverId)) {
          this.unknown(`discovered ${FEATURE_NOUNS[feature.featureType]} ${feature.name}`, 'serverId', feature.serverId);
          continue;
        }
        byType = {
          tools: { sorted: [], byName: null },
          prompts: { sorted: [], byName: null },
          resources: { sorted: [], byName: null },
          resourceTemplates: { sorted: [], byName: null },
        };
        this.discovered.set(feature.serverId, byType);
      }
      byType[feature.featureType].sorted.push(feature);
    }
    for (const [serverId, byType] of this.discovered) {
      for (const featureType of FEATURE_TYPES) {
        const list = byType[featureType].sorted;
        // Repositories usually return rows ordered by name; sort only when they did not.
        let ordered = true;
        for (let i = 1; i < list.length && ordered; i++) ordered = list[i - 1]!.name < list[i]!.name;
        if (!ordered) list.sort((a, b) => compareStrings(a.name, b.name));
        for (let i = 1; i < list.length; i++) {
          if (list[i]!.name === list[i - 1]!.name) {
            this.duplicate(`discovered ${FEATURE_NOUNS[featureType]} of server ${serverId}`, list[i]!.name);
          }
        }
      }
    }
  }

  private indexFeatureChoices(): void {
    for (const pin of this.source.pins) {
      byFeature(this.pins, pin.assignmentId, pin.featureType).set(pin.name, pin.approvedHash);
    }
    for (const override of this.source.metadataOverrides) {
      byFeature(this.overrides, override.assignmentId, override.featureType).set(override.name, compileOverride(override));
    }
  }

  private compileGateways(): SnapshotGateway[] {
    const { source } = this;
    const assignmentsByGateway = new Map<string, SourceAssignment[]>();
    for (const gateway of source.gateways) {
      if (this.gatewayIds.has(gateway.id)) this.duplicate('gateway id', gateway.id);
      this.gatewayIds.add(gateway.id);
      assignmentsByGateway.set(gateway.id, []);
    }
    const assignmentIds = new Set<string>();
    for (const assignment of source.assignments) {
      if (assignmentIds.has(assignment.id)) this.duplicate('assignment id', assignment.id);
      assignmentIds.add(assignment.id);
      const list = assignmentsByGateway.get(assignment.gatewayId);
      if (list) list.push(assignment);
      else this.unknown(`assignment ${assignment.id}`, 'gatewayId', assignment.gatewayId);
    }

    const sorted = [...source.gateways].sort((a, b) => compareStrings(a.slug, b.slug));
    const gateways: SnapshotGateway[] = [];
    for (let i = 0; i < sorted.length; i++) {
      const gateway = sorted[i]!;
      if (i > 0 && sorted[i - 1]!.slug === gateway.slug) this.duplicate('gateway slug', gateway.slug);
      const assignments = gateway.archived
        ? []
        : this.compileAssignments(gateway.id, gateway.slug, assignmentsByGateway.get(gateway.id) ?? []);
      gateways.push({
        archived: gateway.archived,
        assignments,
        audit: compileAudit(gateway.audit ?? DEFAULT_GATEWAY_AUDIT),
        dataPlaneUrlPath: `/mcp/${gateway.slug}`,
        enabled: !gateway.disabled,
        id: gateway.id,
        name: gateway.name,
        slug: gateway.slug,
      });
    }
    return gateways;
  }

  private compileAssignments(gatewayId: string, gatewaySlug: string, rows: SourceAssignment[]): SnapshotAssignment[] {
    rows.sort((a, b) => compareStrings(a.id, b.id));
    // Name → index of the first entry claiming it; an array once a second one does.
    const claimed = FEATURE_TYPES.map(() => new Map<string, number | number[]>());
    const compiled: SnapshotAssignment[] = [];

    for (const row of rows) {
      const target = this.resolveTarget(row);
      if (!target) continue;
      for (const server of target.servers) {
        const index = compiled.length;
        const entry = this.compileAssignment(row, server, target.containerId, target.containerDisabled);
        compiled.push(entry);
        for (let t = 0; t < FEATURE_TYPES.length; t++) {
          const names = claimed[t]!;
          for (const feature of entry.features[FEATURE_TYPES[t]!]) {
            const earlier = names.get(feature.name);
            if (earlier === undefined) names.set(feature.name, index);
            else if (typeof earlier === 'number') names.set(feature.name, [earlier, index]);
            else earlier.push(index);
          }
        }
      }
    }

    for (let t = 0; t < FEATURE_TYPES.length; t++) {
      const featureType = FEATURE_TYPES[t]!;
      for (const [name, owners] of claimed[t]!) {
        if (typeof owners === 'number') continue;
        const claims: ClaimedName[] = [];
        // An index appears twice when one entry (a container member) claims the name twice.
        for (const index of new Set(owners)) {
          const entry = compiled[index]!;
          const list = entry.features[featureType] as SnapshotFeature[];
          for (let f = 0; f < list.length; f++) {
            const feature = list[f]!;
            if (feature.name !== name) continue;
            claims.push({ assignmentId: entry.id, serverId: entry.serverId, upstreamName: feature.upstreamName });
            list[f] = withheldAs(feature, 'NAME_COLLISION');
          }
        }
        this.collision(gatewayId, gatewaySlug, featureType, name, claims);
      }
    }
    return compiled;
  }

  private resolveTarget(
    row: SourceAssignment,
  ): { servers: SourceServer[]; containerId: string | null; containerDisabled: boolean } | null {
    if ((row.serverId === null) === (row.containerId === null)) {
      this.invalid(`assignment ${row.id}`, `assignment ${row.id} must place exactly one of a server or a container`);
      return null;
    }
    if (row.serverId !== null) {
      const server = this.servers.get(row.serverId);
      if (!server) {
        this.unknown(`assignment ${row.id}`, 'serverId', row.serverId);
        return null;
      }
      return { servers: [server], containerId: null, containerDisabled: false };
    }
    const container = this.containers.get(row.containerId!);
    if (!container) {
      this.unknown(`assignment ${row.id}`, 'containerId', row.containerId!);
      return null;
    }
    return {
      servers: container.memberIds.map((id) => this.servers.get(id)!),
      containerId: row.containerId,
      containerDisabled: container.disabled,
    };
  }

  private compileAssignment(
    row: SourceAssignment,
    server: SourceServer,
    containerId: string | null,
    containerDisabled: boolean,
  ): SnapshotAssignment {
    const identityId = server.auth.kind === 'none' ? null : server.auth.identityId;
    const reasons: Record<AssignmentDisabledBy, boolean> = {
      assignment: row.disabled,
      server: server.disabled,
      container: containerDisabled,
      identity: row.identityScheme === 'shared' && identityId !== null && this.disabledIdentities.has(identityId),
    };
    const disabledBy = DISABLED_BY_ORDER.filter((reason) => reasons[reason]);
    const discovered = this.discovered.get(server.id);

    const provisioning = {} as { [T in FeatureType]: ProvisioningMode };
    const features = {} as { [T in FeatureType]: readonly SnapshotFeature[] };
    // Canonical key order of SnapshotFeatureSets: prompts, resourceTemplates, resources, tools.
    for (const featureType of CANONICAL_FEATURE_TYPE_ORDER) {
      const choice = row.provisioning[featureType];
      provisioning[featureType] = choice?.mode ?? 'UNREVIEWED';
      features[featureType] = this.compileFeatures(row, featureType, discovered?.[featureType] ?? EMPTY_LIST, choice);
    }
    const sortedProvisioning = {
      prompts: provisioning.prompts,
      resourceTemplates: provisioning.resourceTemplates,
      resources: provisioning.resources,
      tools: provisioning.tools,
    };

    return {
      containerId,
      disabledBy,
      enabled: disabledBy.length === 0,
      features,
      id: row.id,
      identityScheme: row.identityScheme,
      namespacePrefix: row.namespacePrefix,
      provisioning: sortedProvisioning,
      serverId: server.id,
      serverName: server.name,
      upstream: compileUpstream(server.upstream),
      upstreamAuth: compileUpstreamAuth(server, row.identityScheme),
    };
  }

  private compileFeatures(
    row: SourceAssignment,
    featureType: FeatureType,
    discovered: DiscoveredList,
    choice: SourceAssignment['provisioning'][FeatureType],
  ): readonly SnapshotFeature[] {
    if (choice === null || choice.mode === 'BLOCK_ALL' || discovered.sorted.length === 0) return NO_FEATURES;

    let exposed: readonly SourceDiscoveredFeature[];
    if (choice.mode === 'ALLOW_ALL') {
      exposed = discovered.sorted;
    } else {
      const byName = (discovered.byName ??= new Map(discovered.sorted.map((f) => [f.name, f])));
      const picked = new Set<SourceDiscoveredFeature>();
      for (const name of choice.selected) {
        const feature = byName.get(name);
        if (feature) picked.add(feature);
      }
      // Keep discovery's sorted order rather than the admin's list order.
      exposed = picked.size === discovered.sorted.length ? discovered.sorted : discovered.sorted.filter((f) => picked.has(f));
    }

    const prefix = row.namespacePrefix;
    const pins = this.pins.get(row.id)?.[featureType];
    const overrides = this.overrides.get(row.id)?.[featureType];
    const features: SnapshotFeature[] = new Array(exposed.length);
    for (let i = 0; i < exposed.length; i++) {
      const feature = exposed[i]!;
      const name = namespacedFeatureName(featureType, prefix, feature.name);
      const pinnedHash = pins?.get(feature.name);
      const override = overrides?.get(feature.name);
      let withheld: WithheldReason | undefined;
      // Precedence as in WITHHELD_REASONS (NAME_COLLISION is applied per gateway later).
      if (feature.held === true) withheld = 'SERVER_HELD';
      else if (pinnedHash !== undefined && pinnedHash !== feature.contentHash) withheld = 'PIN_MISMATCH';
      else if (feature.flagged) withheld = 'FLAGGED';
      // Unset fields stay absent (not undefined-valued) and keys stay in canonical order.
      if (pinnedHash === undefined && withheld === undefined && override === undefined) {
        features[i] = { name, upstreamName: feature.name };
      } else {
        features[i] = {
          name,
          ...(override !== undefined && { overrides: override }),
          ...(pinnedHash !== undefined && { pinnedHash }),
          upstreamName: feature.name,
          ...(withheld !== undefined && { withheld }),
        };
      }
    }
    // Same prefix, names sorted: the namespaced names are sorted too, so no sort here.
    return features;
  }

  private compileAccess(): SnapshotAccess {
    const { source } = this;

    const teamIds = new Set<string>();
    const gatewaysByTeam = new Map<string, Set<string>>();
    for (const team of source.teams) {
      if (teamIds.has(team.id)) this.duplicate('team id', team.id);
      teamIds.add(team.id);
      gatewaysByTeam.set(team.id, new Set());
    }
    for (const link of source.gatewayTeams) {
      const gateways = gatewaysByTeam.get(link.teamId);
      if (!gateways) this.unknown(`gateway ${link.gatewayId}`, 'teamIds', link.teamId);
      else if (!this.gatewayIds.has(link.gatewayId)) this.unknown(`team ${link.teamId}`, 'gatewayIds', link.gatewayId);
      else gateways.add(link.gatewayId);
    }
    const teams: { [id: string]: SnapshotTeam } = {};
    for (const team of sortedBy(source.teams, (t) => t.id)) {
      teams[team.id] = {
        enabled: !team.disabled,
        gatewayIds: [...gatewaysByTeam.get(team.id)!].sort(compareStrings),
      };
    }

    const users: { [id: string]: SnapshotUser } = {};
    for (const user of sortedBy(source.users, (u) => u.id)) {
      if (Object.hasOwn(users, user.id)) this.duplicate('user id', user.id);
      for (const teamId of user.teamIds) {
        if (!teamIds.has(teamId)) this.unknown(`user ${user.id}`, 'teamIds', teamId);
      }
      users[user.id] = {
        enabled: !user.disabled,
        state: user.state,
        teamIds: [...new Set(user.teamIds.filter((id) => teamIds.has(id)))].sort(compareStrings),
      };
    }

    const hosts: { [id: string]: SnapshotHost } = {};
    for (const host of sortedBy(source.hosts, (h) => h.id)) {
      if (Object.hasOwn(hosts, host.id)) this.duplicate('host id', host.id);
      hosts[host.id] = { enabled: !host.disabled, name: host.name };
    }

    const connections: { [id: string]: SnapshotConnection } = {};
    for (const connection of sortedBy(source.connections, (c) => c.id)) {
      const from = `connection ${connection.id}`;
      if (Object.hasOwn(connections, connection.id)) this.duplicate('connection id', connection.id);
      const host = Object.hasOwn(hosts, connection.hostId) ? hosts[connection.hostId] : undefined;
      if (!host) this.unknown(from, 'hostId', connection.hostId);
      if (!this.gatewayIds.has(connection.gatewayId)) this.unknown(from, 'gatewayId', connection.gatewayId);
      if (connection.userId !== null && !Object.hasOwn(users, connection.userId)) {
        this.unknown(from, 'userId', connection.userId);
      }
      connections[connection.id] = {
        enabled: !connection.disabled && (host?.enabled ?? false),
        gatewayId: connection.gatewayId,
        hostId: connection.hostId,
        userId: connection.userId,
      };
    }

    const tokens: { [hash: string]: SnapshotAccessToken } = {};
    for (const token of sortedBy(source.accessTokens, (t) => t.tokenHash)) {
      const from = `access token ${token.id}`;
      if (!/^[0-9a-f]{64}$/.test(token.tokenHash)) {
        this.invalid(from, `access token ${token.id} has a tokenHash that is not lowercase hex SHA-256`);
        continue;
      }
      if (Object.hasOwn(tokens, token.tokenHash)) this.duplicate('access token hash', token.tokenHash);
      const connection = Object.hasOwn(connections, token.connectionId) ? connections[token.connectionId] : undefined;
      if (!connection) {
        this.unknown(from, 'connectionId', token.connectionId);
        continue;
      }
      if (token.revoked) continue;
      let expiresAt: string | null = null;
      if (token.expiresAt !== null) {
        const expiresAtMs = new Date(token.expiresAt).getTime();
        if (Number.isNaN(expiresAtMs)) {
          this.invalid(from, `access token ${token.id} has an invalid expiresAt`);
          continue;
        }
        // Already expired when compiled: it can never authenticate again.
        if (expiresAtMs <= this.generatedAtMs) continue;
        expiresAt = new Date(expiresAtMs).toISOString();
      }
      tokens[token.tokenHash] = {
        connectionId: token.connectionId,
        enabled: connection.enabled,
        expiresAt,
        gatewayId: connection.gatewayId,
        hostId: connection.hostId,
        tokenId: token.id,
      };
    }

    return { connections, hosts, teams, tokens, users };
  }

  private compileKillSwitches(): GatewaySnapshot['killSwitches'] {
    const { source } = this;
    const disabledIds = (rows: readonly { id: string; disabled: boolean }[]) =>
      rows
        .filter((row) => row.disabled)
        .map((row) => row.id)
        .sort(compareStrings);
    const lists: { [K in KillSwitchKind]: string[] } = {
      assignment: disabledIds(source.assignments),
      connection: disabledIds(source.connections),
      container: disabledIds(source.containers),
      gateway: disabledIds(source.gateways),
      host: disabledIds(source.hosts),
      identity: disabledIds(source.identities),
      server: disabledIds(source.servers),
      user: disabledIds(source.users),
      workspace: disabledIds([source.workspace]),
    };
    for (const kind of KILL_SWITCH_KINDS) lists[kind] = [...new Set(lists[kind])];
    return lists;
  }

  private collision(
    gatewayId: string,
    gatewaySlug: string,
    featureType: FeatureType,
    name: string,
    features: readonly ClaimedName[],
  ): void {
    const who = features
      .map((f) => `assignment ${f.assignmentId} (server ${f.serverId}, upstream \`${f.upstreamName}\`)`)
      .join(' and ');
    this.diagnostics.push({
      code: 'FEATURE_NAME_COLLISION',
      message: `${FEATURE_NOUNS[featureType]} \`${name}\` is exposed twice on gateway \`${gatewaySlug}\`: by ${who}; both are withheld until one assignment gets another namespace prefix or only one of them is provisioned`,
      gatewayId,
      gatewaySlug,
      featureType,
      name,
      features,
    });
  }

  private unknown(from: string, field: string, id: string): void {
    this.problems.push({ code: 'UNKNOWN_REFERENCE', message: `${from} refers to unknown ${field} ${id}`, from, field, id });
  }

  private duplicate(entity: string, key: string): void {
    this.problems.push({ code: 'DUPLICATE', message: `${entity} ${key} appears more than once`, entity, key });
  }

  private invalid(from: string, message: string): void {
    this.problems.push({ code: 'INVALID_ROW', message, from });
  }
}

/** The feature, withheld for `reason`; keys stay in canonical order. */
function withheldAs(feature: SnapshotFeature, reason: WithheldReason): SnapshotFeature {
  return {
    name: feature.name,
    ...(feature.overrides !== undefined && { overrides: feature.overrides }),
    ...(feature.pinnedHash !== undefined && { pinnedHash: feature.pinnedHash }),
    upstreamName: feature.upstreamName,
    withheld: reason,
  };
}

/** FEATURE_TYPES in canonical key order, so feature-set objects are built sorted. */
const CANONICAL_FEATURE_TYPE_ORDER: readonly FeatureType[] = [...FEATURE_TYPES].sort(compareStrings);

/**
 * Copies exactly the fields of the contract, keys in canonical order, so a row carrying
 * extra columns cannot leak them into the snapshot (where strict validation would refuse it).
 */
function compileUpstream(upstream: SnapshotUpstream): SnapshotUpstream {
  switch (upstream.kind) {
    case 'remote':
      return { allowInsecure: upstream.allowInsecure, kind: 'remote', transport: upstream.transport, url: upstream.url };
    case 'managed-stdio':
      return {
        args: [...upstream.args],
        command: upstream.command,
        cwd: upstream.cwd,
        env: sortedRecord(upstream.env, (value) => value),
        kind: 'managed-stdio',
        secretEnv: sortedRecord(upstream.secretEnv, compileSecret),
      };
    case 'managed-http':
      return {
        args: [...upstream.args],
        command: upstream.command,
        cwd: upstream.cwd,
        env: sortedRecord(upstream.env, (value) => value),
        kind: 'managed-http',
        secretEnv: sortedRecord(upstream.secretEnv, compileSecret),
        url: upstream.url,
      };
    case 'workstation':
      return { kind: 'workstation', ownerUserId: upstream.ownerUserId };
  }
}

function compileAudit(audit: SnapshotGatewayAudit): SnapshotGatewayAudit {
  return { bodies: audit.bodies, maxBodyBytes: audit.maxBodyBytes };
}

function compileRuleDetection(detection: RuleDetection): RuleDetection {
  switch (detection.kind) {
    case 'regex':
      return { caseInsensitive: detection.caseInsensitive, kind: 'regex', patterns: [...detection.patterns] };
    case 'pii':
      return {
        allowList: [...new Set(detection.allowList)].sort(compareStrings),
        entityTypes: [...new Set(detection.entityTypes)].sort(compareStrings),
        kind: 'pii',
        minConfidence: detection.minConfidence,
      };
    case 'engine':
      return { engineId: detection.engineId, kind: 'engine' };
    case 'detector':
      return { detector: detection.detector, kind: 'detector', threshold: detection.threshold };
  }
}

function compileRuleAction(action: RuleAction): RuleAction {
  switch (action.kind) {
    case 'replace':
      return { kind: 'replace', text: action.text };
    case 'mask':
      return { keepLast: action.keepLast, kind: 'mask' };
    default:
      return { kind: action.kind };
  }
}

function compileRuleEngine(engine: SnapshotRuleEngine): SnapshotRuleEngine {
  return {
    allowPrivateNetwork: engine.allowPrivateNetwork,
    forwardHeaders: [...new Set(engine.forwardHeaders.map((name) => name.toLowerCase()))].sort(compareStrings),
    headers: [...engine.headers]
      .sort((a, b) => compareStrings(a.name.toLowerCase(), b.name.toLowerCase()))
      .map((header) => ({ name: header.name, value: compileSecret(header.value) })),
    id: engine.id,
    kind: engine.kind,
    method: engine.method,
    name: engine.name,
    options: sortedRecord(engine.options, (value) => value),
    signingSecret: compileSecret(engine.signingSecret),
    timeoutMs: engine.timeoutMs,
    url: engine.url,
  };
}

function compileSecret(secret: EncryptedSecret): EncryptedSecret {
  return { aad: secret.aad, alg: secret.alg, ciphertext: secret.ciphertext, iv: secret.iv, keyId: secret.keyId, tag: secret.tag };
}

function sortedRecord<A, B>(record: { readonly [key: string]: A }, map: (value: A) => B): { [key: string]: B } {
  const out: { [key: string]: B } = {};
  for (const key of Object.keys(record).sort(compareStrings)) {
    Object.defineProperty(out, key, { value: map(record[key]!), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function compileUpstreamAuth(server: SourceServer, identityScheme: 'shared' | 'personal'): SnapshotUpstreamAuth {
  const { auth } = server;
  if (auth.kind === 'none') return { kind: 'none' };
  // A personal assignment must never carry the shared credential: each user brings their own.
  if (identityScheme === 'personal') return { kind: 'personal', method: auth.kind };
  if (auth.kind === 'oauth') return { identityId: auth.identityId, kind: 'oauth' };
  const headers = [...auth.headers]
    .sort((a, b) => compareStrings(a.name.toLowerCase(), b.name.toLowerCase()))
    .map((header) => ({ name: header.name, value: compileSecret(header.value) }));
  return { headers, identityId: auth.identityId, kind: 'headers' };
}

function compileOverride(row: SourceMetadataOverride): SnapshotMetadataOverrides {
  return {
    annotations: compileFieldOverride(row.annotations),
    description: compileFieldOverride(row.description),
    title: compileFieldOverride(row.title),
  };
}

function compileFieldOverride<T>(override: MetadataFieldOverride<T> | undefined): MetadataFieldOverride<T> {
  if (override === undefined || override.action === 'keep') return { action: 'keep' };
  if (override.action === 'strip') return { action: 'strip' };
  return { action: 'replace', value: override.value };
}

type PerFeatureType<T> = { [K in FeatureType]: T };

function byFeature<V>(index: Map<string, PerFeatureType<Map<string, V>>>, assignmentId: string, featureType: FeatureType): Map<string, V> {
  let perType = index.get(assignmentId);
  if (!perType) {
    perType = { tools: new Map(), prompts: new Map(), resources: new Map(), resourceTemplates: new Map() };
    index.set(assignmentId, perType);
  }
  return perType[featureType];
}

/** Code-unit order: the same everywhere, unlike `localeCompare`. */
function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sortedBy<T>(rows: readonly T[], key: (row: T) => string): T[] {
  return [...rows].sort((a, b) => compareStrings(key(a), key(b)));
}
