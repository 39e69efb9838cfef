import type { Kysely } from 'kysely';
import type { EncryptedSecret, FeatureType, JsonValue, MetadataFieldOverride, SnapshotUpstream } from '../../schema/snapshot/index.js';
import type { DB } from '../db/tables.js';
import type { FeatureProvisioning, MetadataOverride } from '../gateways/gateway.table.js';
import type { FeatureKind, SealedSecret, ServerRow } from '../servers/server.table.js';
import { serverSecretContext } from '../servers/server.service.js';
import type { RuleEngineRow, RuleRow } from '../rules/rule.table.js';
import { loadOrCreateRuleHashSalt } from '../rules/rule-hash-salt.js';
import { ruleEngineHeaderContext, ruleEngineSigningContext, ruleHashSaltContext } from '../rules/rule-secrets.js';
import type {
  SnapshotSource,
  SourceMetadataOverride,
  SourceProvisioning,
  SourceRule,
  SourceRuleEngine,
  SourceServer,
  SourceServerAuth,
} from './source.js';

/** Re-seals a vault-sealed secret for data planes. */
export interface SnapshotSealer {
  reseal(sealed: SealedSecret, context: string): EncryptedSecret;
  /** Vault-seals a secret generated on first use (the workspace's rule hash salt). */
  sealAtRest(plaintext: string, context: string): SealedSecret;
}

const FEATURE_TYPE_OF: Readonly<Record<FeatureKind, FeatureType>> = {
  tool: 'tools',
  prompt: 'prompts',
  resource: 'resources',
  resourceTemplate: 'resourceTemplates',
};

const FEATURE_TYPES_BY_NAME: ReadonlySet<string> = new Set(Object.values(FEATURE_TYPE_OF));

/**
 * Reads everything the compiler needs about one workspace: one statement per table, each
 * filtered on the workspace, whatever the workspace's size (18 statements; one or two
 * more the first time, to create the workspace's rule hash salt). Run it inside a
 * transaction for a consistent read. Secrets leave here already sealed for data planes.
 */
export async function loadSnapshotSource(db: Kysely<DB>, workspaceId: string, sealer: SnapshotSealer): Promise<SnapshotSource> {
  const workspace = await db
    .selectFrom('workspaces')
    .select(['id', 'name', 'disabled', 'rule_hash_salt'])
    .where('id', '=', workspaceId)
    .executeTakeFirst();
  if (!workspace) throw new Error(`workspace ${workspaceId} does not exist`);
  const ruleHashSalt = await loadOrCreateRuleHashSalt(db, workspaceId, (plaintext, context) => sealer.sealAtRest(plaintext, context), workspace.rule_hash_salt);
  const servers = await db.selectFrom('servers').selectAll().where('workspace_id', '=', workspaceId).execute();
  const unreviewed = new Set(servers.filter((s) => s.review_state !== 'approved').map((s) => s.id));
  const containers = await db.selectFrom('server_containers').select(['id', 'name', 'disabled']).where('workspace_id', '=', workspaceId).execute();
  const members = await db.selectFrom('server_container_members').select(['container_id', 'server_id']).where('workspace_id', '=', workspaceId).execute();
  const features = await db
    .selectFrom('server_features')
    .select(['server_id', 'kind', 'name', 'hash', 'threat_state'])
    .where('workspace_id', '=', workspaceId)
    .orderBy('server_id')
    .orderBy('kind')
    .orderBy('name')
    .execute();
  const gateways = await db
    .selectFrom('gateways')
    .select(['id', 'slug', 'name', 'archived_at', 'disabled', 'audit_bodies', 'audit_max_body_bytes'])
    .where('workspace_id', '=', workspaceId)
    .execute();
  const gatewayTeams = await db.selectFrom('gateway_teams').select(['gateway_id', 'team_id']).where('workspace_id', '=', workspaceId).execute();
  const assignments = await db.selectFrom('assignments').selectAll().where('workspace_id', '=', workspaceId).execute();
  const pins = await db.selectFrom('assignment_pins').select(['assignment_id', 'kind', 'name', 'pinned_hash']).where('workspace_id', '=', workspaceId).execute();
  const hosts = await db.selectFrom('hosts').select(['id', 'name', 'disabled']).where('workspace_id', '=', workspaceId).execute();
  const connections = await db
    .selectFrom('connections')
    .select(['id', 'host_id', 'gateway_id', 'user_id', 'disabled'])
    .where('workspace_id', '=', workspaceId)
    .execute();
  const tokens = await db
    .selectFrom('access_tokens')
    .select(['id', 'connection_id', 'token_hash', 'expires_at', 'revoked_at'])
    .where('workspace_id', '=', workspaceId)
    .execute();
  const users = await db.selectFrom('users').select(['id', 'state']).where('workspace_id', '=', workspaceId).execute();
  const teamMembers = await db.selectFrom('team_members').select(['team_id', 'user_id']).where('workspace_id', '=', workspaceId).execute();
  const teams = await db.selectFrom('teams').select(['id', 'disabled']).where('workspace_id', '=', workspaceId).execute();
  const identities = await db.selectFrom('identities').select(['id', 'server_id', 'kind', 'disabled']).where('workspace_id', '=', workspaceId).execute();
  const rules = await db.selectFrom('rules').selectAll().where('workspace_id', '=', workspaceId).execute();
  const ruleEngines = await db.selectFrom('rule_engines').selectAll().where('workspace_id', '=', workspaceId).execute();
  const sharedIdentityOf = new Map(identities.filter((i) => i.kind === 'shared').map((i) => [i.server_id, i.id]));

  const teamIdsByUser = new Map<string, string[]>();
  for (const m of teamMembers) {
    const list = teamIdsByUser.get(m.user_id);
    if (list) list.push(m.team_id);
    else teamIdsByUser.set(m.user_id, [m.team_id]);
  }

  return {
    workspace: {
      id: workspace.id,
      name: workspace.name,
      disabled: workspace.disabled,
      ruleHashSalt: sealer.reseal(ruleHashSalt, ruleHashSaltContext(workspace.id)),
    },
    servers: servers.map((server) => toSourceServer(server, sharedIdentityOf.get(server.id) ?? null, sealer)),
    containers: containers.map((c) => ({ id: c.id, name: c.name, disabled: c.disabled })),
    containerMembers: members.map((m) => ({ containerId: m.container_id, serverId: m.server_id })),
    // Flagged: tool poisoning. Held: a server held for review (anti-mimicry) withholds all its features.
    discoveredFeatures: features.map((f) => ({
      serverId: f.server_id,
      featureType: FEATURE_TYPE_OF[f.kind],
      name: f.name,
      contentHash: f.hash,
      flagged: f.threat_state === 'flagged',
      ...(unreviewed.has(f.server_id) && { held: true }),
    })),
    gateways: gateways.map((g) => ({
      id: g.id,
      slug: g.slug,
      name: g.name,
      archived: g.archived_at !== null,
      disabled: g.disabled,
      audit: { bodies: g.audit_bodies, maxBodyBytes: g.audit_max_body_bytes },
    })),
    gatewayTeams: gatewayTeams.map((l) => ({ gatewayId: l.gateway_id, teamId: l.team_id })),
    assignments: assignments.map((a) => ({
      id: a.id,
      gatewayId: a.gateway_id,
      serverId: a.server_id,
      containerId: a.container_id,
      disabled: a.disabled,
      identityScheme: a.identity_scheme,
      namespacePrefix: a.namespace_prefix,
      provisioning: {
        tools: toSourceProvisioning(a.provisioning.tools),
        prompts: toSourceProvisioning(a.provisioning.prompts),
        resources: toSourceProvisioning(a.provisioning.resources),
        resourceTemplates: toSourceProvisioning(a.provisioning.resourceTemplates),
      },
    })),
    metadataOverrides: assignments.flatMap((a) => toSourceOverrides(a.id, a.metadata_overrides)),
    pins: pins.map((p) => ({ assignmentId: p.assignment_id, featureType: FEATURE_TYPE_OF[p.kind], name: p.name, approvedHash: p.pinned_hash })),
    identities: identities.map((i) => ({ id: i.id, disabled: i.disabled })),
    hosts: hosts.map((h) => ({ id: h.id, name: h.name, disabled: h.disabled })),
    connections: connections.map((c) => ({ id: c.id, hostId: c.host_id, gatewayId: c.gateway_id, userId: c.user_id, disabled: c.disabled })),
    accessTokens: tokens.map((t) => ({ id: t.id, connectionId: t.connection_id, tokenHash: t.token_hash, expiresAt: t.expires_at, revoked: t.revoked_at !== null })),
    // Users have no kill switch of their own yet; deactivation (state) is what stops them.
    users: users.map((u) => ({ id: u.id, state: u.state, disabled: false, teamIds: teamIdsByUser.get(u.id) ?? [] })),
    teams: teams.map((t) => ({ id: t.id, disabled: t.disabled })),
    rules: rules.map(toSourceRule),
    ruleEngines: ruleEngines.map((engine) => toSourceRuleEngine(engine, sealer)),
  };
}

function toSourceRule(row: RuleRow): SourceRule {
  return {
    id: row.id,
    gatewayId: row.gateway_id,
    name: row.name,
    enabled: row.enabled,
    order: row.position,
    hooks: row.hooks,
    scope: row.scope,
    detection: row.detection,
    action: row.action,
    failureMode: row.failure_mode,
    raiseAlert: row.raise_alert,
  };
}

function toSourceRuleEngine(row: RuleEngineRow, sealer: SnapshotSealer): SourceRuleEngine {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    url: row.url,
    method: row.method,
    headers: Object.entries(row.headers).map(([name, sealed]) => ({ name, value: sealer.reseal(sealed, ruleEngineHeaderContext(row.id, name)) })),
    forwardHeaders: row.forward_headers,
    signingSecret: sealer.reseal(row.signing_secret, ruleEngineSigningContext(row.id)),
    timeoutMs: row.timeout_ms,
    allowPrivateNetwork: row.allow_private_network,
    options: row.options,
  };
}

function toSourceServer(server: ServerRow, sharedIdentityId: string | null, sealer: SnapshotSealer): SourceServer {
  const seal = (field: 'header' | 'env', secrets: Record<string, SealedSecret>) => {
    const out: { [name: string]: EncryptedSecret } = {};
    for (const [name, sealed] of Object.entries(secrets)) out[name] = sealer.reseal(sealed, serverSecretContext(server.id, field, name));
    return out;
  };
  let upstream: SnapshotUpstream;
  if (server.kind === 'remote') {
    upstream = { kind: 'remote', url: server.url ?? '', transport: server.transport === 'sse' ? 'sse' : 'streamable-http', allowInsecure: server.allow_insecure };
  } else if (server.kind === 'managed') {
    const launch = { command: server.command ?? '', args: server.args, env: server.env, secretEnv: seal('env', server.secret_env), cwd: server.cwd };
    upstream = server.transport === 'http' ? { kind: 'managed-http', ...launch, url: server.url ?? '' } : { kind: 'managed-stdio', ...launch };
  } else {
    upstream = { kind: 'workstation', ownerUserId: null };
  }
  let auth: SourceServerAuth;
  if (server.auth_kind === 'headers') {
    const headers = seal('header', server.auth_headers);
    auth = { kind: 'headers', identityId: sharedIdentityId, headers: Object.entries(headers).map(([name, value]) => ({ name, value })) };
  } else if (server.auth_kind === 'oauth') {
    auth = { kind: 'oauth', identityId: sharedIdentityId };
  } else {
    auth = { kind: 'none' };
  }
  return { id: server.id, name: server.name, disabled: server.disabled, upstream, auth };
}

function toSourceProvisioning(choice: FeatureProvisioning | undefined): SourceProvisioning | null {
  switch (choice?.mode) {
    case 'ALLOW_ALL':
      return { mode: 'ALLOW_ALL' };
    case 'ALLOW_SELECTED':
      return { mode: 'ALLOW_SELECTED', selected: choice.selected };
    case 'BLOCK_ALL':
      return { mode: 'BLOCK_ALL' };
    default:
      return null;
  }
}

/** `metadata_overrides` is keyed `<featureType>:<upstream name>`; names (URIs) may contain `:`. */
function toSourceOverrides(assignmentId: string, overrides: Record<string, MetadataOverride>): SourceMetadataOverride[] {
  const out: SourceMetadataOverride[] = [];
  for (const [key, override] of Object.entries(overrides)) {
    const colon = key.indexOf(':');
    const featureType = key.slice(0, colon);
    if (colon < 0 || !FEATURE_TYPES_BY_NAME.has(featureType)) continue;
    out.push({
      assignmentId,
      featureType: featureType as FeatureType,
      name: key.slice(colon + 1),
      ...(override.title !== undefined && { title: fieldOverride(override.title) }),
      ...(override.description !== undefined && { description: fieldOverride(override.description) }),
      ...(override.annotations !== undefined && {
        annotations: fieldOverride(override.annotations as { readonly [key: string]: JsonValue } | null),
      }),
    });
  }
  return out;
}

function fieldOverride<T>(value: T | null): MetadataFieldOverride<T> {
  return value === null ? { action: 'strip' } : { action: 'replace', value };
}
