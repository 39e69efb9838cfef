import type { SnapshotSource, SourceDiscoveredFeature } from '../../../control-plane/snapshot/source.js';
import type { EncryptedSecret, FeatureType } from '../../../schema/snapshot/index.js';

export const hash = (digit: string): string => digit.repeat(64);

export const secret = (aad: string): EncryptedSecret => ({
  keyId: 'k1',
  alg: 'A256GCM',
  aad,
  iv: 'bm9uY2Vub25jZTEy',
  ciphertext: 'Y2lwaGVydGV4dA==',
  tag: 'dGFndGFndGFndGFndGFnMQ==',
});

export const discovered = (serverId: string, featureType: FeatureType, name: string, digit: string): SourceDiscoveredFeature => ({
  serverId,
  featureType,
  name,
  contentHash: hash(digit),
  flagged: false,
});

const UNREVIEWED = { tools: null, prompts: null, resources: null, resourceTemplates: null };

/** One gateway, a remote server with a shared header credential, and a container of two managed servers. */
export function richSource(): SnapshotSource {
  return {
    workspace: { id: 'ws-acme', name: 'Acme', disabled: false, ruleHashSalt: secret('workspace:ws-acme:rule-hash-salt') },
    servers: [
      {
        id: 'srv-github',
        name: 'GitHub',
        disabled: false,
        upstream: { kind: 'remote', url: 'https://api.githubcopilot.com/mcp/', transport: 'streamable-http', allowInsecure: false },
        auth: { kind: 'headers', identityId: 'idn-github-bot', headers: [{ name: 'Authorization', value: secret('server:srv-github:header:authorization') }] },
      },
      {
        id: 'srv-files',
        name: 'Files',
        disabled: false,
        upstream: {
          kind: 'managed-stdio',
          command: 'npx',
          args: ['-y', '@modelcontextprotocol/server-filesystem', '/srv/docs'],
          env: { NODE_ENV: 'production' },
          secretEnv: { API_TOKEN: secret('server:srv-files:env:API_TOKEN') },
          cwd: null,
        },
        auth: { kind: 'none' },
      },
      {
        id: 'srv-search',
        name: 'Search',
        disabled: false,
        upstream: { kind: 'managed-http', command: 'search-mcp', args: [], env: {}, secretEnv: {}, cwd: null, url: 'http://127.0.0.1:7001/mcp' },
        auth: { kind: 'none' },
      },
    ],
    containers: [{ id: 'ctr-docs', name: 'Docs', disabled: false }],
    containerMembers: [
      { containerId: 'ctr-docs', serverId: 'srv-files' },
      { containerId: 'ctr-docs', serverId: 'srv-search' },
    ],
    discoveredFeatures: [
      discovered('srv-github', 'tools', 'list_issues', 'a'),
      discovered('srv-github', 'tools', 'create_issue', 'b'),
      discovered('srv-files', 'tools', 'read_file', 'd'),
      discovered('srv-search', 'tools', 'search', 'e'),
    ],
    gateways: [{ id: 'gw-eng', slug: 'eng', name: 'Engineering', archived: false, disabled: false }],
    gatewayTeams: [{ gatewayId: 'gw-eng', teamId: 'team-eng' }],
    assignments: [
      {
        id: 'asg-github',
        gatewayId: 'gw-eng',
        serverId: 'srv-github',
        containerId: null,
        disabled: false,
        identityScheme: 'shared',
        namespacePrefix: 'github',
        provisioning: { ...UNREVIEWED, tools: { mode: 'ALLOW_ALL' } },
      },
      {
        id: 'asg-docs',
        gatewayId: 'gw-eng',
        serverId: null,
        containerId: 'ctr-docs',
        disabled: false,
        identityScheme: 'shared',
        namespacePrefix: 'docs',
        provisioning: { ...UNREVIEWED, tools: { mode: 'ALLOW_ALL' } },
      },
    ],
    metadataOverrides: [],
    pins: [],
    identities: [{ id: 'idn-github-bot', disabled: false }],
    hosts: [{ id: 'host-ci', name: 'CI agent', disabled: false }],
    connections: [{ id: 'conn-ci-eng', hostId: 'host-ci', gatewayId: 'gw-eng', userId: 'usr-ada', disabled: false }],
    accessTokens: [{ id: 'tok-ci', connectionId: 'conn-ci-eng', tokenHash: hash('1'), expiresAt: null, revoked: false }],
    users: [{ id: 'usr-ada', state: 'active', disabled: false, teamIds: ['team-eng'] }],
    teams: [{ id: 'team-eng', disabled: false }],
  };
}
