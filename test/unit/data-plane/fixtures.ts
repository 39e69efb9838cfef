import { createHash } from 'node:crypto';
import { compileGatewaySnapshot } from '../../../control-plane/snapshot/compile.js';
import type { SnapshotSource, SourceDiscoveredFeature } from '../../../control-plane/snapshot/source.js';
import type { FeatureType, GatewaySnapshot, SnapshotUpstream } from '../../../schema/snapshot/index.js';

/** Tokens of the fixture workspace, in clear, as a client presents them. */
export const TOKENS = {
  /** conn-eng: usr-ada (active, team-eng) → gateway eng. */
  eng: 'gh_at_engineering-token-0000000000000000000000000',
  /** conn-machine: no user → gateway eng. */
  machine: 'gh_at_machine-token-00000000000000000000000000000',
  /** conn-ops: usr-ada → gateway ops. */
  ops: 'gh_at_operations-token-000000000000000000000000000',
  /** conn-off: switched off by an admin → gateway eng. */
  off: 'gh_at_switched-off-token-0000000000000000000000000',
  /** conn-bob: usr-bob, in no team provisioned to eng. */
  bob: 'gh_at_bob-token-0000000000000000000000000000000000',
  /** conn-eng, expires at 2030-01-01. */
  expiring: 'gh_at_expiring-token-00000000000000000000000000000',
} as const;

export const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');
const fakeHash = (digit: string): string => digit.repeat(64);

const UNREVIEWED = { tools: null, prompts: null, resources: null, resourceTemplates: null };

export interface FixtureOptions {
  /** Upstream of srv-http (assignment asg-http, prefix `web`). */
  readonly httpUpstream?: SnapshotUpstream;
  /** Upstream of srv-stdio (assignment asg-stdio, prefix `local`). */
  readonly stdioUpstream?: SnapshotUpstream;
  /** Upstream of srv-dead (assignment asg-dead, prefix `dead`). */
  readonly deadUpstream?: SnapshotUpstream;
  /** Live definition hashes by `<featureType>:<name>`, as discovery would have stored them. */
  readonly liveHashes?: Readonly<Record<string, string>>;
  readonly tweak?: (source: Mutable<SnapshotSource>) => void;
}

export type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * A workspace with two gateways. `eng` holds three assignments: asg-http (tools echo and
 * get-sum selected, get-sum pinned to a hash discovery did not see, so withheld; all
 * resources and templates), asg-stdio (tool echo, all prompts) and asg-dead (tool echo,
 * an upstream that does not answer). `ops` holds nothing.
 */
export function fixtureSource(options: FixtureOptions = {}): SnapshotSource {
  const live = options.liveHashes ?? {};
  const seen = (serverId: string, featureType: FeatureType, name: string): SourceDiscoveredFeature => ({
    serverId,
    featureType,
    name,
    contentHash: live[`${featureType}:${name}`] ?? fakeHash('a'),
    flagged: false,
  });
  const remote = (port: number): SnapshotUpstream => ({ kind: 'remote', url: `http://127.0.0.1:${port}/mcp`, transport: 'streamable-http', allowInsecure: false });
  const source: Mutable<SnapshotSource> = {
    workspace: {
      id: 'ws-acme',
      name: 'Acme',
      disabled: false,
      ruleHashSalt: { keyId: 'k1', alg: 'A256GCM', aad: 'workspace:ws-acme:rule-hash-salt', iv: 'bm9uY2Vub25jZTEy', ciphertext: 'c2FsdA==', tag: 'dGFndGFndGFndGFndGFnMQ==' },
    },
    servers: [
      { id: 'srv-http', name: 'Everything (HTTP)', disabled: false, upstream: options.httpUpstream ?? remote(1), auth: { kind: 'none' } },
      {
        id: 'srv-stdio',
        name: 'Everything (stdio)',
        disabled: false,
        upstream: options.stdioUpstream ?? { kind: 'managed-stdio', command: 'false', args: [], env: {}, secretEnv: {}, cwd: null },
        auth: { kind: 'none' },
      },
      { id: 'srv-dead', name: 'Dead server', disabled: false, upstream: options.deadUpstream ?? remote(2), auth: { kind: 'none' } },
    ],
    containers: [],
    containerMembers: [],
    discoveredFeatures: [
      seen('srv-http', 'tools', 'echo'),
      seen('srv-http', 'tools', 'get-sum'),
      seen('srv-http', 'tools', 'get-env'),
      seen('srv-http', 'resources', 'demo://resource/static/document/architecture.md'),
      seen('srv-http', 'resourceTemplates', 'demo://resource/dynamic/text/{resourceId}'),
      seen('srv-stdio', 'tools', 'echo'),
      seen('srv-stdio', 'prompts', 'simple-prompt'),
      seen('srv-dead', 'tools', 'echo'),
    ],
    gateways: [
      { id: 'gw-eng', slug: 'eng', name: 'Engineering', archived: false, disabled: false },
      { id: 'gw-ops', slug: 'ops', name: 'Operations', archived: false, disabled: false },
    ],
    gatewayTeams: [
      { gatewayId: 'gw-eng', teamId: 'team-eng' },
      { gatewayId: 'gw-ops', teamId: 'team-eng' },
    ],
    assignments: [
      {
        id: 'asg-http',
        gatewayId: 'gw-eng',
        serverId: 'srv-http',
        containerId: null,
        disabled: false,
        identityScheme: 'shared',
        namespacePrefix: 'web',
        provisioning: {
          ...UNREVIEWED,
          tools: { mode: 'ALLOW_SELECTED', selected: ['echo', 'get-sum'] },
          resources: { mode: 'ALLOW_ALL' },
          resourceTemplates: { mode: 'ALLOW_ALL' },
        },
      },
      {
        id: 'asg-stdio',
        gatewayId: 'gw-eng',
        serverId: 'srv-stdio',
        containerId: null,
        disabled: false,
        identityScheme: 'shared',
        namespacePrefix: 'local',
        provisioning: { ...UNREVIEWED, tools: { mode: 'ALLOW_SELECTED', selected: ['echo'] }, prompts: { mode: 'ALLOW_ALL' } },
      },
      {
        id: 'asg-dead',
        gatewayId: 'gw-eng',
        serverId: 'srv-dead',
        containerId: null,
        disabled: false,
        identityScheme: 'shared',
        namespacePrefix: 'dead',
        provisioning: { ...UNREVIEWED, tools: { mode: 'ALLOW_ALL' } },
      },
    ],
    metadataOverrides: [
      {
        assignmentId: 'asg-http',
        featureType: 'tools',
        name: 'echo',
        description: { action: 'replace', value: 'Echoes a message (through Gatehouse)' },
        annotations: { action: 'strip' },
      },
    ],
    pins: [
      { assignmentId: 'asg-http', featureType: 'tools', name: 'echo', approvedHash: live['tools:echo'] ?? fakeHash('a') },
      { assignmentId: 'asg-http', featureType: 'tools', name: 'get-sum', approvedHash: fakeHash('f') },
    ],
    identities: [],
    hosts: [
      { id: 'host-cli', name: 'Claude Code', disabled: false },
      { id: 'host-bot', name: 'CI bot', disabled: false },
    ],
    connections: [
      { id: 'conn-eng', hostId: 'host-cli', gatewayId: 'gw-eng', userId: 'usr-ada', disabled: false },
      { id: 'conn-machine', hostId: 'host-bot', gatewayId: 'gw-eng', userId: null, disabled: false },
      { id: 'conn-ops', hostId: 'host-cli', gatewayId: 'gw-ops', userId: 'usr-ada', disabled: false },
      { id: 'conn-off', hostId: 'host-bot', gatewayId: 'gw-eng', userId: null, disabled: true },
      { id: 'conn-bob', hostId: 'host-cli', gatewayId: 'gw-eng', userId: 'usr-bob', disabled: false },
    ],
    accessTokens: [
      { id: 'tok-eng', connectionId: 'conn-eng', tokenHash: sha256(TOKENS.eng), expiresAt: null, revoked: false },
      { id: 'tok-machine', connectionId: 'conn-machine', tokenHash: sha256(TOKENS.machine), expiresAt: null, revoked: false },
      { id: 'tok-ops', connectionId: 'conn-ops', tokenHash: sha256(TOKENS.ops), expiresAt: null, revoked: false },
      { id: 'tok-off', connectionId: 'conn-off', tokenHash: sha256(TOKENS.off), expiresAt: null, revoked: false },
      { id: 'tok-bob', connectionId: 'conn-bob', tokenHash: sha256(TOKENS.bob), expiresAt: null, revoked: false },
      { id: 'tok-exp', connectionId: 'conn-eng', tokenHash: sha256(TOKENS.expiring), expiresAt: '2030-01-01T00:00:00.000Z', revoked: false },
    ],
    users: [
      { id: 'usr-ada', state: 'active', disabled: false, teamIds: ['team-eng'] },
      { id: 'usr-bob', state: 'active', disabled: false, teamIds: ['team-other'] },
    ],
    teams: [
      { id: 'team-eng', disabled: false },
      { id: 'team-other', disabled: false },
    ],
  };
  options.tweak?.(source);
  return source;
}

export const GENERATED_AT = '2026-01-01T00:00:00.000Z';

/** Compiles the fixture with the control plane's own compiler, as a publisher would. */
export function fixtureSnapshot(options: FixtureOptions = {}, version = 1): GatewaySnapshot {
  return compileGatewaySnapshot(fixtureSource(options), { version, generatedAt: GENERATED_AT });
}
