/**
 * A one-gateway workspace fronting live MCP servers, compiled in-process with the control
 * plane's own compiler (as `test/integration/data-plane/gateway.test.ts` does): every
 * feature the upstreams list is discovered and provisioned with ALLOW_ALL, under the
 * given namespace prefix (empty for the conformance suite, which expects upstream names).
 */
import { createHash } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { compileGatewaySnapshot } from '../../control-plane/snapshot/compile.js';
import type { SnapshotSource, SourceDiscoveredFeature } from '../../control-plane/snapshot/source.js';
import type { FeatureType, GatewaySnapshot } from '../../schema/snapshot/index.js';

export const GATEWAY_SLUG = 'conf';
export const ACCESS_TOKEN = 'gh_at_conformance-token-00000000000000000000000000';

export interface FixtureUpstream {
  /** Streamable HTTP URL of the running server. */
  readonly url: string;
  readonly prefix: string;
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** Lists everything a server offers, as discovery would record it. */
export async function discover(url: string): Promise<{ featureType: FeatureType; name: string }[]> {
  const client = new Client({ name: 'discovery', version: '1' });
  const transport = new StreamableHTTPClientTransport(new URL(url));
  await client.connect(transport);
  try {
    const caps = client.getServerCapabilities() ?? {};
    const found: { featureType: FeatureType; name: string }[] = [];
    if (caps.tools) for (const tool of (await client.listTools()).tools) found.push({ featureType: 'tools', name: tool.name });
    if (caps.prompts) for (const prompt of (await client.listPrompts()).prompts) found.push({ featureType: 'prompts', name: prompt.name });
    if (caps.resources) {
      for (const resource of (await client.listResources()).resources) found.push({ featureType: 'resources', name: resource.uri });
      for (const template of (await client.listResourceTemplates()).resourceTemplates) found.push({ featureType: 'resourceTemplates', name: template.uriTemplate });
    }
    return found;
  } finally {
    await transport.terminateSession().catch(() => undefined);
    await client.close();
  }
}

/** Compiles the workspace: gateway `conf`, one ALLOW_ALL assignment per upstream, token {@link ACCESS_TOKEN}. */
export async function gatewaySnapshot(
  upstreams: readonly FixtureUpstream[],
  version = 1,
  options: { readonly audit?: SnapshotSource['gateways'][number]['audit'] } = {},
): Promise<GatewaySnapshot> {
  const all = { mode: 'ALLOW_ALL' } as const;
  const discovered: SourceDiscoveredFeature[] = [];
  for (const [i, upstream] of upstreams.entries()) {
    for (const feature of await discover(upstream.url)) {
      discovered.push({ serverId: `srv-${i}`, ...feature, contentHash: 'a'.repeat(64), flagged: false });
    }
  }
  const source: SnapshotSource = {
    workspace: { id: 'ws-conf', name: 'Conformance', disabled: false, ruleHashSalt: { keyId: 'k1', alg: 'A256GCM', aad: 'workspace:ws-conf:rule-hash-salt', iv: 'bm9uY2Vub25jZTEy', ciphertext: 'c2FsdA==', tag: 'dGFndGFndGFndGFndGFnMQ==' } },
    servers: upstreams.map((upstream, i) => ({
      id: `srv-${i}`,
      name: `Fixture ${i}`,
      disabled: false,
      upstream: { kind: 'remote', url: upstream.url, transport: 'streamable-http', allowInsecure: false },
      auth: { kind: 'none' },
    })),
    containers: [],
    containerMembers: [],
    discoveredFeatures: discovered,
    gateways: [{ id: 'gw-conf', slug: GATEWAY_SLUG, name: 'Conformance', archived: false, disabled: false, ...(options.audit ? { audit: options.audit } : {}) }],
    gatewayTeams: [{ gatewayId: 'gw-conf', teamId: 'team-conf' }],
    assignments: upstreams.map((upstream, i) => ({
      id: `asg-${i}`,
      gatewayId: 'gw-conf',
      serverId: `srv-${i}`,
      containerId: null,
      disabled: false,
      identityScheme: 'shared',
      namespacePrefix: upstream.prefix,
      provisioning: { tools: all, prompts: all, resources: all, resourceTemplates: all },
    })),
    metadataOverrides: [],
    pins: [],
    identities: [],
    hosts: [{ id: 'host-conf', name: 'Conformance suite', disabled: false }],
    connections: [{ id: 'conn-conf', hostId: 'host-conf', gatewayId: 'gw-conf', userId: 'usr-conf', disabled: false }],
    accessTokens: [{ id: 'tok-conf', connectionId: 'conn-conf', tokenHash: sha256(ACCESS_TOKEN), expiresAt: null, revoked: false }],
    users: [{ id: 'usr-conf', state: 'active', disabled: false, teamIds: ['team-conf'] }],
    teams: [{ id: 'team-conf', disabled: false }],
  };
  return compileGatewaySnapshot(source, { version, generatedAt: '2026-01-01T00:00:00.000Z' });
}
