import { describe, expect, it } from 'vitest';
import { SnapshotRejectedError } from '../../../schema/snapshot/index.js';
import { acceptSnapshot, compileSnapshotIndexes, templatePattern } from '../../../data-plane/snapshot/compiled-snapshot.js';
import { InMemorySnapshotSource } from '../../../data-plane/snapshot/snapshot-source.js';
import { TOKENS, fixtureSnapshot, sha256 } from './fixtures.js';

describe('compileSnapshotIndexes', () => {
  const compiled = compileSnapshotIndexes(fixtureSnapshot());

  it('indexes gateways by slug and tokens by hash, with their references resolved', () => {
    expect([...compiled.gatewaysBySlug.keys()]).toEqual(['eng', 'ops']);
    const grant = compiled.tokensByHash.get(sha256(TOKENS.eng));
    expect(grant).toMatchObject({ connectionId: 'conn-eng', userId: 'usr-ada', gateway: { slug: 'eng' }, host: { name: 'Claude Code' }, expiresAtMs: null });
    expect(compiled.tokensByHash.get(sha256(TOKENS.expiring))?.expiresAtMs).toBe(Date.parse('2030-01-01T00:00:00.000Z'));
    expect(compiled.tokensByHash.has(sha256('gh_at_nope'))).toBe(false);
  });

  it('maps exposed names to their entry, upstream name, overrides and pin state', () => {
    const eng = compiled.gatewaysBySlug.get('eng')!;
    expect([...eng.features.tools.keys()].sort()).toEqual(['dead__echo', 'local__echo', 'web__echo', 'web__get-sum']);
    const echo = eng.features.tools.get('web__echo')!;
    expect(echo.entry.assignment.id).toBe('asg-http');
    expect(echo.feature.upstreamName).toBe('echo');
    expect(echo.feature.overrides?.description).toEqual({ action: 'replace', value: 'Echoes a message (through Gatehouse)' });
    expect(eng.features.tools.get('web__get-sum')!.feature.withheld).toBe('PIN_MISMATCH');
    // Not provisioned (ALLOW_SELECTED left it out): absent.
    expect(eng.features.tools.has('web__get-env')).toBe(false);
    expect(echo.entry.byUpstreamName.tools.get('echo')).toBe(echo.feature);
  });

  it('gives each entry a stable upstream key that changes with how the upstream is reached', () => {
    const again = compileSnapshotIndexes(fixtureSnapshot({}, 2));
    const key = (c: typeof compiled) => c.gatewaysBySlug.get('eng')!.entries.find((e) => e.assignment.id === 'asg-http')!.upstreamKey;
    expect(key(again)).toBe(key(compiled));
    const moved = compileSnapshotIndexes(
      fixtureSnapshot({ httpUpstream: { kind: 'remote', url: 'http://127.0.0.1:9/mcp', transport: 'streamable-http', allowInsecure: false } }),
    );
    expect(key(moved)).not.toBe(key(compiled));
    expect(key(compiled)).toMatch(/^asg-http\/srv-http\/[0-9a-f]{16}$/);
  });

  it('computes per user the gateways an enabled team of theirs reaches', () => {
    expect([...compiled.gatewaysByUser.get('usr-ada')!].sort()).toEqual(['gw-eng', 'gw-ops']);
    expect(compiled.gatewaysByUser.get('usr-bob')!.size).toBe(0);
  });

  it('matches URIs expanding a resource template, and cuts the namespace off', () => {
    const eng = compiled.gatewaysBySlug.get('eng')!;
    const [matcher] = eng.templateMatchers;
    expect(matcher!.pattern.test('web+demo://resource/dynamic/text/7')).toBe(true);
    expect(matcher!.pattern.test('demo://resource/dynamic/text/7')).toBe(false);
    expect('web+demo://resource/dynamic/text/7'.slice(matcher!.prefixLength)).toBe('demo://resource/dynamic/text/7');
    expect(templatePattern('a.b/{x}/c').test('a.b/1/c')).toBe(true);
    expect(templatePattern('a.b/{x}/c').test('aXb/1/c')).toBe(false);
  });

  it('is frozen, down to the validated snapshot', () => {
    const accepted = acceptSnapshot(undefined, fixtureSnapshot());
    expect(Object.isFrozen(accepted)).toBe(true);
    expect(Object.isFrozen(accepted.snapshot.gateways[0]!.assignments)).toBe(true);
    expect(Object.isFrozen(accepted.gatewaysBySlug.get('eng'))).toBe(true);
  });
});

describe('InMemorySnapshotSource', () => {
  it('accepts a valid snapshot, swaps it in and tells listeners', () => {
    const source = new InMemorySnapshotSource();
    expect(source.current()).toBeUndefined();
    const seen: number[] = [];
    source.onChange((next) => seen.push(next.version));
    source.offer(fixtureSnapshot({}, 1));
    source.offer(fixtureSnapshot({}, 2));
    expect(source.current()?.version).toBe(2);
    expect(seen).toEqual([1, 2]);
  });

  it('rejects a stale or tampered snapshot with a stable code and keeps serving the one it holds', () => {
    const source = new InMemorySnapshotSource();
    source.offer(fixtureSnapshot({}, 3));
    expect(() => source.offer(fixtureSnapshot({}, 3))).toThrow(expect.objectContaining({ code: 'STALE_VERSION' }));
    const tampered = structuredClone(fixtureSnapshot({}, 4)) as { workspace: { name: string } };
    tampered.workspace.name = 'Evil';
    expect(() => source.offer(tampered)).toThrow(SnapshotRejectedError);
    expect(() => source.offer({ formatVersion: 2 })).toThrow(expect.objectContaining({ code: 'UNSUPPORTED_FORMAT' }));
    expect(source.current()?.version).toBe(3);
    expect(source.current()?.snapshot.workspace.name).toBe('Acme');
  });

  it('acceptSnapshot refuses a snapshot of another workspace', () => {
    const held = acceptSnapshot(undefined, fixtureSnapshot({}, 1));
    const other = fixtureSnapshot({ tweak: (s) => (s.workspace = { ...s.workspace, id: 'ws-other', name: 'Other' }) }, 2);
    expect(() => acceptSnapshot(held, other)).toThrow(expect.objectContaining({ code: 'INVALID' }));
  });
});
