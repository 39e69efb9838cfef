import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditCall, insertAuditEntries } from '../../helpers/audit-rows.js';
import { createWorkspaceWithOwner, keyWithRole, ok, startTestControlPlane, type TestControlPlane } from '../../helpers/control-plane.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { createAuditWorld, type AuditWorld } from './fixture.js';

let tdb: TestDatabase;
let cp: TestControlPlane;
let w: AuditWorld;
let auditorKey: string;
let memberKey: string;
let soloTeam: string;

const D0 = Date.parse('2025-04-01T00:00:00.000Z');
const H = 3_600_000;
const at = (hours: number) => new Date(D0 + hours * H);
const WINDOW = { from: at(0).toISOString(), to: at(72).toISOString() };

const REPORT = `query($input: AuditReportInput, $top: Int) { auditReport(input: $input) {
  from to bucket timeZone
  callsOverTime { bucket calls errors blocked }
  tokensOverTime { bucket inputTokens outputTokens }
  errorRate { calls errors blocked errorRate blockedRate buckets { calls } }
  featureCalls(top: $top) { featureName calls errors blocked }
  latencyByFeature(top: $top) { featureName calls p50Ms p95Ms avgMs maxMs }
  serverPopularity(top: $top) { serverId calls distinctUsers share }
  usageByUser(top: $top) { userId calls errors blocked inputTokens outputTokens }
  usageByTeam(top: $top) { teamId calls errors blocked inputTokens outputTokens }
  usageByServer(top: $top) { serverId calls errors blocked inputTokens outputTokens }
} }`;

beforeAll(async () => {
  tdb = await createTestDatabase();
  cp = await startTestControlPlane(tdb.database);
  w = await createAuditWorld(cp);
  [auditorKey, memberKey] = [await keyWithRole(cp, 'Read-only auditor'), await keyWithRole(cp, 'Member')];
  // A second team with Bob only, so a user in two teams counts in both.
  const team = ok(await cp.gql(`mutation { createTeam(input: { name: "solo" }) { ... on CreateTeamSuccess { team { id } } } }`)).createTeam.team.id;
  ok(await cp.gql(`mutation($t: ID!, $u: [ID!]!) { addTeamMembers(teamId: $t, userIds: $u) { __typename } }`, { t: team, u: [w.bob.gid] }));
  soloTeam = team;

  const ws = cp.workspaceId;
  const A = w.server.id;
  const B = w.otherServer.id;
  const G = w.gateway.id;
  const entries = [
    // Day 0 (UTC)
    auditCall({ workspaceId: ws, at: at(2), gatewayId: G, serverId: A, userId: w.alice.id, feature: 'echo', durationMs: 10, inputTokens: 100, outputTokens: 200 }),
    auditCall({ workspaceId: ws, at: at(10), gatewayId: G, serverId: A, userId: w.alice.id, feature: 'echo', status: 'error', durationMs: 30, inputTokens: 50 }),
    auditCall({ workspaceId: ws, at: at(12), gatewayId: G, serverId: B, userId: w.bob.id, feature: 'search', durationMs: 20, inputTokens: 10, outputTokens: 40 }),
    // Day 1: nothing. Day 2:
    auditCall({ workspaceId: ws, at: at(50), gatewayId: G, serverId: A, userId: w.carol.id, feature: 'echo', status: 'blocked', durationMs: 5, inputTokens: 7 }),
    auditCall({ workspaceId: ws, at: at(51), gatewayId: w.otherGateway.id, serverId: B, userId: null, feature: 'search', durationMs: 40, inputTokens: 1, outputTokens: 2 }),
    auditCall({ workspaceId: ws, at: at(52), gatewayId: G, serverId: null, userId: w.bob.id, method: 'initialize', feature: null, durationMs: 2, upstream: false }),
    // Outside the window: an hour before, and exactly at `to` (half-open).
    auditCall({ workspaceId: ws, at: at(-1), gatewayId: G, serverId: A, userId: w.alice.id, feature: 'echo', inputTokens: 1000 }),
    auditCall({ workspaceId: ws, at: at(72), gatewayId: G, serverId: A, userId: w.alice.id, feature: 'echo', inputTokens: 1000 }),
  ];
  await insertAuditEntries(tdb.database.db, entries.flat());
  const other = await createWorkspaceWithOwner(tdb.database, 'other-reports');
  await insertAuditEntries(tdb.database.db, auditCall({ workspaceId: other.workspaceId, at: at(5), serverId: A, userId: w.alice.id, feature: 'echo', inputTokens: 999 }));
});

afterAll(async () => {
  await cp?.close();
  await tdb?.drop();
});

const byKey = <T extends Record<string, unknown>>(rows: T[], key: keyof T) => [...rows].sort((a, b) => String(a[key]).localeCompare(String(b[key])));

describe('auditReport on a known dataset', () => {
  it('computes every report exactly (a call counts once; tokens from the client legs)', async () => {
    const r = ok(await cp.gql(REPORT, { input: { ...WINDOW, bucket: 'DAY' }, top: 10 }, auditorKey)).auditReport;
    expect(r).toMatchObject({ from: WINDOW.from, to: WINDOW.to, bucket: 'DAY', timeZone: 'UTC' });
    expect(r.callsOverTime).toEqual([
      { bucket: at(0).toISOString(), calls: 3, errors: 1, blocked: 0 },
      { bucket: at(24).toISOString(), calls: 0, errors: 0, blocked: 0 },
      { bucket: at(48).toISOString(), calls: 3, errors: 0, blocked: 1 },
    ]);
    expect(r.tokensOverTime).toEqual([
      { bucket: at(0).toISOString(), inputTokens: 160, outputTokens: 240 },
      { bucket: at(24).toISOString(), inputTokens: 0, outputTokens: 0 },
      { bucket: at(48).toISOString(), inputTokens: 8, outputTokens: 2 },
    ]);
    expect(r.errorRate).toEqual({ calls: 6, errors: 1, blocked: 1, errorRate: 1 / 6, blockedRate: 1 / 6, buckets: [{ calls: 3 }, { calls: 0 }, { calls: 3 }] });
    expect(r.featureCalls).toEqual([
      { featureName: 'echo', calls: 3, errors: 1, blocked: 1 },
      { featureName: 'search', calls: 2, errors: 0, blocked: 0 },
    ]);
    // percentile_cont: echo [5, 10, 30] → p50 10, p95 10 + 0.9 × 20 = 28; search [20, 40] → p50 30, p95 39.
    expect(r.latencyByFeature).toEqual([
      { featureName: 'echo', calls: 3, p50Ms: 10, p95Ms: 28, avgMs: 15, maxMs: 30 },
      { featureName: 'search', calls: 2, p50Ms: 30, p95Ms: 39, avgMs: 30, maxMs: 40 },
    ]);
    expect(r.serverPopularity).toEqual([
      { serverId: w.server.gid, calls: 3, distinctUsers: 2, share: 0.6 },
      { serverId: w.otherServer.gid, calls: 2, distinctUsers: 1, share: 0.4 },
    ]);
    expect(byKey(r.usageByUser, 'userId')).toEqual(
      byKey(
        [
          { userId: w.alice.gid, calls: 2, errors: 1, blocked: 0, inputTokens: 150, outputTokens: 200 },
          { userId: w.bob.gid, calls: 2, errors: 0, blocked: 0, inputTokens: 10, outputTokens: 40 },
          { userId: w.carol.gid, calls: 1, errors: 0, blocked: 1, inputTokens: 7, outputTokens: 0 },
          { userId: null, calls: 1, errors: 0, blocked: 0, inputTokens: 1, outputTokens: 2 },
        ],
        'userId',
      ),
    );
    expect(r.usageByUser[0].calls).toBe(2);
    expect(r.usageByUser.at(-1).userId).toBeNull(); // machine identities last among equals
    expect(r.usageByTeam).toEqual([
      { teamId: w.team.gid, calls: 4, errors: 1, blocked: 0, inputTokens: 160, outputTokens: 240 },
      { teamId: soloTeam, calls: 2, errors: 0, blocked: 0, inputTokens: 10, outputTokens: 40 },
    ]);
    expect(r.usageByServer).toEqual([
      { serverId: w.server.gid, calls: 3, errors: 1, blocked: 1, inputTokens: 157, outputTokens: 200 },
      { serverId: w.otherServer.gid, calls: 2, errors: 0, blocked: 0, inputTokens: 11, outputTokens: 42 },
      { serverId: null, calls: 1, errors: 0, blocked: 0, inputTokens: 0, outputTokens: 0 },
    ]);
  });

  it('limits to the top N and narrows to a gateway or a server', async () => {
    const top1 = ok(await cp.gql(`query($i: AuditReportInput) { auditReport(input: $i) { featureCalls(top: 1) { featureName } usageByServer(top: 1) { calls } } }`, { i: WINDOW })).auditReport;
    expect(top1).toEqual({ featureCalls: [{ featureName: 'echo' }], usageByServer: [{ calls: 3 }] });
    const gw = ok(await cp.gql(`query($i: AuditReportInput) { auditReport(input: $i) { errorRate { calls errors blocked } } }`, { i: { ...WINDOW, gatewayId: w.otherGateway.gid } })).auditReport;
    expect(gw.errorRate).toEqual({ calls: 1, errors: 0, blocked: 0 });
    const srv = ok(await cp.gql(`query($i: AuditReportInput) { auditReport(input: $i) { featureCalls { featureName calls } } }`, { i: { ...WINDOW, serverId: w.otherServer.gid } })).auditReport;
    expect(srv.featureCalls).toEqual([{ featureName: 'search', calls: 2 }]);
  });

  it('buckets by hour, continuous and zero-filled', async () => {
    const r = ok(await cp.gql(`query($i: AuditReportInput) { auditReport(input: $i) { callsOverTime { bucket calls } } }`, { i: { ...WINDOW, bucket: 'HOUR' } })).auditReport;
    expect(r.callsOverTime).toHaveLength(72);
    expect(r.callsOverTime.filter((b: any) => b.calls > 0)).toEqual([
      { bucket: at(2).toISOString(), calls: 1 },
      { bucket: at(10).toISOString(), calls: 1 },
      { bucket: at(12).toISOString(), calls: 1 },
      { bucket: at(50).toISOString(), calls: 1 },
      { bucket: at(51).toISOString(), calls: 1 },
      { bucket: at(52).toISOString(), calls: 1 },
    ]);
  });

  it('starts day buckets at midnight in the requested time zone', async () => {
    const r = ok(await cp.gql(`query($i: AuditReportInput) { auditReport(input: $i) { timeZone callsOverTime { bucket calls } } }`, { i: { ...WINDOW, timeZone: 'America/New_York' } })).auditReport;
    // 2025-04-01T00:00Z is 20:00 on 31 March in New York (EDT, UTC-4).
    expect(r.callsOverTime).toEqual([
      { bucket: '2025-03-31T04:00:00.000Z', calls: 1 },
      { bucket: '2025-04-01T04:00:00.000Z', calls: 2 },
      { bucket: '2025-04-02T04:00:00.000Z', calls: 2 },
      // 04:00Z on 3 April is midnight in New York: the initialize call opens the next day there.
      { bucket: '2025-04-03T04:00:00.000Z', calls: 1 },
    ]);
  });

  it('refuses a window over 31 days, a reversed one, an unknown time zone and a bad top', async () => {
    const cases: [Record<string, unknown>, string, string][] = [
      [{ from: at(0).toISOString(), to: at(32 * 24).toISOString() }, '{ errorRate { calls } }', 'input.from'],
      [{ from: at(5).toISOString(), to: at(1).toISOString() }, '{ errorRate { calls } }', 'input.to'],
      [{ ...WINDOW, timeZone: 'Mars/Olympus_Mons' }, '{ errorRate { calls } }', 'input.timeZone'],
      [{ ...WINDOW, gatewayId: w.server.gid }, '{ errorRate { calls } }', 'input.gatewayId'],
      [WINDOW, '{ featureCalls(top: 0) { calls } }', 'top'],
      [WINDOW, '{ usageByUser(top: 1000) { calls } }', 'top'],
    ];
    for (const [input, selection, field] of cases) {
      const res = await cp.gql(`query($i: AuditReportInput) { auditReport(input: $i) ${selection} }`, { i: input });
      expect(res.errors?.[0]?.extensions, JSON.stringify(input)).toMatchObject({ code: 'VALIDATION', field });
    }
    // Exactly 31 days is allowed.
    ok(await cp.gql(`query($i: AuditReportInput) { auditReport(input: $i) { errorRate { calls } } }`, { i: { from: at(0).toISOString(), to: at(31 * 24).toISOString() } }));
  });

  it('needs reporting.view; the auditor has it, a member does not', async () => {
    const res = await cp.gql(`{ auditReport { errorRate { calls } } }`, {}, memberKey);
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'FORBIDDEN', capability: 'reporting.view' });
    expect(ok(await cp.gql(`{ auditReport { from to errorRate { calls } } }`, {}, auditorKey)).auditReport.errorRate.calls).toBe(0); // default: the last 7 days
  });
});
