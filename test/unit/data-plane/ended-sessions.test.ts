import { describe, expect, it } from 'vitest';
import { EndedSessions, SessionIdCodec, sessionTag, type SharedSessionEndings } from '../../../data-plane/mcp/session-id.js';

const SECRET = 'a-session-secret-of-at-least-32-characters';
const claims = { workspaceId: 'ws', gatewayId: 'gw', connectionId: 'conn', protocolVersion: '2025-11-25' };

/** Two replicas' views joined by an in-memory bus standing in for Redis pub/sub. */
function bus(): () => SharedSessionEndings {
  const subscribers = new Set<(tag: string, expiresAt: number) => void>();
  return () => ({
    publish: async (tag, expiresAt) => {
      for (const deliver of subscribers) deliver(tag, expiresAt);
    },
    subscribe: (onEnded) => void subscribers.add(onEnded),
    close: async () => undefined,
  });
}

describe('EndedSessions', () => {
  it('names an ending by the id\'s signature segment, not the whole id', () => {
    const id = new SessionIdCodec(SECRET, 60_000).issue(claims, 1_000);
    expect(sessionTag(id)).toBe(id.split('.')[2]);
    expect(sessionTag('no-dots')).toBe('no-dots');
  });

  it('with a shared channel, an ending on one replica is seen on the others until the id would expire', async () => {
    const join = bus();
    const a = new EndedSessions(60_000, join(), () => 5_000);
    const b = new EndedSessions(60_000, join(), () => 5_000);
    const id = new SessionIdCodec(SECRET, 60_000).issue(claims, 1_000);
    expect(b.has(id, 5_000)).toBe(false);
    await a.add(id, 1_000);
    expect(a.has(id, 5_000)).toBe(true);
    expect(b.has(id, 5_000)).toBe(true);
    expect(b.has(id, 61_001)).toBe(false);
  });

  it('without one, an ending stays on its replica', async () => {
    const a = new EndedSessions(60_000);
    const b = new EndedSessions(60_000);
    await a.add('v1.x.tag', 0);
    expect(a.has('v1.x.tag', 10)).toBe(true);
    expect(b.has('v1.x.tag', 10)).toBe(false);
  });

  it('stays bounded: past its capacity it forgets the oldest endings, and every id expiring no later counts as ended', async () => {
    const ended = new EndedSessions(60_000, undefined, () => 0, 3);
    const codec = new SessionIdCodec(SECRET, 60_000);
    const ids = [100, 200, 300, 400].map((issuedAt) => ({ id: codec.issue(claims, issuedAt), issuedAt }));
    for (const { id, issuedAt } of ids) await ended.add(id, issuedAt);
    expect(ended.size).toBe(3);
    // The first ending was forgotten, but its id (and any issued no later) is still refused.
    for (const { id, issuedAt } of ids) expect(ended.has(id, 1_000, issuedAt)).toBe(true);
    const earlier = codec.issue(claims, 50);
    expect(ended.has(earlier, 1_000, 50)).toBe(true);
    // A session issued after the forgotten one and never ended is unaffected.
    const later = codec.issue(claims, 150);
    expect(ended.has(later, 1_000, 150)).toBe(false);
  });
});
