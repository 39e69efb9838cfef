import { createHash } from 'node:crypto';
import {
  FEATURE_TYPES,
  KILL_SWITCH_KINDS,
  acceptGatewaySnapshot,
  canonicalJson,
  type FeatureType,
  type GatewaySnapshot,
  type KillSwitchKind,
  type SnapshotAccessToken,
  type SnapshotAssignment,
  type SnapshotConnection,
  type SnapshotFeature,
  type SnapshotGateway,
  type SnapshotHost,
  type SnapshotRule,
  type SnapshotRuleEngine,
  type SnapshotUser,
} from '../../schema/snapshot/index.js';

/**
 * A validated snapshot with the indexes the hot path reads, built once when the snapshot
 * arrives and never per request. Everything here is frozen (maps are exposed read-only
 * and never written after construction), so a request that started on one snapshot keeps
 * a consistent view of it while a newer one is swapped in.
 */
export interface CompiledSnapshot {
  readonly snapshot: GatewaySnapshot;
  readonly workspaceId: string;
  readonly version: number;
  /** Every gateway of the workspace, archived ones included, by slug. */
  readonly gatewaysBySlug: ReadonlyMap<string, CompiledGateway>;
  /** Lowercase hex SHA-256 of an API access token → what it grants. */
  readonly tokensByHash: ReadonlyMap<string, TokenGrant>;
  /** Per user, the gateways an enabled team of theirs is provisioned to. */
  readonly gatewaysByUser: ReadonlyMap<string, ReadonlySet<string>>;
  /** Per gateway id, its content rules in evaluation order (gateways without rules are absent). */
  readonly rulesByGatewayId: ReadonlyMap<string, readonly SnapshotRule[]>;
  /** Rule engines the rules use, by id. */
  readonly ruleEnginesById: ReadonlyMap<string, SnapshotRuleEngine>;
  /** The raw kill-switch lists as sets, for reporting and the kinds with no entity here. */
  readonly killSwitches: { readonly [K in KillSwitchKind]: ReadonlySet<string> };
  /**
   * Snapshot keys by `keyId`, delivered beside the snapshot (unwrapped by the push client),
   * for opening `EncryptedSecret`s. Empty when none were delivered.
   */
  readonly secretKeys: ReadonlyMap<string, Uint8Array>;
}

export interface CompiledGateway {
  readonly gateway: SnapshotGateway;
  /** Assignment entries in snapshot order (assignment id, then server id). */
  readonly entries: readonly CompiledAssignment[];
  /** Per feature type, the exposed name → the feature and the entry that owns it. */
  readonly features: { readonly [T in FeatureType]: ReadonlyMap<string, ExposedFeature> };
  /**
   * Resource templates as matchers, for routing `resources/read` of a URI that expands
   * a template (withheld ones included, so the refusal can name the reason).
   */
  readonly templateMatchers: readonly TemplateMatcher[];
}

/** One `(assignment, server)` entry of a gateway, with its lookups by upstream name. */
export interface CompiledAssignment {
  readonly assignment: SnapshotAssignment;
  /**
   * Identifies the upstream connection this entry uses: assignment, server and a digest
   * of how to reach and authenticate to it, so a changed URL or credential gets a new
   * connection while an unchanged one is reused across snapshots.
   */
  readonly upstreamKey: string;
  /** Per feature type, upstream name → the snapshot's feature, for filtering live lists. */
  readonly byUpstreamName: { readonly [T in FeatureType]: ReadonlyMap<string, SnapshotFeature> };
}

export interface ExposedFeature {
  readonly featureType: FeatureType;
  readonly feature: SnapshotFeature;
  readonly entry: CompiledAssignment;
}

export interface TemplateMatcher {
  readonly pattern: RegExp;
  /** Characters of the exposed name before the upstream template: what to cut off a matched URI. */
  readonly prefixLength: number;
  readonly exposed: ExposedFeature;
}

/** An API access token with everything it refers to resolved. */
export interface TokenGrant {
  readonly tokenHash: string;
  readonly token: SnapshotAccessToken;
  readonly connectionId: string;
  readonly connection: SnapshotConnection;
  readonly host: SnapshotHost | undefined;
  /** The gateway the token reaches, or undefined if the snapshot no longer has it. */
  readonly gateway: SnapshotGateway | undefined;
  readonly userId: string | null;
  readonly user: SnapshotUser | undefined;
  /** `expiresAt` as epoch milliseconds, parsed once; null for no expiry. */
  readonly expiresAtMs: number | null;
}

/**
 * Validates an incoming snapshot (`acceptGatewaySnapshot`: format, shape, references,
 * content hash, strictly newer than `current`) and builds its indexes. Throws
 * `SnapshotRejectedError` with a stable code; the caller keeps serving `current`.
 */
export function acceptSnapshot(
  current: CompiledSnapshot | undefined,
  input: unknown,
  secretKeys: ReadonlyMap<string, Uint8Array> = new Map(),
): CompiledSnapshot {
  const snapshot = acceptGatewaySnapshot(current?.snapshot, input);
  return compileSnapshotIndexes(snapshot, secretKeys);
}

/** Builds the indexes of an already validated snapshot. Linear in its size. */
export function compileSnapshotIndexes(
  snapshot: GatewaySnapshot,
  secretKeys: ReadonlyMap<string, Uint8Array> = new Map(),
): CompiledSnapshot {
  const gatewaysById = new Map<string, SnapshotGateway>();
  const gatewaysBySlug = new Map<string, CompiledGateway>();
  for (const gateway of snapshot.gateways) {
    gatewaysById.set(gateway.id, gateway);
    gatewaysBySlug.set(gateway.slug, compileGateway(gateway));
  }

  const { tokens, connections, hosts, users, teams } = snapshot.access;
  const tokensByHash = new Map<string, TokenGrant>();
  for (const [tokenHash, token] of Object.entries(tokens)) {
    const connection = connections[token.connectionId];
    // The validator guarantees the reference; skipping keeps the index total anyway.
    if (!connection) continue;
    const user = connection.userId === null ? undefined : users[connection.userId];
    tokensByHash.set(
      tokenHash,
      Object.freeze({
        tokenHash,
        token,
        connectionId: token.connectionId,
        connection,
        host: hosts[token.hostId],
        gateway: gatewaysById.get(token.gatewayId),
        userId: connection.userId,
        user,
        expiresAtMs: token.expiresAt === null ? null : Date.parse(token.expiresAt),
      }),
    );
  }

  const gatewaysByUser = new Map<string, ReadonlySet<string>>();
  for (const [userId, user] of Object.entries(users)) {
    const reachable = new Set<string>();
    for (const teamId of user.teamIds) {
      const team = teams[teamId];
      if (!team?.enabled) continue;
      for (const gatewayId of team.gatewayIds) reachable.add(gatewayId);
    }
    gatewaysByUser.set(userId, reachable);
  }

  // The snapshot lists each gateway's rules already in evaluation order.
  const rulesByGatewayId = new Map<string, SnapshotRule[]>();
  for (const rule of snapshot.rules) {
    const list = rulesByGatewayId.get(rule.gatewayId);
    if (list) list.push(rule);
    else rulesByGatewayId.set(rule.gatewayId, [rule]);
  }
  for (const list of rulesByGatewayId.values()) Object.freeze(list);
  const ruleEnginesById = new Map(snapshot.ruleEngines.map((engine) => [engine.id, engine]));

  const killSwitches = {} as { [K in KillSwitchKind]: ReadonlySet<string> };
  for (const kind of KILL_SWITCH_KINDS) killSwitches[kind] = new Set(snapshot.killSwitches[kind]);

  return Object.freeze({
    snapshot,
    workspaceId: snapshot.workspaceId,
    version: snapshot.version,
    gatewaysBySlug,
    tokensByHash,
    gatewaysByUser,
    rulesByGatewayId,
    ruleEnginesById,
    killSwitches: Object.freeze(killSwitches),
    secretKeys: new Map(secretKeys),
  });
}

function compileGateway(gateway: SnapshotGateway): CompiledGateway {
  const features = {} as { [T in FeatureType]: Map<string, ExposedFeature> };
  for (const featureType of FEATURE_TYPES) features[featureType] = new Map();
  const templateMatchers: TemplateMatcher[] = [];
  const entries: CompiledAssignment[] = [];

  for (const assignment of gateway.assignments) {
    const byUpstreamName = {} as { [T in FeatureType]: Map<string, SnapshotFeature> };
    const entry: CompiledAssignment = Object.freeze({
      assignment,
      upstreamKey: upstreamKeyOf(assignment),
      byUpstreamName,
    });
    for (const featureType of FEATURE_TYPES) {
      byUpstreamName[featureType] = new Map();
      for (const feature of assignment.features[featureType]) {
        byUpstreamName[featureType].set(feature.upstreamName, feature);
        const exposed: ExposedFeature = Object.freeze({ featureType, feature, entry });
        // Names are unique per type except for NAME_COLLISION claimants, which are all
        // withheld: keeping the first is enough to refuse the call with its reason.
        if (!features[featureType].has(feature.name)) features[featureType].set(feature.name, exposed);
        if (featureType === 'resourceTemplates') {
          templateMatchers.push(
            Object.freeze({
              pattern: templatePattern(feature.name),
              prefixLength: feature.name.length - feature.upstreamName.length,
              exposed,
            }),
          );
        }
      }
    }
    entries.push(entry);
  }
  return Object.freeze({ gateway, entries: Object.freeze(entries), features: Object.freeze(features), templateMatchers: Object.freeze(templateMatchers) });
}

/**
 * A regular expression matching the URIs an RFC 6570 template expands to. Each `{…}`
 * expression matches any non-empty run of characters: routing only needs to tell which
 * template a URI came from; the upstream validates the variables.
 */
export function templatePattern(uriTemplate: string): RegExp {
  let source = '^';
  let rest = uriTemplate;
  for (;;) {
    const open = rest.indexOf('{');
    const close = open === -1 ? -1 : rest.indexOf('}', open);
    if (open === -1 || close === -1) {
      source += escapeRegExp(rest);
      break;
    }
    source += `${escapeRegExp(rest.slice(0, open))}.+?`;
    rest = rest.slice(close + 1);
  }
  return new RegExp(`${source}$`, 's');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function upstreamKeyOf(assignment: SnapshotAssignment): string {
  const digest = createHash('sha256')
    .update(canonicalJson({ upstream: assignment.upstream, upstreamAuth: assignment.upstreamAuth }))
    .digest('hex')
    .slice(0, 16);
  return `${assignment.id}/${assignment.serverId}/${digest}`;
}
