import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntry, AuditPolicyAction } from '../../../schema/audit/types.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { createWorkspaceWithOwner, ok, startTestControlPlane, type TestControlPlane } from '../../helpers/control-plane.js';
import { postIngest, registerTestDataPlane, sampleAuditEntry, sampleBatch, sampleCall, type RegisteredTestDataPlane } from '../../helpers/audit.js';

const DAY = 86_400_000;

let tdb: TestDatabase;
let cp: TestControlPlane;
let dataPlane: RegisteredTestDataPlane;

async function count(where = sql`TRUE`): Promise<number> {
  const result = await sql<{ n: string }>`SELECT count(*)::text AS n FROM audit_entries WHERE ${where}`.execute(tdb.database.db);
  return Number(result.rows[0]!.n);
}

beforeAll(async () => {
  tdb = await createTestDatabase();
  cp = await startTestControlPlane(tdb.database);
  dataPlane = await registerTestDataPlane(cp, 'edge-audit');
}, 60_000);

afterAll(async () => {
  await cp?.close();
  await tdb?.drop();
});

describe('POST /ingest/audit', () => {
  it('stores a batch and stores a retried batch once', async () => {
    const batch = sampleBatch(cp.workspaceId, 25);
    const first = await postIngest(cp.url, batch, dataPlane.token);
    expect(first).toMatchObject({ status: 200, body: { accepted: 100, duplicates: 0 } });
    const retried = await postIngest(cp.url, batch, dataPlane.token);
    expect(retried).toMatchObject({ status: 200, body: { accepted: 0, duplicates: 100 } });
    const ids = batch.entries.map((entry) => entry.id);
    expect(await count(sql`id = ANY(${ids}::uuid[])`)).toBe(100);
    // A batch that overlaps a stored one: only the new entries count.
    const overlapping = { formatVersion: 1, entries: [...batch.entries.slice(0, 4), ...sampleCall(cp.workspaceId)] };
    expect(await postIngest(cp.url, overlapping, dataPlane.token)).toMatchObject({ status: 200, body: { accepted: 4, duplicates: 4 } });
  });

  it('stores every field, and stamps the data plane from its token whatever the entry says', async () => {
    const entry = sampleAuditEntry(cp.workspaceId, {
      leg: 'upstream_response',
      dataPlaneId: randomUUID(),
      status: 'error',
      errorCode: -32060,
      errorMessage: 'upstream "github" timed out',
      body: '{"content":[{"type":"text","text":"x"}]}',
      bodyTruncated: true,
      headers: { 'content-type': 'application/json' },
      policyActions: [{ ruleId: 'rule-1', ruleName: 'No card numbers', action: 'redact', findings: ['CREDIT_CARD'], alert: false }],
      userId: randomUUID(),
    });
    expect((await postIngest(cp.url, { formatVersion: 1, entries: [entry] }, dataPlane.token)).status).toBe(200);
    const row = await tdb.database.db.selectFrom('audit_entries' as never).selectAll().where('id' as never, '=', entry.id as never).executeTakeFirstOrThrow() as Record<string, unknown>;
    expect(row).toMatchObject({
      id: entry.id,
      correlation_id: entry.correlationId,
      leg: 'upstream_response',
      status: 'error',
      workspace_id: cp.workspaceId,
      gateway_id: entry.gatewayId,
      server_id: entry.serverId,
      assignment_id: entry.assignmentId,
      host_id: entry.hostId,
      connection_id: entry.connectionId,
      token_id: entry.tokenId,
      user_id: entry.userId,
      client_name: 'claude-code',
      client_version: '2.0.14',
      session_ref: entry.sessionRef,
      method: 'tools/call',
      feature_name: 'github__create_issue',
      json_rpc_id: '42',
      error_code: -32060,
      error_message: 'upstream "github" timed out',
      policy_actions: entry.policyActions,
      body: entry.body,
      body_truncated: true,
      headers: { 'content-type': 'application/json' },
      input_tokens: 38,
      output_tokens: 212,
      bytes_in: 164,
      bytes_out: 933,
      origin_ip: '10.1.2.3',
      user_agent: 'claude-code/2.0.14',
      data_plane_id: dataPlane.id,
      data_plane_instance: entry.dataPlaneInstance,
    });
    expect(Number(row.snapshot_version)).toBe(7);
    expect(row.duration_ms).toBeCloseTo(2.41);
    expect(new Date(row.occurred_at as string).toISOString()).toBe(entry.occurredAt);
  });

  it('refuses requests without a data-plane token (401) or with an unknown or revoked one (403), storing nothing', async () => {
    const batch = sampleBatch(cp.workspaceId, 1);
    const before = await count();
    const none = await postIngest(cp.url, batch, undefined);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(none.body.error).toMatchObject({ code: 'UNAUTHENTICATED', message: expect.stringContaining('gh_dp_') });
    expect((await postIngest(cp.url, batch, cp.ownerKey)).status).toBe(401);
    const unknown = await postIngest(cp.url, batch, `gh_dp_${'x'.repeat(43)}`);
    expect(unknown).toMatchObject({ status: 403, body: { error: { code: 'DATA_PLANE_REVOKED' } } });

    const revoked = await registerTestDataPlane(cp, 'edge-revoked');
    expect((await postIngest(cp.url, sampleBatch(cp.workspaceId, 1), revoked.token)).status).toBe(200);
    const res = ok(await cp.gql(`mutation($id: ID!) { revokeDataPlane(id: $id) { __typename } }`, { id: revoked.globalId }));
    expect(res.revokeDataPlane.__typename).toBe('RevokeDataPlaneSuccess');
    expect(await postIngest(cp.url, batch, revoked.token)).toMatchObject({ status: 403, body: { error: { code: 'DATA_PLANE_REVOKED', message: expect.stringContaining('revoked') } } });
    expect(await count()).toBe(before + 4);
  });

  it('refuses a malformed batch whole, naming the first bad field', async () => {
    const before = await count();
    const notJson = await postIngest(cp.url, '{"formatVersion":1,"entries":[', dataPlane.token);
    expect(notJson).toMatchObject({ status: 400, body: { error: { code: 'INVALID_BATCH', message: 'the body is not valid JSON' } } });

    const batch = sampleBatch(cp.workspaceId, 2);
    const badTime = { ...batch, entries: batch.entries.map((entry, i) => (i === 5 ? { ...entry, occurredAt: 'yesterday' } : entry)) };
    const refused = await postIngest(cp.url, badTime, dataPlane.token);
    expect(refused).toMatchObject({ status: 400, body: { error: { code: 'INVALID_BATCH', field: 'entries[5].occurredAt', index: 5, message: expect.stringMatching(/^entries\[5\]\.occurredAt: /) } } });

    const unknownField = { ...batch, entries: batch.entries.map((entry, i) => (i === 2 ? { ...entry, secretSauce: 1 } : entry)) };
    expect((await postIngest(cp.url, unknownField, dataPlane.token)).body.error).toMatchObject({ field: 'entries[2].secretSauce', index: 2 });
    const { leg: _leg, ...legless } = batch.entries[0]!;
    expect((await postIngest(cp.url, { formatVersion: 1, entries: [legless] }, dataPlane.token)).body.error).toMatchObject({ field: 'entries[0].leg' });
    expect((await postIngest(cp.url, { formatVersion: 2, entries: batch.entries }, dataPlane.token)).body.error).toMatchObject({ field: 'formatVersion' });
    expect((await postIngest(cp.url, { formatVersion: 1, entries: [] }, dataPlane.token)).body.error).toMatchObject({ field: 'entries' });
    const tooLong = { formatVersion: 1, entries: [sampleAuditEntry(cp.workspaceId, { method: 'x'.repeat(300) })] };
    expect((await postIngest(cp.url, tooLong, dataPlane.token)).body.error).toMatchObject({ field: 'entries[0].method' });
    const tooMany = { formatVersion: 1, entries: Array.from({ length: 5001 }, () => batch.entries[0]) };
    expect((await postIngest(cp.url, tooMany, dataPlane.token)).body.error).toMatchObject({ field: 'entries', message: expect.stringContaining('5000') });
    const wrongType = await postIngest(cp.url, 'x', dataPlane.token, { 'content-type': 'text/plain' });
    expect(wrongType).toMatchObject({ status: 415, body: { error: { code: 'UNSUPPORTED_MEDIA_TYPE' } } });
    const get = await fetch(`${cp.url}/ingest/audit`, { headers: { authorization: `Bearer ${dataPlane.token}` } });
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    expect(await count()).toBe(before);
  });

  it('refuses entries of another workspace with 403, storing nothing', async () => {
    const other = await createWorkspaceWithOwner(tdb.database, 'Other Co');
    const entries = [...sampleCall(cp.workspaceId), sampleAuditEntry(other.workspaceId)];
    const refused = await postIngest(cp.url, { formatVersion: 1, entries }, dataPlane.token);
    expect(refused).toMatchObject({ status: 403, body: { error: { code: 'WORKSPACE_MISMATCH', field: 'entries[4].workspaceId', index: 4 } } });
    expect(await count(sql`correlation_id = ${entries[0]!.correlationId}`)).toBe(0);
  });

  it('refuses a body over the limit with 413', async () => {
    const huge = `{"formatVersion":1,"entries":[],"pad":"${'x'.repeat(33 * 1024 * 1024)}"}`;
    const refused = await postIngest(cp.url, huge, dataPlane.token);
    expect(refused).toMatchObject({ status: 413, body: { error: { code: 'PAYLOAD_TOO_LARGE' } } });
  });

  it('stores text with U+0000 or unpaired surrogates (which Postgres text cannot hold) instead of failing the batch', async () => {
    // A client controls tool names and arguments: one crafted call must not cost the batch of everyone's calls.
    const entry = sampleAuditEntry(cp.workspaceId, { body: 'binary\u0000junk', errorMessage: 'nul\u0000', featureName: 'tool\ud800', clientName: 'ok 😀' });
    const neighbour = sampleAuditEntry(cp.workspaceId);
    expect(await postIngest(cp.url, { formatVersion: 1, entries: [neighbour, entry] }, dataPlane.token)).toMatchObject({ status: 200, body: { accepted: 2 } });
    const row = await sql<{ body: string; feature_name: string; client_name: string }>`SELECT body, feature_name, client_name FROM audit_entries WHERE id = ${entry.id}`.execute(tdb.database.db);
    expect(row.rows[0]).toEqual({ body: 'binary\uFFFDjunk', feature_name: 'tool\uFFFD', client_name: 'ok 😀' });
  });

  it('tells listeners about new policy actions that ask for an alert, once per entry, and about dropped entries', async () => {
    const alerts: { workspaceId: string; entry: AuditEntry; action: AuditPolicyAction }[] = [];
    const drops: [string, string, number][] = [];
    const offAlert = cp.app.services.auditIngest.onPolicyAlert((workspaceId, entry, action) => void alerts.push({ workspaceId, entry, action }));
    const offDrop = cp.app.services.auditIngest.onDroppedEntries((...args) => void drops.push(args));
    try {
      const alerting: AuditPolicyAction = { ruleId: 'rule-9', ruleName: 'Block secrets', action: 'block', findings: ['AWS_KEY'], alert: true };
      const quiet: AuditPolicyAction = { ruleId: 'rule-10', ruleName: 'Mask emails', action: 'mask', findings: ['EMAIL'], alert: false };
      const call = sampleCall(cp.workspaceId);
      const entries = [
        ...call,
        sampleAuditEntry(cp.workspaceId, { correlationId: call[0]!.correlationId, leg: 'policy_action', status: 'blocked', policyActions: [alerting, quiet] }),
      ];
      const batch = { formatVersion: 1, entries, droppedEntries: 12 };
      expect((await postIngest(cp.url, batch, dataPlane.token)).status).toBe(200);
      expect((await postIngest(cp.url, batch, dataPlane.token)).body).toEqual({ accepted: 0, duplicates: 5 });
      expect(alerts).toHaveLength(1);
      expect(alerts[0]).toMatchObject({ workspaceId: cp.workspaceId, entry: { id: entries[4]!.id, leg: 'policy_action' }, action: alerting });
      expect(drops).toEqual([
        [cp.workspaceId, dataPlane.id, 12],
        [cp.workspaceId, dataPlane.id, 12],
      ]);
    } finally {
      offAlert();
      offDrop();
    }
  });
});

describe('partitions and retention', () => {
  const partitionOf = async (id: string) =>
    (await sql<{ part: string }>`SELECT tableoid::regclass::text AS part FROM audit_entries WHERE id = ${id}`.execute(tdb.database.db)).rows[0]?.part;
  const day = (at: Date) => at.toISOString().slice(0, 10).replaceAll('-', '');

  it('has day partitions from today to two days ahead once the control plane started', async () => {
    const now = Date.now();
    const expected = [0, 1, 2].map((i) => `audit_entries_p${day(new Date(now + i * DAY))}`);
    await expect.poll(async () => (await cp.app.services.auditStore.listPartitions()).map((p) => p.name)).toEqual(expect.arrayContaining(expected));
  });

  it('creates the partition of a recent day on ingest, and lets the default partition take days far back', async () => {
    const recent = sampleAuditEntry(cp.workspaceId, { occurredAt: new Date(Date.now() - 5 * DAY).toISOString() });
    const old = sampleAuditEntry(cp.workspaceId, { occurredAt: new Date(Date.now() - 60 * DAY).toISOString() });
    expect((await postIngest(cp.url, { formatVersion: 1, entries: [recent, old] }, dataPlane.token)).body).toEqual({ accepted: 2, duplicates: 0 });
    expect(await partitionOf(recent.id)).toBe(`audit_entries_p${day(new Date(recent.occurredAt))}`);
    expect(await partitionOf(old.id)).toBe('audit_entries_default');

    // A partition created later for that day moves the rows out of the default partition.
    const created = await cp.app.services.auditStore.ensurePartitions(new Date(old.occurredAt));
    expect(created).toContain(`audit_entries_p${day(new Date(old.occurredAt))}`);
    expect(await partitionOf(old.id)).toBe(`audit_entries_p${day(new Date(old.occurredAt))}`);
    // And the moved row is still a duplicate of itself.
    expect((await postIngest(cp.url, { formatVersion: 1, entries: [old] }, dataPlane.token)).body).toEqual({ accepted: 0, duplicates: 1 });
  });

  it('drops day partitions past the longest retention and deletes older rows of workspaces that keep less', async () => {
    const store = cp.app.services.auditStore;
    const other = await createWorkspaceWithOwner(tdb.database, 'Short Memory Co');
    await sql`UPDATE workspaces SET audit_retention_days = 30 WHERE id = ${other.workspaceId}`.execute(tdb.database.db);
    await sql`UPDATE workspaces SET audit_retention_days = 90 WHERE id <> ${other.workspaceId}`.execute(tdb.database.db);
    const now = new Date();
    const at = (days: number) => new Date(now.getTime() - days * DAY);
    for (const days of [10, 45, 100, 200]) await store.ensurePartitions(at(days));
    const keep = sampleAuditEntry(cp.workspaceId, { occurredAt: at(45).toISOString() });
    const shortKeep = sampleAuditEntry(other.workspaceId, { occurredAt: at(10).toISOString() });
    const shortGone = sampleAuditEntry(other.workspaceId, { occurredAt: at(45).toISOString() });
    const ancient = sampleAuditEntry(cp.workspaceId, { occurredAt: at(100).toISOString() });
    const ancientDefault = sampleAuditEntry(cp.workspaceId, { occurredAt: at(400).toISOString() });
    await store.insert(null, [keep, ancient, ancientDefault]);
    await store.insert(null, [shortKeep, shortGone]);
    expect(await partitionOf(ancientDefault.id)).toBe('audit_entries_default');

    const result = await store.applyRetention(now);
    expect(result.longestRetentionDays).toBe(90);
    expect(result.droppedPartitions).toEqual(expect.arrayContaining([`audit_entries_p${day(at(100))}`, `audit_entries_p${day(at(200))}`]));
    expect(result.droppedPartitions).not.toContain(`audit_entries_p${day(at(45))}`);
    const survivors = await sql<{ id: string }>`SELECT id FROM audit_entries WHERE id = ANY(${[keep, shortKeep, shortGone, ancient, ancientDefault].map((e) => e.id)}::uuid[])`.execute(tdb.database.db);
    expect(survivors.rows.map((r) => r.id).sort()).toEqual([keep.id, shortKeep.id].sort());
    const names = (await store.listPartitions()).map((p) => p.name);
    expect(names).not.toContain(`audit_entries_p${day(at(100))}`);
    expect(names).toContain(`audit_entries_p${day(at(45))}`);
    // Idempotent: nothing more to do.
    expect(await store.applyRetention(now)).toMatchObject({ droppedPartitions: [], deletedRows: 0 });
  });
});
