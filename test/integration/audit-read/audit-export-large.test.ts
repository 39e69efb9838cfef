import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { seedAuditEntries } from '../../helpers/audit-rows.js';
import { startTestControlPlane, type TestControlPlane } from '../../helpers/control-plane.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';

const CALLS = 50_000; // × 4 legs = 200,000 entries
const BODY_BYTES = 1000;

let tdb: TestDatabase;
let cp: TestControlPlane;

beforeAll(async () => {
  tdb = await createTestDatabase();
  cp = await startTestControlPlane(tdb.database);
  const now = Date.now();
  await seedAuditEntries(tdb.database.db, {
    workspaceId: cp.workspaceId,
    calls: CALLS,
    from: new Date(now - 7 * 86_400_000),
    to: new Date(now - 60_000),
    bodyBytes: BODY_BYTES,
    chunk: 10_000,
  });
}, 300_000);

afterAll(async () => {
  await cp?.close();
  await tdb?.drop();
});

/** A real collection before each sample: uncollected garbage says nothing about what the server holds. */
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const liveHeap = () => {
  gc();
  return process.memoryUsage().heapUsed;
};

it('streams a 200,000-row export with bodies (hundreds of MB) in bounded memory', async () => {
  const baseline = liveHeap();
  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, liveHeap());
  }, 250);
  try {
    const res = await fetch(`${cp.url}/export/audit?format=csv&includeBodies=true`, { headers: { authorization: `Bearer ${cp.ownerKey}` } });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let bytes = 0;
    let rows = 0;
    let header = '';
    let previous = '';
    let last = '';
    let ordered = true;
    let carry = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.byteLength;
      const text = carry + decoder.decode(value, { stream: true });
      const lines = text.split('\r\n');
      carry = lines.pop()!;
      for (const line of lines) {
        if (!header) {
          header = line;
          continue;
        }
        rows++;
        const occurredAt = line.split(',', 4)[3]!;
        if (occurredAt < previous) ordered = false;
        previous = occurredAt;
        last = line;
      }
    }
    expect(carry).toBe('');
    expect(header.endsWith(',body,headers')).toBe(true);
    expect(rows).toBe(CALLS * 4);
    expect(ordered).toBe(true);
    expect(last).toContain('lorem ipsum');
    expect(bytes).toBeGreaterThan(200 * 1024 * 1024);
    // The whole export is over 200 MB; the server holds one batch of 1,000 rows at a time.
    expect(peak - baseline).toBeLessThan(64 * 1024 * 1024);
  } finally {
    clearInterval(sampler);
  }
}, 300_000);

it('follows the client: while it does not read, the server stops querying', async () => {
  const res = await fetch(`${cp.url}/export/audit?format=ndjson&includeBodies=true`, { headers: { authorization: `Bearer ${cp.ownerKey}` } });
  const reader = res.body!.getReader();
  await reader.read();
  await new Promise((r) => setTimeout(r, 1500)); // socket buffers fill up
  const paused = tdb.database.stats.statements;
  await new Promise((r) => setTimeout(r, 1500));
  // At most a background poll runs meanwhile; an export that kept going would run a batch query every few ms.
  expect(tdb.database.stats.statements - paused).toBeLessThanOrEqual(3);
  // Reading again resumes it.
  while (tdb.database.stats.statements < paused + 10) {
    const { done } = await reader.read();
    if (done) break;
  }
  expect(tdb.database.stats.statements).toBeGreaterThanOrEqual(paused + 10);
  await reader.cancel();
}, 300_000);

it('a client that goes away mid-download stops the export without harm', async () => {
  const controller = new AbortController();
  const res = await fetch(`${cp.url}/export/audit?format=ndjson`, { headers: { authorization: `Bearer ${cp.ownerKey}` }, signal: controller.signal });
  const reader = res.body!.getReader();
  await reader.read();
  controller.abort();
  await reader.read().catch(() => undefined);
  // The server is still fine.
  const health = await fetch(`${cp.url}/export/audit?format=json&from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z`, { headers: { authorization: `Bearer ${cp.ownerKey}` } });
  expect(await health.json()).toEqual([]);
}, 60_000);
