import { describe, expect, it } from 'vitest';
import { admitRequest } from '../../../data-plane/policy/admit.js';
import { authenticate } from '../../../data-plane/policy/authenticate.js';
import { authorize } from '../../../data-plane/policy/authorize.js';
import { enforceKillSwitches } from '../../../data-plane/policy/kill-switches.js';
import { resolveFeature, resolveResource } from '../../../data-plane/policy/provisioning.js';
import type { Refusal, StageResult } from '../../../data-plane/policy/refusal.js';
import { acceptSnapshot, type CompiledSnapshot } from '../../../data-plane/snapshot/compiled-snapshot.js';
import { TOKENS, fixtureSnapshot, type FixtureOptions } from './fixtures.js';

const NOW = Date.parse('2026-06-01T00:00:00.000Z');

function compiled(options: FixtureOptions = {}): CompiledSnapshot {
  return acceptSnapshot(undefined, fixtureSnapshot(options));
}

function refusal<T>(result: StageResult<T>): Refusal {
  if (result.ok) throw new Error('expected a refusal');
  return result;
}

function admit(token: string | undefined, options: FixtureOptions = {}, slug = 'eng', now = NOW) {
  return admitRequest({ compiled: compiled(options), gatewaySlug: slug, authorization: token === undefined ? undefined : `Bearer ${token}`, now });
}

describe('authenticate', () => {
  const snapshot = compiled();

  it('finds the grant of a known token', () => {
    const result = authenticate(snapshot, `Bearer ${TOKENS.eng}`, NOW);
    expect(result.ok && result.value.grant.connectionId).toBe('conn-eng');
  });

  it('answers 401 with a Bearer challenge when the token is missing, malformed, foreign, unknown or expired', () => {
    const missing = refusal(authenticate(snapshot, undefined, NOW));
    expect(missing).toMatchObject({ status: 401, code: 'UNAUTHENTICATED', headers: { 'www-authenticate': 'Bearer realm="gatehouse"' } });
    expect(refusal(authenticate(snapshot, 'Basic abc', NOW)).headers?.['www-authenticate']).toContain('error="invalid_request"');
    expect(refusal(authenticate(snapshot, 'Bearer eyJhbGciOi.x.y', NOW)).message).toContain('not a Gatehouse API access token');
    const unknown = refusal(authenticate(snapshot, 'Bearer gh_at_unknown', NOW));
    expect(unknown.message).toContain('unknown or was revoked');
    expect(unknown.headers?.['www-authenticate']).toContain('error="invalid_token"');
    expect(authenticate(snapshot, `Bearer ${TOKENS.expiring}`, NOW).ok).toBe(true);
    const expired = refusal(authenticate(snapshot, `Bearer ${TOKENS.expiring}`, Date.parse('2030-01-01T00:00:00.000Z')));
    expect(expired.message).toContain('expired at 2030-01-01T00:00:00.000Z');
  });
});

describe('enforceKillSwitches', () => {
  const check = (token: string, options: FixtureOptions = {}) => {
    const snapshot = compiled(options);
    const principal = authenticate(snapshot, `Bearer ${token}`, NOW);
    if (!principal.ok) throw new Error(principal.message);
    return enforceKillSwitches(snapshot, snapshot.gatewaysBySlug.get('eng')!, principal.value);
  };

  it('passes when nothing is switched off', () => {
    expect(check(TOKENS.eng).ok).toBe(true);
  });

  it.each([
    ['workspace', (s: Parameters<NonNullable<FixtureOptions['tweak']>>[0]) => (s.workspace = { ...s.workspace, disabled: true }), 'workspace "Acme" is switched off'],
    ['gateway', (s: Parameters<NonNullable<FixtureOptions['tweak']>>[0]) => (s.gateways = s.gateways.map((g) => ({ ...g, disabled: true }))), 'gateway "eng" is switched off'],
    ['gateway', (s: Parameters<NonNullable<FixtureOptions['tweak']>>[0]) => (s.gateways = s.gateways.map((g) => ({ ...g, archived: true }))), 'gateway "eng" is archived'],
    ['host', (s: Parameters<NonNullable<FixtureOptions['tweak']>>[0]) => (s.hosts = s.hosts.map((h) => ({ ...h, disabled: true }))), 'host "Claude Code" is switched off'],
    ['user', (s: Parameters<NonNullable<FixtureOptions['tweak']>>[0]) => (s.users = s.users.map((u) => ({ ...u, disabled: true }))), 'user usr-ada is switched off'],
    ['user', (s: Parameters<NonNullable<FixtureOptions['tweak']>>[0]) => (s.users = s.users.map((u) => ({ ...u, state: 'deactivated' as const }))), 'user usr-ada is deactivated'],
  ])('refuses with 403 naming the %s', (level, tweak, message) => {
    const result = refusal(check(TOKENS.eng, { tweak }));
    expect(result).toMatchObject({ status: 403, code: 'DISABLED', detail: { level } });
    expect(result.message).toContain(message);
  });

  it('refuses a switched-off connection', () => {
    expect(refusal(check(TOKENS.off))).toMatchObject({ status: 403, code: 'DISABLED', detail: { level: 'connection' } });
  });
});

describe('authorize', () => {
  const check = (token: string, slug: string, options: FixtureOptions = {}) => {
    const snapshot = compiled(options);
    const principal = authenticate(snapshot, `Bearer ${token}`, NOW);
    if (!principal.ok) throw new Error(principal.message);
    return authorize(snapshot, snapshot.gatewaysBySlug.get(slug)!, principal.value);
  };

  it('passes a user in a team provisioned to the gateway, and a machine connection of the gateway', () => {
    expect(check(TOKENS.eng, 'eng').ok).toBe(true);
    expect(check(TOKENS.machine, 'eng').ok).toBe(true);
  });

  it("refuses a token used on another gateway than its connection's", () => {
    expect(refusal(check(TOKENS.ops, 'eng')).message).toBe('this access token belongs to a connection for gateway "ops", not gateway "eng"');
  });

  it('refuses a user in no team provisioned to the gateway, or whose team is disabled', () => {
    expect(refusal(check(TOKENS.bob, 'eng')).message).toContain('user usr-bob is not in an enabled team provisioned to gateway "eng"');
    const teamOff = refusal(check(TOKENS.eng, 'eng', { tweak: (s) => (s.teams = s.teams.map((t) => ({ ...t, disabled: true }))) }));
    expect(teamOff).toMatchObject({ status: 403, code: 'FORBIDDEN' });
  });

  it('refuses an invited user', () => {
    const invited = refusal(check(TOKENS.eng, 'eng', { tweak: (s) => (s.users = s.users.map((u) => ({ ...u, state: 'invited' as const }))) }));
    expect(invited.message).toContain('user usr-ada is invited, not active');
  });
});

describe('admitRequest', () => {
  it('fails closed with 503 when no snapshot is held', () => {
    const result = refusal(admitRequest({ compiled: undefined, gatewaySlug: 'eng', authorization: `Bearer ${TOKENS.eng}`, now: NOW }));
    expect(result).toMatchObject({ status: 503, code: 'SNAPSHOT_UNAVAILABLE' });
    expect(result.message).toContain('has not received a gateway snapshot');
  });

  it('authenticates before revealing whether a gateway exists', () => {
    expect(refusal(admit(undefined, {}, 'nope')).status).toBe(401);
    expect(refusal(admit(TOKENS.eng, {}, 'nope'))).toMatchObject({ status: 404, code: 'GATEWAY_NOT_FOUND' });
  });

  it('runs kill switches before authorization', () => {
    const result = refusal(admit(TOKENS.ops, { tweak: (s) => (s.gateways = s.gateways.map((g) => ({ ...g, disabled: true }))) }));
    expect(result.code).toBe('DISABLED');
  });

  it('admits a good call with the gateway and principal', () => {
    const result = admit(TOKENS.eng);
    expect(result.ok && result.value.gateway.gateway.slug).toBe('eng');
  });
});

describe('resolveFeature / resolveResource', () => {
  const eng = compiled().gatewaysBySlug.get('eng')!;

  it('routes a served feature to its entry with the upstream name', () => {
    const result = resolveFeature(eng, 'tools', 'web__echo');
    expect(result.ok && [result.value.exposed.entry.assignment.id, result.value.upstreamName]).toEqual(['asg-http', 'echo']);
  });

  it('names why a feature is refused: not provisioned, withheld, or live pin mismatch', () => {
    expect(refusal(resolveFeature(eng, 'tools', 'web__get-env')).message).toBe('tool "web__get-env" is not provisioned on gateway "eng"');
    const withheld = refusal(resolveFeature(eng, 'tools', 'web__get-sum'));
    expect(withheld).toMatchObject({ code: 'WITHHELD', rpcCode: -32602, detail: { reason: 'PIN_MISMATCH' } });
    expect(withheld.message).toContain('tool "web__get-sum" is withheld on gateway "eng": its definition changed since it was pinned');
    expect(refusal(resolveFeature(eng, 'tools', 'web__echo', () => true)).detail).toEqual({ reason: 'PIN_MISMATCH' });
    expect(refusal(resolveFeature(eng, 'prompts', 'web__nothing')).message).toBe('prompt "web__nothing" is not provisioned on gateway "eng"');
  });

  it('refuses a feature whose assignment is switched off, naming the server', () => {
    const off = compiled({ tweak: (s) => (s.assignments = s.assignments.map((a) => ({ ...a, disabled: true }))) }).gatewaysBySlug.get('eng')!;
    const result = refusal(resolveFeature(off, 'tools', 'web__echo'));
    expect(result).toMatchObject({ code: 'DISABLED' });
    expect(result.message).toContain('server "Everything (HTTP)" on gateway "eng" is switched off (assignment)');
  });

  it('routes resources by exact URI, then by template, translating the URI back', () => {
    const exact = resolveResource(eng, 'web+demo://resource/static/document/architecture.md');
    expect(exact.ok && exact.value.upstreamName).toBe('demo://resource/static/document/architecture.md');
    const templated = resolveResource(eng, 'web+demo://resource/dynamic/text/3');
    expect(templated.ok && templated.value.upstreamName).toBe('demo://resource/dynamic/text/3');
    expect(refusal(resolveResource(eng, 'demo://resource/dynamic/text/3')).code).toBe('NOT_PROVISIONED');
  });
});
