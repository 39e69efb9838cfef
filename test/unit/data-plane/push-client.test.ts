import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PushSnapshotSource, graphqlWsUrl, type SnapshotDelivery } from '../../../data-plane/snapshot/push-client.js';
import { deriveDeliveryKey, wrapSnapshotKey, type GatewaySnapshot } from '../../../schema/snapshot/index.js';
import { fixtureSnapshot } from './fixtures.js';

const TOKEN = `gh_dp_${'a'.repeat(43)}`;
const DATA_PLANE_ID = '7d4c1f0e-3b7a-4a55-9c55-0d6f7f2d8a11';
const SNAPSHOT_KEY = randomBytes(32);
const SNAPSHOT_KEY_ID = 'snapshot-key-1';

/** A delivery as the control plane builds it: the body, and the snapshot key wrapped for this data plane. */
function delivery(snapshot: GatewaySnapshot, overrides: Partial<SnapshotDelivery> = {}, token = TOKEN, dataPlaneId = DATA_PLANE_ID): SnapshotDelivery {
  return {
    version: snapshot.version,
    contentHash: snapshot.contentHash,
    body: JSON.parse(JSON.stringify(snapshot)) as unknown,
    snapshotKeyId: SNAPSHOT_KEY_ID,
    snapshotKey: wrapSnapshotKey(deriveDeliveryKey(token, dataPlaneId), dataPlaneId, snapshot.workspaceId, SNAPSHOT_KEY_ID, SNAPSHOT_KEY),
    ...overrides,
  };
}

/** Never started: `accept` and `handleDelivery` run without a socket. */
function source(): PushSnapshotSource {
  return new PushSnapshotSource({ url: 'http://127.0.0.1:9', token: TOKEN });
}

describe('PushSnapshotSource acceptance path', () => {
  it('accepts a delivery, swaps it in, notifies listeners and keeps the unwrapped snapshot key', () => {
    const s = source();
    const seen: number[] = [];
    s.onChange((next, previous) => seen.push(next.version, previous?.version ?? 0));
    expect(s.current()).toBeUndefined();
    expect(s.accept(delivery(fixtureSnapshot({}, 1)))).toEqual({ accepted: true, version: 1 });
    expect(s.current()?.version).toBe(1);
    expect(Buffer.from(s.current()!.secretKeys.get(SNAPSHOT_KEY_ID)!).equals(SNAPSHOT_KEY)).toBe(true);
    expect(s.accept(delivery(fixtureSnapshot({}, 2)))).toEqual({ accepted: true, version: 2 });
    expect(seen).toEqual([1, 0, 2, 1]);
  });

  it('rejects an equal or older version with STALE_VERSION and keeps the held snapshot', () => {
    const s = source();
    s.accept(delivery(fixtureSnapshot({}, 3)));
    const held = s.current();
    for (const version of [3, 2]) {
      const outcome = s.accept(delivery(fixtureSnapshot({}, version)));
      expect(outcome).toMatchObject({ accepted: false, version });
      expect(outcome.accepted === false && outcome.reason).toMatch(/^STALE_VERSION: /);
    }
    expect(s.current()).toBe(held);
  });

  it('rejects a tampered body with HASH_MISMATCH', () => {
    const s = source();
    s.accept(delivery(fixtureSnapshot({}, 1)));
    const next = delivery(fixtureSnapshot({}, 2));
    (next.body as { gateways: { name: string }[] }).gateways[0]!.name = 'Tampered';
    const outcome = s.accept(next);
    expect(outcome).toMatchObject({ accepted: false, version: 2 });
    expect(outcome.accepted === false && outcome.reason).toMatch(/^HASH_MISMATCH: /);
    expect(s.current()?.version).toBe(1);
  });

  it('rejects a snapshot key it cannot unwrap: wrapped for another data plane, or tampered', () => {
    const s = source();
    const snapshot = fixtureSnapshot({}, 1);
    const foreign = s.accept(delivery(snapshot, {}, `gh_dp_${'b'.repeat(43)}`));
    expect(foreign.accepted === false && foreign.reason).toMatch(/^TAMPERED: /);
    const good = delivery(snapshot);
    const tampered = s.accept({ ...good, snapshotKey: { ...good.snapshotKey, ciphertext: Buffer.alloc(44, 1).toString('base64') } });
    expect(tampered.accepted === false && tampered.reason).toMatch(/^TAMPERED: /);
    const rebound = s.accept({ ...good, snapshotKeyId: 'another-key' });
    expect(rebound.accepted === false && rebound.reason).toMatch(/^WRONG_KEY: /);
    expect(s.current()).toBeUndefined();
  });

  it('rejects an envelope that disagrees with its body, and malformed deliveries, with INVALID', () => {
    const s = source();
    const mismatched = s.accept(delivery(fixtureSnapshot({}, 1), { version: 5 }));
    expect(mismatched).toMatchObject({ accepted: false, version: 5 });
    expect(mismatched.accepted === false && mismatched.reason).toMatch(/^INVALID: the delivery says version 5/);
    const { snapshotKey: _dropped, ...withoutKey } = delivery(fixtureSnapshot({}, 1));
    const malformed = s.accept(withoutKey);
    expect(malformed).toMatchObject({ accepted: false, version: 1 });
    expect(malformed.accepted === false && malformed.reason).toMatch(/^INVALID: malformed delivery: snapshotKey/);
    expect(s.accept(null)).toMatchObject({ accepted: false, version: null, reason: 'INVALID: the delivery is not an object' });
    expect(s.accept({ ...delivery(fixtureSnapshot({}, 1)), body: { format: 'nonsense' } })).toMatchObject({ accepted: false, version: 1 });
    expect(s.current()).toBeUndefined();
  });

  it('handles a delivery without a connection (nothing to report to) and says the link is not up yet', async () => {
    const s = source();
    expect(await s.handleDelivery(delivery(fixtureSnapshot({}, 1)))).toEqual({ accepted: true, version: 1 });
    expect(await s.ready(10)).toBe(s.current());
    expect(s.link()).toMatchObject({ state: 'disconnected', reason: 'not connected yet' });
  });

  it('checks its options, naming the one that is wrong', () => {
    expect(() => new PushSnapshotSource({ url: 'not a url', token: TOKEN })).toThrow('option "url"');
    expect(() => new PushSnapshotSource({ url: 'http://cp:4000', token: 'gh_at_nope' })).toThrow('option "token"');
    expect(() => new PushSnapshotSource({ url: 'http://cp:4000', token: TOKEN, maxRetryDelayMs: 0 })).toThrow('option "maxRetryDelayMs"');
  });

  it('derives the graphql-ws endpoint from a base URL', () => {
    expect(graphqlWsUrl('http://127.0.0.1:4000')).toBe('ws://127.0.0.1:4000/graphql');
    expect(graphqlWsUrl('https://gatehouse.example.com/base/')).toBe('wss://gatehouse.example.com/base/graphql');
    expect(graphqlWsUrl('http://cp:4000/graphql')).toBe('ws://cp:4000/graphql');
    expect(graphqlWsUrl('ws://cp:4000/graphql')).toBe('ws://cp:4000/graphql');
  });
});

describe('PushSnapshotSource link', () => {
  it('retries an unreachable control plane with backoff, reporting the error, and closes cleanly', async () => {
    const s = new PushSnapshotSource({ url: 'http://127.0.0.1:9', token: TOKEN, initialRetryDelayMs: 10, maxRetryDelayMs: 40 }).start();
    await expect.poll(() => s.link(), { timeout: 5_000 }).toMatchObject({ state: 'disconnected', lastError: expect.stringContaining('ECONNREFUSED') });
    const since = (s.link() as { since: number }).since;
    await new Promise((resolve) => setTimeout(resolve, 150));
    // Failed reconnects do not move the moment the link went down.
    expect((s.link() as { since: number }).since).toBe(since);
    await s.close();
    expect(s.link()).toMatchObject({ state: 'disconnected', reason: 'closed' });
  });
});
