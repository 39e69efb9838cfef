import { describe, expect, it } from 'vitest';
import { EndedSessions, SessionIdCodec } from '../../../data-plane/mcp/session-id.js';

const SECRET = 'a-session-secret-of-at-least-32-characters';
const claims = { workspaceId: 'ws', gatewayId: 'gw', connectionId: 'conn', protocolVersion: '2025-11-25' };

describe('SessionIdCodec', () => {
  it('round-trips claims, and any codec with the same secret verifies them', () => {
    const id = new SessionIdCodec(SECRET, 60_000).issue(claims, 1_000);
    expect(new SessionIdCodec(SECRET, 60_000).verify(id, 2_000)).toEqual({ ...claims, issuedAt: 1_000 });
  });

  it('refuses ids signed with another secret, tampered, malformed or expired', () => {
    const codec = new SessionIdCodec(SECRET, 60_000);
    const id = codec.issue(claims, 1_000);
    expect(new SessionIdCodec(`${SECRET}-other`, 60_000).verify(id, 2_000)).toBeUndefined();
    const [tag, payload, mac] = id.split('.');
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), c: 'other' })).toString('base64url');
    expect(codec.verify(`${tag}.${forged}.${mac}`, 2_000)).toBeUndefined();
    expect(codec.verify('garbage', 2_000)).toBeUndefined();
    expect(codec.verify(`${id}x`, 2_000)).toBeUndefined();
    expect(codec.verify(id, 1_000 + 60_001)).toBeUndefined();
  });

  it('issues distinct ids for the same claims', () => {
    const codec = new SessionIdCodec(SECRET, 60_000);
    expect(codec.issue(claims, 1)).not.toBe(codec.issue(claims, 1));
  });
});

describe('EndedSessions', () => {
  it('remembers an ended session until it would have expired', () => {
    const ended = new EndedSessions(1_000);
    ended.add('s', 0);
    expect(ended.has('s', 500)).toBe(true);
    expect(ended.has('s', 1_001)).toBe(false);
  });
});
