import { describe, expect, it } from 'vitest';
import { SnapshotCompileError, compileGatewaySnapshot, compileGatewaySnapshotWithDiagnostics } from '../../../control-plane/snapshot/compile.js';
import type { SnapshotSource } from '../../../control-plane/snapshot/source.js';
import { parseGatewaySnapshot } from '../../../schema/snapshot/index.js';
import { discovered, richSource } from './fixtures.js';

const OPTIONS = { version: 1, generatedAt: '2025-06-01T12:00:00.000Z' };

function compileError(source: SnapshotSource): SnapshotCompileError {
  try {
    compileGatewaySnapshot(source, OPTIONS);
  } catch (err) {
    expect(err).toBeInstanceOf(SnapshotCompileError);
    return err as SnapshotCompileError;
  }
  throw new Error('expected a SnapshotCompileError');
}

describe('compileGatewaySnapshot', () => {
  it('is deterministic and independent of row order', () => {
    const source = richSource();
    const shuffled: SnapshotSource = {
      ...source,
      servers: [...source.servers].reverse(),
      discoveredFeatures: [...source.discoveredFeatures].reverse(),
      assignments: [...source.assignments].reverse(),
      containerMembers: [...source.containerMembers].reverse(),
    };
    expect(JSON.stringify(compileGatewaySnapshot(shuffled, OPTIONS))).toBe(JSON.stringify(compileGatewaySnapshot(source, OPTIONS)));
  });

  it('does not modify its input', () => {
    const source = richSource();
    const before = JSON.stringify(source);
    compileGatewaySnapshot(source, OPTIONS);
    expect(JSON.stringify(source)).toBe(before);
  });

  it('never copies extra row fields into the snapshot', () => {
    const source = richSource();
    const server = { ...source.servers[0]!, upstream: { ...source.servers[0]!.upstream, internalNote: 'x' } } as unknown as SnapshotSource['servers'][number];
    const snapshot = compileGatewaySnapshot({ ...source, servers: [server, ...source.servers.slice(1)] }, OPTIONS);
    expect(JSON.stringify(snapshot)).not.toContain('internalNote');
    expect(() => parseGatewaySnapshot(JSON.parse(JSON.stringify(snapshot)))).not.toThrow();
  });

  it('withholds every feature of a colliding name and reports the collision, naming both claimants', () => {
    const source = richSource();
    const { snapshot, diagnostics } = compileGatewaySnapshotWithDiagnostics(
      {
        ...source,
        discoveredFeatures: [...source.discoveredFeatures, discovered('srv-files', 'tools', 'search', 'f')],
        assignments: source.assignments.map((a) => ({ ...a, namespacePrefix: '' })),
      },
      OPTIONS,
    );
    expect(diagnostics).toEqual([
      expect.objectContaining({
        code: 'FEATURE_NAME_COLLISION',
        gatewaySlug: 'eng',
        featureType: 'tools',
        name: 'search',
        features: [
          { assignmentId: 'asg-docs', serverId: 'srv-files', upstreamName: 'search' },
          { assignmentId: 'asg-docs', serverId: 'srv-search', upstreamName: 'search' },
        ],
      }),
    ]);
    expect(diagnostics[0]!.message).toMatch(/tool `search` is exposed twice on gateway `eng`/);
    const claimants = snapshot.gateways[0]!.assignments.flatMap((a) => a.features.tools.filter((f) => f.name === 'search'));
    expect(claimants).toHaveLength(2);
    for (const feature of claimants) expect(feature.withheld).toBe('NAME_COLLISION');
    // The rest still publishes, and a data plane accepts it.
    expect(() => parseGatewaySnapshot(JSON.parse(JSON.stringify(snapshot)))).not.toThrow();
  });

  it('detects names that collide only after namespacing', () => {
    const source = richSource();
    const { diagnostics } = compileGatewaySnapshotWithDiagnostics(
      {
        ...source,
        discoveredFeatures: [...source.discoveredFeatures, discovered('srv-github', 'tools', 'docs__read_file', 'f')],
        assignments: source.assignments.map((a) => (a.id === 'asg-github' ? { ...a, namespacePrefix: '' } : a)),
      },
      OPTIONS,
    );
    expect(diagnostics[0]).toMatchObject({ code: 'FEATURE_NAME_COLLISION', name: 'docs__read_file' });
  });

  it('does not treat the same name on two gateways, or in two feature types, as a collision', () => {
    const source = richSource();
    const snapshot = compileGatewaySnapshot(
      {
        ...source,
        gateways: [...source.gateways, { id: 'gw-ops', slug: 'ops', name: 'Ops', archived: false, disabled: false }],
        discoveredFeatures: [...source.discoveredFeatures, discovered('srv-github', 'prompts', 'list_issues', 'f')],
        assignments: [
          ...source.assignments.map((a) => (a.id === 'asg-github' ? { ...a, provisioning: { ...a.provisioning, prompts: { mode: 'ALLOW_ALL' as const } } } : a)),
          { ...source.assignments[0]!, id: 'asg-github-ops', gatewayId: 'gw-ops' },
        ],
      },
      OPTIONS,
    );
    expect(snapshot.gateways.map((g) => g.slug)).toEqual(['eng', 'ops']);
  });

  it('rejects duplicate slugs, assignments with no target and malformed token hashes', () => {
    const source = richSource();
    const err = compileError({
      ...source,
      gateways: [...source.gateways, { id: 'gw-2', slug: 'eng', name: 'Again', archived: false, disabled: false }],
      assignments: [...source.assignments, { ...source.assignments[0]!, id: 'asg-none', serverId: null, containerId: null }],
      accessTokens: [...source.accessTokens, { id: 'tok-bad', connectionId: 'conn-ci-eng', tokenHash: 'NOT-A-HASH', expiresAt: null, revoked: false }],
    });
    expect(err.problems.map((p) => p.code).sort()).toEqual(['DUPLICATE', 'INVALID_ROW', 'INVALID_ROW']);
  });

  it('refuses an invalid version or date', () => {
    expect(() => compileGatewaySnapshot(richSource(), { version: 0, generatedAt: OPTIONS.generatedAt })).toThrow(RangeError);
    expect(() => compileGatewaySnapshot(richSource(), { version: 1, generatedAt: 'yesterday' })).toThrow(RangeError);
  });

  it('compiles a large workspace linearly (sanity, not timed)', () => {
    const base = richSource();
    const servers = [];
    const discoveredFeatures = [];
    const gateways = [];
    const assignments = [];
    for (let g = 0; g < 100; g++) {
      gateways.push({ id: `gw-${g}`, slug: `g${g}`, name: `G${g}`, archived: false, disabled: false });
      for (let a = 0; a < 10; a++) {
        const serverId = `srv-${g}-${a}`;
        servers.push({ ...base.servers[2]!, id: serverId });
        for (let t = 0; t < 50; t++) discoveredFeatures.push(discovered(serverId, 'tools', `tool_${t}`, 'a'));
        assignments.push({ ...base.assignments[0]!, id: `asg-${g}-${a}`, gatewayId: `gw-${g}`, serverId, namespacePrefix: `s${a}` });
      }
    }
    const snapshot = compileGatewaySnapshot(
      { ...base, servers, discoveredFeatures, gateways, assignments, containers: [], containerMembers: [], connections: [], accessTokens: [], gatewayTeams: [] },
      OPTIONS,
    );
    const exposed = snapshot.gateways.reduce((n, g) => n + g.assignments.reduce((m, a) => m + a.features.tools.length, 0), 0);
    expect(exposed).toBe(100 * 10 * 50);
    expect(() => parseGatewaySnapshot(JSON.parse(JSON.stringify(snapshot)))).not.toThrow();
  });
});
