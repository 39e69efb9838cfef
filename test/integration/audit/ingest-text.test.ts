import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { entriesArrayText } from '../../../control-plane/audit/audit-store.js';
import type { AuditEntry } from '../../../schema/audit/types.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { createWorkspaceWithOwner, startTestControlPlane, type TestControlPlane } from '../../helpers/control-plane.js';
import { postIngest, registerTestDataPlane, sampleAuditEntry, sampleCall, type RegisteredTestDataPlane } from '../../helpers/audit.js';

/**
 * The ingest stores a batch from the request's own text (its `entries` array, sliced out)
 * when the text has the shape data planes write, and from the validated entries otherwise.
 * Whatever the text says, what is stored is what was validated.
 */
let tdb: TestDatabase;
let cp: TestControlPlane;
let dataPlane: RegisteredTestDataPlane;

beforeAll(async () => {
  tdb = await createTestDatabase();
  cp = await startTestControlPlane(tdb.database);
  dataPlane = await registerTestDataPlane(cp, 'edge-text');
}, 60_000);

afterAll(async () => {
  await cp?.close();
  await tdb?.drop();
});

async function stored(ids: readonly string[]): Promise<Record<string, unknown>[]> {
  const result = await sql<Record<string, unknown>>`SELECT * FROM audit_entries WHERE id = ANY(${ids}::uuid[]) ORDER BY occurred_at, id`.execute(tdb.database.db);
  return result.rows;
}

describe('entriesArrayText', () => {
  it('slices the entries array out of the shape data planes write, and nothing else', () => {
    const entries = [sampleAuditEntry('0f8b6a52-1d3e-4c6f-9a8b-7c6d5e4f3a2b')];
    expect(entriesArrayText(JSON.stringify({ formatVersion: 1, entries }))).toBe(JSON.stringify(entries));
    expect(entriesArrayText(JSON.stringify({ formatVersion: 1, entries, droppedEntries: 12 }))).toBe(JSON.stringify(entries));
    expect(entriesArrayText(JSON.stringify({ formatVersion: 1, entries }, null, 2))).toBeUndefined();
    expect(entriesArrayText(JSON.stringify({ entries, formatVersion: 1 }))).toBeUndefined();
    expect(entriesArrayText(`${JSON.stringify({ formatVersion: 1, entries })}\n`)).toBeUndefined();
    expect(entriesArrayText(JSON.stringify({ formatVersion: 1, entries, droppedEntries: 1.5 }))).toBeUndefined();
  });
});

describe('POST /ingest/audit stores what it validated', () => {
  it('stores a batch that reports dropped entries, and a pretty-printed or reordered one, field for field', async () => {
    const dropped = sampleCall(cp.workspaceId);
    const pretty = sampleCall(cp.workspaceId, new Date(), { featureName: 'github__list_issues', headers: { 'content-type': 'application/json' } });
    const reordered = sampleCall(cp.workspaceId);
    expect(await postIngest(cp.url, { formatVersion: 1, entries: dropped, droppedEntries: 3 }, dataPlane.token)).toMatchObject({ status: 200, body: { accepted: 4, duplicates: 0 } });
    expect(await postIngest(cp.url, JSON.stringify({ formatVersion: 1, entries: pretty }, null, 2), dataPlane.token)).toMatchObject({ status: 200, body: { accepted: 4 } });
    expect(await postIngest(cp.url, JSON.stringify({ entries: reordered, formatVersion: 1 }), dataPlane.token)).toMatchObject({ status: 200, body: { accepted: 4 } });
    const rows = await stored([...dropped, ...pretty, ...reordered].map((entry) => entry.id));
    expect(rows).toHaveLength(12);
    for (const entry of [...dropped, ...pretty, ...reordered]) {
      const row = rows.find((r) => r.id === entry.id)!;
      expect(row).toMatchObject({ correlation_id: entry.correlationId, leg: entry.leg, feature_name: entry.featureName, headers: entry.headers, data_plane_id: dataPlane.id, workspace_id: cp.workspaceId });
      expect(new Date(row.occurred_at as string).toISOString()).toBe(entry.occurredAt);
    }
  });

  it('stores the entries JSON.parse validated when a crafted body repeats "entries", never the other copy (another workspace)', async () => {
    const other = await createWorkspaceWithOwner(tdb.database, 'Crafted Co');
    const smuggled = sampleCall(other.workspaceId);
    const validated = sampleCall(cp.workspaceId);
    // JSON.parse keeps the last "entries"; the first (another workspace's) must not be stored.
    const body = `{"formatVersion":1,"entries":${JSON.stringify(smuggled)},"entries":${JSON.stringify(validated)}}`;
    expect(await postIngest(cp.url, body, dataPlane.token)).toMatchObject({ status: 200, body: { accepted: 4, duplicates: 0 } });
    expect((await stored(validated.map((entry) => entry.id))).map((row) => row.workspace_id)).toEqual([cp.workspaceId, cp.workspaceId, cp.workspaceId, cp.workspaceId]);
    expect(await stored(smuggled.map((entry) => entry.id))).toEqual([]);
    // And the other way round: the smuggled copy last is what validation sees, and refuses.
    const reversed = `{"formatVersion":1,"entries":${JSON.stringify(sampleCall(cp.workspaceId))},"entries":${JSON.stringify(smuggled)}}`;
    expect(await postIngest(cp.url, reversed, dataPlane.token)).toMatchObject({ status: 403, body: { error: { code: 'WORKSPACE_MISMATCH', index: 0 } } });
    expect(await stored(smuggled.map((entry) => entry.id))).toEqual([]);
  });

  it('stores numbers written as another sender may write them (1.0, 2e2) as the values they are', async () => {
    const entry: AuditEntry = sampleAuditEntry(cp.workspaceId, { inputTokens: 1, outputTokens: 200, snapshotVersion: 7 });
    const text = JSON.stringify({ formatVersion: 1, entries: [entry] }).replace('"inputTokens":1,', '"inputTokens":1.0,').replace('"outputTokens":200,', '"outputTokens":2e2,').replace('"snapshotVersion":7', '"snapshotVersion":7.00');
    expect(text).toContain('"inputTokens":1.0,');
    expect(await postIngest(cp.url, text, dataPlane.token)).toMatchObject({ status: 200, body: { accepted: 1, duplicates: 0 } });
    const [row] = await stored([entry.id]);
    expect(row).toMatchObject({ input_tokens: 1, output_tokens: 200 });
    expect(Number(row!.snapshot_version)).toBe(7);
  });

  it('is idempotent on the sliced text as on the serialized entries', async () => {
    const call = sampleCall(cp.workspaceId);
    const canonical = JSON.stringify({ formatVersion: 1, entries: call });
    expect((await postIngest(cp.url, canonical, dataPlane.token)).body).toEqual({ accepted: 4, duplicates: 0 });
    expect((await postIngest(cp.url, canonical, dataPlane.token)).body).toEqual({ accepted: 0, duplicates: 4 });
    expect((await postIngest(cp.url, JSON.stringify({ formatVersion: 1, entries: call }, null, 1), dataPlane.token)).body).toEqual({ accepted: 0, duplicates: 4 });
  });
});
