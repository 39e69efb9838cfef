import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlertService, type RaiseAlertInput } from '../../../control-plane/alerts/alert.service.js';
import { ValidationError } from '../../../control-plane/errors.js';
import { encodeGlobalId } from '../../../control-plane/graphql/global-id.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { createWorkspaceWithOwner, keyWithRole, ok, startTestControlPlane, type TestControlPlane } from '../../helpers/control-plane.js';

let tdb: TestDatabase;
let cp: TestControlPlane;

beforeAll(async () => {
  tdb = await createTestDatabase();
  cp = await startTestControlPlane(tdb.database);
});
afterAll(async () => {
  await cp?.close();
  await tdb?.drop();
});

const FIELDS = `id type severity state subject subjectType subjectId details foldKey count firstSeenAt lastSeenAt acknowledgedAt acknowledgedBy resolvedAt resolvedBy`;
const ERRORS = `... on Error { __typename code message } ... on ValidationError { field } ... on ForbiddenError { capability }`;

const base = (over: Partial<RaiseAlertInput> = {}): RaiseAlertInput => ({
  workspaceId: cp.workspaceId,
  type: 'UPSTREAM_OUTAGE',
  severity: 'error',
  subject: 'Server crm cannot be reached',
  details: { code: 'CONNECT_FAILED' },
  ...over,
});

async function alertById(id: string, key = cp.ownerKey) {
  return cp.gql(`query($id: ID!) { alert(id: $id) { ${FIELDS} } }`, { id: encodeGlobalId('Alert', id) }, key);
}

async function list(filter: Record<string, unknown> = {}, extra: Record<string, unknown> = {}, key = cp.ownerKey) {
  return cp.gql(
    `query($filter: AlertFilter, $first: Int, $after: String) { alerts(filter: $filter, first: $first, after: $after) { edges { cursor node { id type severity state count foldKey } } pageInfo { hasNextPage endCursor } } }`,
    { filter, ...extra },
    key,
  );
}

async function act(field: 'acknowledgeAlert' | 'resolveAlert', id: string, key = cp.ownerKey) {
  const pascal = field.charAt(0).toUpperCase() + field.slice(1);
  const res = ok(await cp.gql(`mutation($id: ID!) { ${field}(id: $id) { __typename ... on ${pascal}Success { alert { ${FIELDS} } } ${ERRORS} } }`, { id }, key));
  return res[field];
}

describe('raising and folding', () => {
  it('stores a raised alert with everything a reader needs', async () => {
    const raised = await cp.app.services.alerts.raise(base({ subject: '  Server  crm\ncannot be reached ', subjectRef: { type: 'Server', id: randomUUID() }, details: { code: 'CONNECT_FAILED', port: 1 } }));
    const alert = ok(await alertById(raised.id)).alert;
    expect(alert).toMatchObject({
      type: 'UPSTREAM_OUTAGE',
      severity: 'ERROR',
      state: 'OPEN',
      subject: 'Server crm cannot be reached',
      subjectType: 'Server',
      details: { code: 'CONNECT_FAILED', port: 1 },
      count: 1,
      acknowledgedAt: null,
      resolvedAt: null,
    });
    expect(Buffer.from(alert.subjectId, 'base64url').toString()).toBe(`Server:${raised.subject_id}`);
    expect(alert.foldKey).toBe(`Server:${raised.subject_id}`);
    expect(alert.firstSeenAt).toBe(alert.lastSeenAt);
  });

  it('folds identical occurrences into one alert with a count and the latest details', async () => {
    const foldKey = `fold-${randomUUID()}`;
    const first = await cp.app.services.alerts.raise(base({ foldKey, details: { attempt: 1 } }));
    const second = await cp.app.services.alerts.raise(base({ foldKey, details: { attempt: 2 } }));
    const batch = await cp.app.services.alerts.raise(base({ foldKey, details: { attempt: 3 }, occurrences: 5 }));
    expect(second.id).toBe(first.id);
    expect(batch.id).toBe(first.id);
    expect(batch.count).toBe(7);
    const alert = ok(await alertById(first.id)).alert;
    expect(alert).toMatchObject({ count: 7, details: { attempt: 3 } });
    expect(new Date(alert.lastSeenAt).getTime()).toBeGreaterThan(new Date(alert.firstSeenAt).getTime());

    // Another type, or another fold key, is another alert.
    const otherType = await cp.app.services.alerts.raise(base({ foldKey, type: 'RATE_LIMIT_EXCEEDED', severity: 'warning' }));
    const otherKey = await cp.app.services.alerts.raise(base({ foldKey: `${foldKey}-b` }));
    expect(new Set([first.id, otherType.id, otherKey.id]).size).toBe(3);
  });

  it('folds concurrent occurrences exactly once each, whatever their interleaving', async () => {
    const foldKey = `race-${randomUUID()}`;
    const raised = await Promise.all(Array.from({ length: 20 }, () => cp.app.services.alerts.raise(base({ foldKey }))));
    expect(new Set(raised.map((a) => a.id)).size).toBe(1);
    const rows = await tdb.database.db.selectFrom('alerts').select(['count']).where('fold_key', '=', foldKey).execute();
    expect(rows).toEqual([{ count: 20 }]);
  });

  it('starts a new alert once the fold window has passed, and after a resolve', async () => {
    const shortWindow = new AlertService(tdb.database, cp.app.services.events, { foldWindowMs: 150 });
    const foldKey = `window-${randomUUID()}`;
    const first = await shortWindow.raise(base({ foldKey }));
    expect((await shortWindow.raise(base({ foldKey }))).id).toBe(first.id);
    await new Promise((r) => setTimeout(r, 300));
    const later = await shortWindow.raise(base({ foldKey }));
    expect(later.id).not.toBe(first.id);
    expect(later.count).toBe(1);
    // The first keeps its history.
    expect(ok(await alertById(first.id)).alert).toMatchObject({ count: 2, state: 'OPEN' });

    expect((await act('resolveAlert', encodeGlobalId('Alert', later.id))).__typename).toBe('ResolveAlertSuccess');
    const afterResolve = await cp.app.services.alerts.raise(base({ foldKey }));
    expect(afterResolve.id).not.toBe(later.id);
  });

  it('refuses a malformed alert with a typed error naming the field', async () => {
    await expect(cp.app.services.alerts.raise(base({ type: 'NOPE' as never }))).rejects.toMatchObject({ name: 'ValidationError', field: 'type' });
    await expect(cp.app.services.alerts.raise(base({ severity: 'fatal' as never }))).rejects.toMatchObject({ field: 'severity' });
    await expect(cp.app.services.alerts.raise(base({ subject: '   ' }))).rejects.toBeInstanceOf(ValidationError);
    await expect(cp.app.services.alerts.raise(base({ occurrences: 0 }))).rejects.toMatchObject({ field: 'occurrences' });
  });

  it('caps oversized details and long fold keys instead of failing', async () => {
    const raised = await cp.app.services.alerts.raise(base({ foldKey: 'k'.repeat(5000), details: { blob: 'x'.repeat(100_000) } }));
    expect(raised.fold_key).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(raised.details).toMatchObject({ truncated: true, bytes: expect.any(Number), preview: expect.any(String) });
    expect((await cp.app.services.alerts.raise(base({ foldKey: 'k'.repeat(5000) }))).id).toBe(raised.id);
  });
});

describe('acknowledge and resolve', () => {
  it('moves an alert OPEN → ACKNOWLEDGED → RESOLVED, naming who, and refuses repeats with CONFLICT', async () => {
    const raised = await cp.app.services.alerts.raise(base({ foldKey: `ack-${randomUUID()}` }));
    const id = encodeGlobalId('Alert', raised.id);
    const acked = await act('acknowledgeAlert', id);
    expect(acked.alert).toMatchObject({ state: 'ACKNOWLEDGED', acknowledgedBy: expect.stringMatching(/^api_key:/), acknowledgedAt: expect.any(String) });
    expect(await act('acknowledgeAlert', id)).toMatchObject({ __typename: 'ConflictError', code: 'CONFLICT' });

    // An acknowledged alert still folds new occurrences.
    expect((await cp.app.services.alerts.raise(base({ foldKey: raised.fold_key }))).id).toBe(raised.id);

    const resolved = await act('resolveAlert', id);
    expect(resolved.alert).toMatchObject({ state: 'RESOLVED', count: 2, resolvedBy: expect.stringMatching(/^api_key:/) });
    expect(await act('resolveAlert', id)).toMatchObject({ __typename: 'ConflictError' });
    expect(await act('acknowledgeAlert', id)).toMatchObject({ __typename: 'ConflictError', message: expect.stringContaining('resolved') });
  });

  it('NOT_FOUND for an unknown alert or another workspace’s alert; VALIDATION for a foreign ID', async () => {
    expect(await act('acknowledgeAlert', encodeGlobalId('Alert', randomUUID()))).toMatchObject({ __typename: 'NotFoundError' });
    const other = await createWorkspaceWithOwner(tdb.database, `Other ${randomUUID()}`);
    const theirs = await cp.app.services.alerts.raise(base({ workspaceId: other.workspaceId }));
    expect(await act('resolveAlert', encodeGlobalId('Alert', theirs.id))).toMatchObject({ __typename: 'NotFoundError' });
    expect((await alertById(theirs.id)).errors?.[0]?.extensions).toMatchObject({ code: 'NOT_FOUND' });
    const listed = ok(await list({}, { first: 100 })).alerts.edges.map((e: any) => e.node.id);
    expect(listed).not.toContain(encodeGlobalId('Alert', theirs.id));
    expect(ok(await list({}, {}, other.ownerKey)).alerts.edges.map((e: any) => e.node.id)).toEqual([encodeGlobalId('Alert', theirs.id)]);
    expect(await act('acknowledgeAlert', encodeGlobalId('Server', randomUUID()))).toMatchObject({ __typename: 'ValidationError', field: 'id' });
  });

  it('needs alerting.view to read and alerting.manage to change', async () => {
    const raised = await cp.app.services.alerts.raise(base({ foldKey: `caps-${randomUUID()}` }));
    const member = await keyWithRole(cp, 'Member');
    const auditor = await keyWithRole(cp, 'Read-only auditor');
    expect((await list({}, {}, member)).errors?.[0]?.extensions).toMatchObject({ code: 'FORBIDDEN', capability: 'alerting.view' });
    expect((await alertById(raised.id, member)).errors?.[0]?.extensions).toMatchObject({ code: 'FORBIDDEN', capability: 'alerting.view' });
    expect(ok(await list({}, {}, auditor)).alerts.edges.length).toBeGreaterThan(0);
    expect(await act('acknowledgeAlert', encodeGlobalId('Alert', raised.id), auditor)).toMatchObject({ __typename: 'ForbiddenError', capability: 'alerting.manage' });
    expect(ok(await alertById(raised.id)).alert.state).toBe('OPEN');
  });
});

describe('the alerts connection', () => {
  it('filters by severity, type, state and time, and pages forward with stable cursors', async () => {
    const other = await createWorkspaceWithOwner(tdb.database, `Filters ${randomUUID()}`);
    const raise = (over: Partial<RaiseAlertInput>) => cp.app.services.alerts.raise(base({ workspaceId: other.workspaceId, foldKey: randomUUID(), ...over }));
    const info = await raise({ type: 'FEATURE_DISCOVERED', severity: 'info' });
    const warning = await raise({ type: 'RATE_LIMIT_EXCEEDED', severity: 'warning' });
    const error = await raise({ type: 'PIN_VIOLATION', severity: 'error' });
    const resolved = await raise({ type: 'PIN_VIOLATION', severity: 'error' });
    await cp.app.services.alerts.resolve((await cp.app.services.apiKeys.authenticate(other.ownerKey))!, resolved.id);
    const gid = (a: { id: string }) => encodeGlobalId('Alert', a.id);
    const ids = async (filter: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
      ok(await list(filter, extra, other.ownerKey)).alerts.edges.map((e: any) => e.node.id);

    expect(await ids({})).toEqual([gid(resolved), gid(error), gid(warning), gid(info)]);
    expect(await ids({ severityAtLeast: 'WARNING' })).toEqual([gid(resolved), gid(error), gid(warning)]);
    expect(await ids({ severities: ['INFO'] })).toEqual([gid(info)]);
    expect(await ids({ types: ['PIN_VIOLATION'], states: ['OPEN'] })).toEqual([gid(error)]);
    expect(await ids({ states: ['RESOLVED'] })).toEqual([gid(resolved)]);
    expect(await ids({ from: new Date(Date.now() + 60_000).toISOString() })).toEqual([]);
    expect(await ids({ to: new Date(Date.now() - 3_600_000).toISOString() })).toEqual([]);

    const page1 = ok(await list({}, { first: 3 }, other.ownerKey)).alerts;
    expect(page1.pageInfo.hasNextPage).toBe(true);
    // A new alert between pages does not shift the next page.
    await raise({ severity: 'info' });
    const page2 = ok(await list({}, { first: 3, after: page1.pageInfo.endCursor }, other.ownerKey)).alerts;
    expect(page2.edges.map((e: any) => e.node.id)).toEqual([gid(info)]);
    expect(page2.pageInfo.hasNextPage).toBe(false);
  });

  it('refuses an inverted time range and a forged cursor with VALIDATION', async () => {
    const inverted = await list({ from: '2030-01-02T00:00:00Z', to: '2030-01-01T00:00:00Z' });
    expect(inverted.errors?.[0]?.extensions).toMatchObject({ code: 'VALIDATION', field: 'filter.to' });
    const forged = await list({}, { after: 'bm90LWEtY3Vyc29y' });
    expect(forged.errors?.[0]?.extensions).toMatchObject({ code: 'VALIDATION', field: 'after' });
  });
});
