/**
 * Snapshot compiler benchmark: a workspace of 1,000 gateways × 10 assignments × 50
 * tools (every tool provisioned, so 500,000 exposed features), compiled, validated as a
 * data plane would, and encoded. Target (issue [snapshot]): compile ≤ 1 s.
 *
 *   npx tsx test/bench/snapshot-compile.ts
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { compileGatewaySnapshot } from '../../control-plane/snapshot/compile.js';
import type { SnapshotSource, SourceAssignment, SourceDiscoveredFeature } from '../../control-plane/snapshot/source.js';
import { parseGatewaySnapshot, type EncryptedSecret } from '../../schema/snapshot/index.js';

const GATEWAYS = 1_000;
const ASSIGNMENTS_PER_GATEWAY = 10;
const TOOLS_PER_SERVER = 50;
const RUNS = 5;

function id(kind: string, n: number): string {
  return `${kind}-${String(n).padStart(8, '0')}`;
}

function hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

const secret: EncryptedSecret = {
  keyId: 'k1',
  alg: 'A256GCM',
  aad: 'server:bench:header:authorization',
  iv: 'AAAAAAAAAAAAAAAA',
  ciphertext: 'c2VjcmV0LXZhbHVlLWZvci1iZW5jaA==',
  tag: 'AAAAAAAAAAAAAAAAAAAAAA==',
};

function buildSource(): SnapshotSource {
  const servers: SnapshotSource['servers'][number][] = [];
  const discoveredFeatures: SourceDiscoveredFeature[] = [];
  const gateways: SnapshotSource['gateways'][number][] = [];
  const assignments: SourceAssignment[] = [];
  const pins: SnapshotSource['pins'][number][] = [];
  const toolNames = Array.from({ length: TOOLS_PER_SERVER }, (_, t) => `tool_number_${t}`);

  for (let g = 0; g < GATEWAYS; g++) {
    const gatewayId = id('gateway', g);
    gateways.push({ id: gatewayId, slug: `gw-${g}`, name: `Gateway ${g}`, archived: false, disabled: false });
    for (let a = 0; a < ASSIGNMENTS_PER_GATEWAY; a++) {
      const n = g * ASSIGNMENTS_PER_GATEWAY + a;
      const serverId = id('server', n);
      servers.push({
        id: serverId,
        name: `Server ${n}`,
        disabled: false,
        upstream: { kind: 'remote', url: `https://mcp-${n}.example.com/mcp`, transport: 'streamable-http', allowInsecure: false },
        auth: { kind: 'headers', identityId: id('identity', n), headers: [{ name: 'Authorization', value: secret }] },
      });
      for (const name of toolNames) {
        discoveredFeatures.push({ serverId, featureType: 'tools', name, contentHash: hex(`${serverId}/${name}`), flagged: false });
      }
      const assignmentId = id('assignment', n);
      const selected = a % 10 === 9;
      assignments.push({
        id: assignmentId,
        gatewayId,
        serverId,
        containerId: null,
        disabled: false,
        identityScheme: 'shared',
        namespacePrefix: `srv${a}`,
        provisioning: {
          tools: selected ? { mode: 'ALLOW_SELECTED', selected: toolNames } : { mode: 'ALLOW_ALL' },
          prompts: { mode: 'BLOCK_ALL' },
          resources: null,
          resourceTemplates: null,
        },
      });
      for (let t = 0; t < 5; t++) {
        pins.push({ assignmentId, featureType: 'tools', name: toolNames[t]!, approvedHash: hex(`${serverId}/${toolNames[t]}`) });
      }
    }
  }

  const teams = Array.from({ length: 50 }, (_, t) => ({ id: id('team', t), disabled: false }));
  const users = Array.from({ length: 2_000 }, (_, u) => ({
    id: id('user', u),
    state: 'active' as const,
    disabled: false,
    teamIds: [id('team', u % 50), id('team', (u * 7) % 50)],
  }));
  const hosts = Array.from({ length: GATEWAYS }, (_, h) => ({ id: id('host', h), name: `agent ${h}`, disabled: false }));
  const connections = hosts.map((host, h) => ({
    id: id('connection', h),
    hostId: host.id,
    gatewayId: id('gateway', h),
    userId: null,
    disabled: false,
  }));
  const accessTokens = connections.map((connection, c) => ({
    id: id('token', c),
    connectionId: connection.id,
    tokenHash: hex(`token-${c}`),
    expiresAt: null,
    revoked: false,
  }));

  return {
    workspace: { id: 'workspace-bench', name: 'Bench', disabled: false, ruleHashSalt: { keyId: 'k1', alg: 'A256GCM', aad: 'workspace:workspace-bench:rule-hash-salt', iv: 'bm9uY2Vub25jZTEy', ciphertext: 'c2FsdA==', tag: 'dGFndGFndGFndGFndGFnMQ==' } },
    servers,
    containers: [],
    containerMembers: [],
    discoveredFeatures,
    gateways,
    gatewayTeams: gateways.map((gateway, g) => ({ gatewayId: gateway.id, teamId: id('team', g % 50) })),
    assignments,
    metadataOverrides: [],
    pins,
    identities: servers.map((server, s) => ({ id: id('identity', s), disabled: false })),
    hosts,
    connections,
    accessTokens,
    users,
    teams,
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function time<T>(fn: () => T): [T, number] {
  const start = performance.now();
  const result = fn();
  return [result, performance.now() - start];
}

const source = buildSource();
const options = { version: 1, generatedAt: '2025-01-01T00:00:00.000Z' };

const compileTimes: number[] = [];
let snapshot = compileGatewaySnapshot(source, options);
for (let i = 0; i < RUNS; i++) {
  const [result, ms] = time(() => compileGatewaySnapshot(source, options));
  snapshot = result;
  compileTimes.push(ms);
}

const [json, encodeMs] = time(() => JSON.stringify(snapshot));
const validateTimes: number[] = [];
for (let i = 0; i < 3; i++) {
  const parsedJson: unknown = JSON.parse(json);
  validateTimes.push(time(() => parseGatewaySnapshot(parsedJson))[1]);
}
const bytes = Buffer.byteLength(json);
const gzipBytes = gzipSync(json).length;
const features = snapshot.gateways.reduce(
  (sum, gateway) => sum + gateway.assignments.reduce((s, a) => s + a.features.tools.length, 0),
  0,
);

const rows: [string, string][] = [
  ['workspace', `${GATEWAYS} gateways × ${ASSIGNMENTS_PER_GATEWAY} assignments × ${TOOLS_PER_SERVER} tools`],
  ['exposed tools', features.toLocaleString('en-US')],
  [`compile ms (median of ${RUNS})`, median(compileTimes).toFixed(0)],
  ['compile ms (all runs)', compileTimes.map((t) => t.toFixed(0)).join(', ')],
  ['validate ms (median of 3, incl. hash check)', median(validateTimes).toFixed(0)],
  ['JSON.stringify ms', encodeMs.toFixed(0)],
  ['encoded JSON bytes', `${bytes.toLocaleString('en-US')} (${(bytes / 1024 / 1024).toFixed(1)} MiB)`],
  ['gzip bytes', `${gzipBytes.toLocaleString('en-US')} (${(gzipBytes / 1024 / 1024).toFixed(1)} MiB)`],
];
const width = Math.max(...rows.map(([k]) => k.length));
for (const [key, value] of rows) console.log(`${key.padEnd(width)}  ${value}`);
