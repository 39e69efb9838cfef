import { z } from 'zod';
import { computeSnapshotContentHash } from './hash.js';
import {
  FEATURE_TYPES,
  KILL_SWITCH_KINDS,
  RULE_HOOKS,
  RULE_PARTS,
  SNAPSHOT_FORMAT_VERSION,
  WITHHELD_REASONS,
  type GatewaySnapshot,
  type SnapshotFeature,
} from './types.js';

/**
 * Why a data plane refused a snapshot. Stable: the data plane reports it back to the
 * control plane, which shows it as the data plane's last rejection.
 * - `INVALID`: not a well-formed snapshot (shape, references, or an internal contradiction);
 * - `UNSUPPORTED_FORMAT`: a `formatVersion` this code does not read;
 * - `STALE_VERSION`: not newer than the snapshot already held;
 * - `HASH_MISMATCH`: `contentHash` does not match the content.
 */
export type SnapshotRejectionCode = 'INVALID' | 'UNSUPPORTED_FORMAT' | 'STALE_VERSION' | 'HASH_MISMATCH';

/** A snapshot the data plane will not serve. It keeps serving the one it holds, if any. */
export class SnapshotRejectedError extends Error {
  override readonly name = 'SnapshotRejectedError';
  constructor(
    readonly code: SnapshotRejectionCode,
    message: string,
    /** Individual problems for `INVALID`, each prefixed with its JSON path; at most 20. */
    readonly issues: readonly string[] = [],
  ) {
    super(message);
  }
}

const MAX_REPORTED_ISSUES = 20;

/** Upper bound of a gateway's `audit.maxBodyBytes`: 16 MiB, the largest payload a rule engine exchanges. */
export const MAX_AUDIT_BODY_BYTES = 16 * 1024 * 1024;
/** Upper bound of a rule engine's `timeoutMs`: 5 minutes. */
export const MAX_ENGINE_TIMEOUT_MS = 300_000;

// Object shapes list their keys in canonical (sorted) order: zod builds its output in
// shape order, and sorted output lets the content-hash check skip re-sorting.
const id = z.string().min(1);
const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'expected lowercase hex SHA-256');
const isoInstant = z.iso.datetime();
const idList = z.array(id);

const encryptedSecret = z.strictObject({
  aad: z.string(),
  alg: z.literal('A256GCM'),
  ciphertext: z.base64(),
  iv: z.base64(),
  keyId: id,
  tag: z.base64(),
});

const stringMap = z.record(z.string(), z.string());
const secretMap = z.record(z.string(), encryptedSecret);
const httpUrl = z.url({ protocol: /^https?$/ });

const upstream = z.discriminatedUnion('kind', [
  z.strictObject({
    allowInsecure: z.boolean(),
    kind: z.literal('remote'),
    transport: z.enum(['streamable-http', 'sse']),
    url: httpUrl,
  }),
  z.strictObject({
    args: z.array(z.string()),
    command: z.string().min(1),
    cwd: z.string().min(1).nullable(),
    env: stringMap,
    kind: z.literal('managed-stdio'),
    secretEnv: secretMap,
  }),
  z.strictObject({
    args: z.array(z.string()),
    command: z.string().min(1),
    cwd: z.string().min(1).nullable(),
    env: stringMap,
    kind: z.literal('managed-http'),
    secretEnv: secretMap,
    url: httpUrl,
  }),
  z.strictObject({
    kind: z.literal('workstation'),
    ownerUserId: id.nullable(),
  }),
]);

const upstreamAuth = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('none') }),
  z.strictObject({
    headers: z.array(z.strictObject({ name: z.string().min(1), value: encryptedSecret })),
    identityId: id.nullable(),
    kind: z.literal('headers'),
  }),
  z.strictObject({ identityId: id.nullable(), kind: z.literal('oauth') }),
  z.strictObject({ kind: z.literal('personal'), method: z.enum(['headers', 'oauth']) }),
]);

function fieldOverride<T extends z.ZodType>(value: T) {
  return z.discriminatedUnion('action', [
    z.strictObject({ action: z.literal('keep') }),
    z.strictObject({ action: z.literal('replace'), value }),
    z.strictObject({ action: z.literal('strip') }),
  ]);
}

const feature = z.strictObject({
  name: z.string().min(1),
  overrides: z
    .strictObject({
      annotations: fieldOverride(z.record(z.string(), z.json())),
      description: fieldOverride(z.string()),
      title: fieldOverride(z.string()),
    })
    .optional(),
  pinnedHash: hex64.optional(),
  upstreamName: z.string().min(1),
  withheld: z.enum(WITHHELD_REASONS).optional(),
});

const featureList = z.array(feature);
const provisioningMode = z.enum(['ALLOW_ALL', 'ALLOW_SELECTED', 'BLOCK_ALL', 'UNREVIEWED']);

const assignment = z.strictObject({
  containerId: id.nullable(),
  disabledBy: z.array(z.enum(['assignment', 'server', 'container', 'identity'])),
  enabled: z.boolean(),
  features: z.strictObject({
    prompts: featureList,
    resourceTemplates: featureList,
    resources: featureList,
    tools: featureList,
  }),
  id,
  identityScheme: z.enum(['shared', 'personal']),
  namespacePrefix: z.string(),
  provisioning: z.strictObject({
    prompts: provisioningMode,
    resourceTemplates: provisioningMode,
    resources: provisioningMode,
    tools: provisioningMode,
  }),
  serverId: id,
  serverName: z.string(),
  upstream,
  upstreamAuth,
});

const gateway = z.strictObject({
  archived: z.boolean(),
  assignments: z.array(assignment),
  audit: z.strictObject({
    bodies: z.enum(['full', 'metadata']),
    maxBodyBytes: z.int().min(0).max(MAX_AUDIT_BODY_BYTES),
  }),
  dataPlaneUrlPath: z.string().startsWith('/mcp/'),
  enabled: z.boolean(),
  id,
  name: z.string(),
  slug: z.string().min(1),
});

const access = z.strictObject({
  connections: z.record(
    id,
    z.strictObject({ enabled: z.boolean(), gatewayId: id, hostId: id, userId: id.nullable() }),
  ),
  hosts: z.record(id, z.strictObject({ enabled: z.boolean(), name: z.string() })),
  teams: z.record(id, z.strictObject({ enabled: z.boolean(), gatewayIds: idList })),
  tokens: z.record(
    hex64,
    z.strictObject({
      connectionId: id,
      enabled: z.boolean(),
      expiresAt: isoInstant.nullable(),
      gatewayId: id,
      hostId: id,
      tokenId: id,
    }),
  ),
  users: z.record(
    id,
    z.strictObject({
      enabled: z.boolean(),
      state: z.enum(['invited', 'active', 'deactivated']),
      teamIds: idList,
    }),
  ),
});

const killSwitches = z.strictObject({
  assignment: idList,
  connection: idList,
  container: idList,
  gateway: idList,
  host: idList,
  identity: idList,
  server: idList,
  user: idList,
  workspace: idList,
});

const unitInterval = z.number().min(0).max(1);
const nonEmptyUnique = <T extends z.ZodType>(item: T) =>
  z
    .array(item)
    .min(1)
    .refine((list) => new Set(list).size === list.length, 'lists a value twice');

const ruleDetection = z.discriminatedUnion('kind', [
  z.strictObject({
    caseInsensitive: z.boolean(),
    kind: z.literal('regex'),
    patterns: z.array(z.string().min(1)).min(1),
  }),
  z.strictObject({
    allowList: z.array(z.string()),
    entityTypes: nonEmptyUnique(z.string().min(1)),
    kind: z.literal('pii'),
    minConfidence: unitInterval,
  }),
  z.strictObject({ engineId: id, kind: z.literal('engine') }),
  z.strictObject({ detector: z.literal('prompt_injection'), kind: z.literal('detector'), threshold: unitInterval }),
]);

const ruleAction = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('block') }),
  z.strictObject({ kind: z.literal('redact') }),
  z.strictObject({ kind: z.literal('replace'), text: z.string() }),
  z.strictObject({ keepLast: z.int().min(0), kind: z.literal('mask') }),
  z.strictObject({ kind: z.literal('hash') }),
  z.strictObject({ kind: z.literal('alert_only') }),
]);

const rule = z.strictObject({
  action: ruleAction,
  detection: ruleDetection,
  failureMode: z.enum(['open', 'closed']),
  gatewayId: id,
  hooks: nonEmptyUnique(z.enum(RULE_HOOKS)),
  id,
  name: z.string().min(1),
  order: z.int(),
  raiseAlert: z.boolean(),
  scope: z.strictObject({
    assignmentIds: idList,
    features: z.array(z.string().min(1)),
    parts: nonEmptyUnique(z.enum(RULE_PARTS)),
  }),
});

const ruleEngine = z.strictObject({
  allowPrivateNetwork: z.boolean(),
  forwardHeaders: z.array(z.string().regex(/^[!#$%&'*+.^_`|~0-9a-z-]+$/, 'expected a lowercase header name')),
  headers: z.array(z.strictObject({ name: z.string().min(1), value: encryptedSecret })),
  id,
  kind: z.enum(['webhook', 'lakera', 'bedrock']),
  method: z.enum(['POST', 'PUT']),
  name: z.string().min(1),
  options: stringMap,
  signingSecret: encryptedSecret,
  timeoutMs: z.int().min(1).max(MAX_ENGINE_TIMEOUT_MS),
  url: httpUrl,
});

/** The shape of a snapshot as zod checks it; `parseGatewaySnapshot` adds cross-checks and the hash. */
export const gatewaySnapshotSchema: z.ZodType<GatewaySnapshot> = z.strictObject({
  access,
  contentHash: hex64,
  formatVersion: z.literal(SNAPSHOT_FORMAT_VERSION),
  gateways: z.array(gateway),
  generatedAt: isoInstant,
  killSwitches,
  ruleEngines: z.array(ruleEngine),
  rules: z.array(rule),
  version: z.int().min(1),
  workspace: z.strictObject({ enabled: z.boolean(), name: z.string(), ruleHashSalt: encryptedSecret }),
  workspaceId: id,
});

/** Options of {@link parseGatewaySnapshot}. */
export interface ParseGatewaySnapshotOptions {
  /** Deep-freeze the result so nothing can change it after it is swapped in. Default true. */
  readonly freeze?: boolean;
}

/**
 * Parses untrusted JSON (already `JSON.parse`d) into a snapshot a data plane may serve:
 * checks the format version, the shape, internal consistency (references resolve,
 * names are unique per gateway, flags agree with their reasons) and the content hash.
 * Throws {@link SnapshotRejectedError}; never returns a partly valid snapshot.
 */
export function parseGatewaySnapshot(input: unknown, options: ParseGatewaySnapshotOptions = {}): GatewaySnapshot {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new SnapshotRejectedError('INVALID', 'a snapshot must be a JSON object');
  }
  const formatVersion = (input as { formatVersion?: unknown }).formatVersion;
  if (formatVersion !== SNAPSHOT_FORMAT_VERSION) {
    if (typeof formatVersion === 'number') {
      throw new SnapshotRejectedError(
        'UNSUPPORTED_FORMAT',
        `snapshot format ${formatVersion} is not supported; this data plane reads format ${SNAPSHOT_FORMAT_VERSION}`,
      );
    }
    throw new SnapshotRejectedError('INVALID', 'a snapshot must carry a numeric formatVersion');
  }

  const parsed = gatewaySnapshotSchema.safeParse(input);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, MAX_REPORTED_ISSUES).map((issue) => `${formatPath(issue.path)}: ${issue.message}`);
    throw new SnapshotRejectedError('INVALID', `snapshot is malformed: ${issues[0] ?? 'unknown problem'}`, issues);
  }
  const snapshot = parsed.data;

  const inconsistencies = findInconsistencies(snapshot);
  if (inconsistencies.length > 0) {
    throw new SnapshotRejectedError(
      'INVALID',
      `snapshot is inconsistent: ${inconsistencies[0]}`,
      inconsistencies.slice(0, MAX_REPORTED_ISSUES),
    );
  }

  const actual = computeSnapshotContentHash(snapshot);
  if (actual !== snapshot.contentHash) {
    throw new SnapshotRejectedError(
      'HASH_MISMATCH',
      `snapshot ${snapshot.workspaceId}@${snapshot.version} declares content hash ${snapshot.contentHash} but its content hashes to ${actual}`,
    );
  }
  return options.freeze === false ? snapshot : deepFreeze(snapshot);
}

/**
 * Refuses `incoming` unless it is for the same workspace as `current` and strictly
 * newer. With no current snapshot, anything valid is newer.
 */
export function assertNewer(current: GatewaySnapshot | null | undefined, incoming: GatewaySnapshot): void {
  if (!current) return;
  if (incoming.workspaceId !== current.workspaceId) {
    throw new SnapshotRejectedError(
      'INVALID',
      `snapshot is for workspace ${incoming.workspaceId}, not ${current.workspaceId}`,
    );
  }
  if (incoming.version <= current.version) {
    throw new SnapshotRejectedError(
      'STALE_VERSION',
      `snapshot version ${incoming.version} is not newer than the version held, ${current.version}`,
    );
  }
}

/** `parseGatewaySnapshot` then `assertNewer`: what a data plane runs on every snapshot it receives. */
export function acceptGatewaySnapshot(
  current: GatewaySnapshot | null | undefined,
  input: unknown,
  options?: ParseGatewaySnapshotOptions,
): GatewaySnapshot {
  const incoming = parseGatewaySnapshot(input, options);
  assertNewer(current, incoming);
  return incoming;
}

/** Cross-checks zod cannot express; each problem as `path: message`. */
function findInconsistencies(snapshot: GatewaySnapshot): string[] {
  const problems: string[] = [];
  const report = (path: string, message: string) => {
    if (problems.length < MAX_REPORTED_ISSUES) problems.push(`${path}: ${message}`);
  };

  const workspaceKilled = snapshot.killSwitches.workspace.includes(snapshot.workspaceId);
  if (snapshot.workspace.enabled === workspaceKilled) {
    report('workspace.enabled', 'disagrees with killSwitches.workspace');
  }

  const gatewayIds = new Set<string>();
  const assignmentIdsByGateway = new Map<string, Set<string>>();
  const slugs = new Set<string>();
  snapshot.gateways.forEach((gateway, g) => {
    const at = `gateways[${g}]`;
    if (gatewayIds.has(gateway.id)) report(`${at}.id`, `duplicate gateway id ${gateway.id}`);
    gatewayIds.add(gateway.id);
    if (slugs.has(gateway.slug)) report(`${at}.slug`, `duplicate gateway slug ${gateway.slug}`);
    slugs.add(gateway.slug);
    if (gateway.dataPlaneUrlPath !== `/mcp/${gateway.slug}`) report(`${at}.dataPlaneUrlPath`, `must be /mcp/${gateway.slug}`);
    if (gateway.archived && gateway.assignments.length > 0) report(`${at}.assignments`, 'an archived gateway has none');
    assignmentIdsByGateway.set(gateway.id, new Set(gateway.assignments.map((assignment) => assignment.id)));

    const entries = new Set<string>();
    // Name → the features claiming it, per type; a name may be claimed twice only by
    // features all withheld as NAME_COLLISION, and such a feature must share its name.
    const names = FEATURE_TYPES.map(() => new Map<string, { feature: SnapshotFeature; path: string }[]>());
    gateway.assignments.forEach((assignment, a) => {
      const assignmentAt = `${at}.assignments[${a}]`;
      const entry = `${assignment.id}\u0000${assignment.serverId}`;
      if (entries.has(entry)) report(assignmentAt, `duplicate assignment ${assignment.id} for server ${assignment.serverId}`);
      entries.add(entry);
      if (assignment.enabled !== (assignment.disabledBy.length === 0)) {
        report(`${assignmentAt}.enabled`, 'disagrees with disabledBy');
      }
      FEATURE_TYPES.forEach((featureType, t) => {
        const seen = names[t]!;
        assignment.features[featureType].forEach((feature, f) => {
          const claim = { feature, path: `${assignmentAt}.features.${featureType}[${f}]` };
          const claims = seen.get(feature.name);
          if (claims) claims.push(claim);
          else seen.set(feature.name, [claim]);
        });
      });
    });
    for (const claimsByName of names) {
      for (const [name, claims] of claimsByName) {
        if (claims.length === 1) {
          if (claims[0]!.feature.withheld === 'NAME_COLLISION') {
            report(`${claims[0]!.path}.withheld`, `NAME_COLLISION but no other feature on gateway ${gateway.slug} is named ${name}`);
          }
          continue;
        }
        for (const claim of claims) {
          if (claim.feature.withheld !== 'NAME_COLLISION') {
            report(`${claim.path}.name`, `${name} is exposed twice on gateway ${gateway.slug} without being withheld as NAME_COLLISION`);
          }
        }
      }
    }
  });

  const { hosts, connections, tokens, users, teams } = snapshot.access;
  for (const [connectionId, connection] of Object.entries(connections)) {
    const at = `access.connections.${connectionId}`;
    if (!Object.hasOwn(hosts, connection.hostId)) report(`${at}.hostId`, `unknown host ${connection.hostId}`);
    if (!gatewayIds.has(connection.gatewayId)) report(`${at}.gatewayId`, `unknown gateway ${connection.gatewayId}`);
    if (connection.userId !== null && !Object.hasOwn(users, connection.userId)) {
      report(`${at}.userId`, `unknown user ${connection.userId}`);
    }
  }
  for (const [tokenHash, token] of Object.entries(tokens)) {
    const at = `access.tokens.${tokenHash}`;
    const connection = Object.hasOwn(connections, token.connectionId) ? connections[token.connectionId] : undefined;
    if (!connection) {
      report(`${at}.connectionId`, `unknown connection ${token.connectionId}`);
    } else if (connection.gatewayId !== token.gatewayId || connection.hostId !== token.hostId) {
      report(at, `gatewayId and hostId must be those of connection ${token.connectionId}`);
    }
  }
  for (const [userId, user] of Object.entries(users)) {
    for (const teamId of user.teamIds) {
      if (!Object.hasOwn(teams, teamId)) report(`access.users.${userId}.teamIds`, `unknown team ${teamId}`);
    }
  }
  for (const [teamId, team] of Object.entries(teams)) {
    for (const gatewayId of team.gatewayIds) {
      if (!gatewayIds.has(gatewayId)) report(`access.teams.${teamId}.gatewayIds`, `unknown gateway ${gatewayId}`);
    }
  }
  const engineIds = new Set<string>();
  snapshot.ruleEngines.forEach((engine, e) => {
    const at = `ruleEngines[${e}]`;
    if (engineIds.has(engine.id)) report(`${at}.id`, `duplicate rule engine id ${engine.id}`);
    else if (e > 0 && snapshot.ruleEngines[e - 1]!.id > engine.id) report(`${at}.id`, 'rule engines must be ordered by id');
    engineIds.add(engine.id);
    if (!engine.allowPrivateNetwork && !engine.url.startsWith('https://')) {
      report(`${at}.url`, 'must be https:// unless allowPrivateNetwork');
    }
  });
  const ruleIds = new Set<string>();
  const lastOrder = new Map<string, number>();
  snapshot.rules.forEach((rule, r) => {
    const at = `rules[${r}]`;
    if (ruleIds.has(rule.id)) report(`${at}.id`, `duplicate rule id ${rule.id}`);
    ruleIds.add(rule.id);
    const assignmentIds = assignmentIdsByGateway.get(rule.gatewayId);
    if (!assignmentIds) {
      report(`${at}.gatewayId`, `unknown gateway ${rule.gatewayId}`);
    } else {
      for (const assignmentId of rule.scope.assignmentIds) {
        if (!assignmentIds.has(assignmentId)) report(`${at}.scope.assignmentIds`, `assignment ${assignmentId} is not on gateway ${rule.gatewayId}`);
      }
    }
    const previous = lastOrder.get(rule.gatewayId);
    if (previous !== undefined && previous > rule.order) report(`${at}.order`, `rules of gateway ${rule.gatewayId} must be in ascending order`);
    lastOrder.set(rule.gatewayId, rule.order);
    if (rule.detection.kind === 'engine' && !engineIds.has(rule.detection.engineId)) {
      report(`${at}.detection.engineId`, `unknown rule engine ${rule.detection.engineId}`);
    }
  });

  for (const kind of KILL_SWITCH_KINDS) {
    const ids = snapshot.killSwitches[kind];
    if (new Set(ids).size !== ids.length) report(`killSwitches.${kind}`, 'lists an id twice');
  }
  return problems;
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '$';
  for (const segment of path) out += typeof segment === 'number' ? `[${segment}]` : `.${String(segment)}`;
  return out;
}

function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  for (const key of Object.keys(value)) deepFreeze((value as { [key: string]: unknown })[key]);
  return Object.freeze(value);
}
