import { createHmac, hkdfSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { EndedSessions, SessionIdCodec, relayedCapabilities } from '../../../data-plane/mcp/session-id.js';

const SECRET = 'a-session-secret-of-at-least-32-characters';
const claims = { workspaceId: 'ws', gatewayId: 'gw', connectionId: 'conn', protocolVersion: '2025-11-25' };

describe('SessionIdCodec', () => {
  it('round-trips claims, and any codec with the same secret verifies them', () => {
    const id = new SessionIdCodec(SECRET, 60_000).issue(claims, 1_000);
    expect(new SessionIdCodec(SECRET, 60_000).verify(id, 2_000)).toEqual({ ...claims, issuedAt: 1_000 });
  });

  it('reads which elicitation modes a client declared, and carries them in the id', () => {
    // `elicitation: {}` is form mode only (clients older than URL mode); URL mode is declared by name.
    expect(relayedCapabilities({ elicitation: {} })).toEqual({ sampling: false, elicitation: true, roots: false });
    expect(relayedCapabilities({ elicitation: { url: {} } })).toEqual({ sampling: false, elicitation: false, elicitationUrl: true, roots: false });
    expect(relayedCapabilities({ elicitation: { form: {}, url: {} }, sampling: {} })).toEqual({ sampling: true, elicitation: true, elicitationUrl: true, roots: false });
    expect(relayedCapabilities({ elicitation: true, roots: {} })).toEqual({ sampling: false, elicitation: false, roots: true });
    const codec = new SessionIdCodec(SECRET, 60_000);
    const withUrl = { ...claims, clientCapabilities: relayedCapabilities({ elicitation: { url: {} } }) };
    expect(codec.verify(codec.issue(withUrl, 1_000), 2_000)?.clientCapabilities).toEqual({ sampling: false, elicitation: false, elicitationUrl: true, roots: false });
  });

  it('refuses ids sealed with another secret, tampered, malformed or expired', () => {
    const codec = new SessionIdCodec(SECRET, 60_000);
    const id = codec.issue(claims, 1_000);
    expect(new SessionIdCodec(`${SECRET}-other`, 60_000).verify(id, 2_000)).toBeUndefined();
    const [version, sealed, tag] = id.split('.');
    const bytes = Buffer.from(sealed!, 'base64url');
    for (const at of [0, 12, bytes.length - 1]) {
      const flipped = Buffer.from(bytes);
      flipped[at]! ^= 1; // the IV, the first and the last byte of the ciphertext
      expect(codec.verify(`${version}.${flipped.toString('base64url')}.${tag}`, 2_000)).toBeUndefined();
    }
    expect(codec.verify(`v1.${sealed}.${tag}`, 2_000)).toBeUndefined();
    expect(codec.verify(`${version}.${sealed}.${tag!.slice(0, 10)}`, 2_000)).toBeUndefined();
    expect(codec.verify(`${version}.AAAA.${tag}`, 2_000)).toBeUndefined();
    expect(codec.verify('garbage', 2_000)).toBeUndefined();
    expect(codec.verify(`${id}x`, 2_000)).toBeUndefined();
    expect(codec.verify(id, 1_000 + 60_001)).toBeUndefined();
  });

  it('encrypts the claims: no id, client name or version can be read from the session id', () => {
    const codec = new SessionIdCodec(SECRET, 60_000);
    const readable = { workspaceId: 'workspace-7f3a', gatewayId: 'gateway-91bc', connectionId: 'connection-55e2', protocolVersion: '2025-11-25', clientInfo: { name: 'acme-agent', version: '4.2.0' } };
    const id = codec.issue(readable, 1_000);
    expect(id.startsWith('v2.')).toBe(true);
    const decoded = id.split('.').map((part) => Buffer.from(part, 'base64url').toString('latin1')).join('|');
    for (const secret of ['workspace-7f3a', 'gateway-91bc', 'connection-55e2', 'acme-agent', '2025-11-25']) {
      expect(id).not.toContain(secret);
      expect(decoded).not.toContain(secret);
    }
    expect(codec.verify(id, 2_000)).toEqual({ ...readable, issuedAt: 1_000 });
  });

  it('still verifies signed-only v1 ids of earlier versions until they expire, and refuses forged ones', () => {
    // The v1 format as versions before encryption wrote it: HMAC-SHA256 under the HKDF key of tag v1.
    const key = Buffer.from(hkdfSync('sha256', Buffer.from(SECRET, 'utf8'), 'gatehouse-session-id', 'v1', 32));
    const v1 = (payload: object) => {
      const text = Buffer.from(JSON.stringify(payload)).toString('base64url');
      return `v1.${text}.${createHmac('sha256', key).update(text).digest('base64url')}`;
    };
    const codec = new SessionIdCodec(SECRET, 60_000);
    const old = v1({ w: 'ws', g: 'gw', c: 'conn', p: '2025-06-18', t: 1_000, k: 'se', n: 'x' });
    expect(codec.verify(old, 2_000)).toEqual({ workspaceId: 'ws', gatewayId: 'gw', connectionId: 'conn', protocolVersion: '2025-06-18', issuedAt: 1_000, clientCapabilities: { sampling: true, elicitation: true, roots: false } });
    expect(codec.verify(old, 1_000 + 60_001)).toBeUndefined();
    const [, payload, mac] = old.split('.');
    const forged = Buffer.from(JSON.stringify({ w: 'ws', g: 'gw', c: 'other', p: '2025-06-18', t: 1_000 })).toString('base64url');
    expect(codec.verify(`v1.${forged}.${mac}`, 2_000)).toBeUndefined();
    expect(codec.verify(`v2.${payload}.${mac}`, 2_000)).toBeUndefined();
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
