import { describe, expect, it } from 'vitest';
import { SessionIdCodec } from '../../../data-plane/mcp/session-id.js';
import { readForwardedMessage } from '../../../data-plane/mcp/session-forwards.js';
import { LOG_LEVELS, SessionLogLevels, isLogLevel, logLevelRank, type SharedSessionLogLevels } from '../../../data-plane/mcp/session-log-levels.js';

const SECRET = 'a-session-secret-of-at-least-32-characters';
const claims = { workspaceId: 'ws', gatewayId: 'gw', connectionId: 'conn', protocolVersion: '2025-11-25' };
const codec = new SessionIdCodec(SECRET, 60_000);

/** Replicas joined by an in-memory bus standing in for Redis pub/sub (the Redis one is tested in session-end.test.ts). */
function bus(): () => SharedSessionLogLevels {
  const subscribers = new Set<Parameters<SharedSessionLogLevels['subscribeLogLevels']>[0]>();
  return () => ({
    publishLogLevel: async (tag, level, expiresAt) => {
      for (const deliver of subscribers) deliver(tag, level, expiresAt);
    },
    subscribeLogLevels: (onSet) => void subscribers.add(onSet),
  });
}

describe('log levels', () => {
  it('ranks the eight MCP levels from debug to emergency and nothing else', () => {
    expect(LOG_LEVELS.map(logLevelRank)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(isLogLevel('warning')).toBe(true);
    for (const other of ['warn', 'WARNING', '', 3, undefined]) {
      expect(isLogLevel(other)).toBe(false);
      expect(logLevelRank(other)).toBeUndefined();
    }
  });
});

describe('SessionLogLevels', () => {
  it('remembers each session\'s level until its id would expire; a session without one wants everything', async () => {
    const levels = new SessionLogLevels(60_000);
    const a = codec.issue(claims, 1_000);
    const b = codec.issue(claims, 1_000);
    expect(levels.minimumRank(a, 2_000)).toBeUndefined();
    await levels.set(a, 1_000, 'error');
    expect(levels.minimumRank(a, 2_000)).toBe(4);
    expect(levels.minimumRank(b, 2_000)).toBeUndefined();
    await levels.set(a, 1_000, 'debug');
    expect(levels.minimumRank(a, 2_000)).toBe(0);
    expect(levels.minimumRank(a, 61_001)).toBeUndefined();
    expect(levels.size).toBe(0);
  });

  it('with a shared channel, a level set on one replica applies on the others', async () => {
    const join = bus();
    const one = new SessionLogLevels(60_000, join());
    const two = new SessionLogLevels(60_000, join());
    const id = codec.issue(claims, 1_000);
    await one.set(id, 1_000, 'critical');
    expect(two.minimumRank(id, 2_000)).toBe(5);
  });

  it('stays bounded: past its capacity the oldest sessions forget their level', async () => {
    const levels = new SessionLogLevels(60_000, undefined, 2);
    const ids = [1, 2, 3].map(() => codec.issue(claims, 1_000));
    for (const id of ids) await levels.set(id, 1_000, 'alert');
    expect(levels.size).toBe(2);
    expect(ids.map((id) => levels.minimumRank(id, 2_000))).toEqual([undefined, 6, 6]);
  });
});

describe('forwarded session messages', () => {
  it('reads back cancellations and answers, and ignores anything else on the channel', () => {
    expect(readForwardedMessage(JSON.stringify({ kind: 'cancel', tag: 't', requestId: 7, reason: 'no' }))).toEqual({ kind: 'cancel', tag: 't', requestId: 7, reason: 'no' });
    expect(readForwardedMessage(JSON.stringify({ kind: 'answer', tag: 't', id: 'gatehouse-1', result: { ok: 1 } }))).toEqual({ kind: 'answer', tag: 't', id: 'gatehouse-1', result: { ok: 1 } });
    expect(readForwardedMessage(JSON.stringify({ kind: 'answer', tag: 't', id: 'gatehouse-1', error: { code: -1 } }))).toEqual({ kind: 'answer', tag: 't', id: 'gatehouse-1', error: { code: -1 } });
    for (const junk of ['', 'not json', 'null', '[]', '{"kind":"cancel","tag":"t"}', '{"kind":"cancel","tag":"","requestId":1}', '{"kind":"answer","tag":"t","id":3}', '{"kind":"drop","tag":"t"}']) {
      expect(readForwardedMessage(junk)).toBeUndefined();
    }
  });

  it('reads the messages of call streams resumed and subscriptions served through another replica, and refuses malformed ones', () => {
    const read = (message: object) => readForwardedMessage(JSON.stringify(message));
    const resume = { kind: 'stream-resume', tag: 't', stream: 'p.abc', after: 2, from: 'B' };
    expect(read(resume)).toEqual(resume);
    const notify = { kind: 'session-notify', tag: 't', method: 'notifications/resources/updated', params: { uri: 'x+test://a' } };
    expect(read(notify)).toEqual(notify);
    expect(read({ kind: 'session-unsubscribe', tag: 't', uri: 'x+test://a' })).toEqual({ kind: 'session-unsubscribe', tag: 't', uri: 'x+test://a' });
    expect(read({ ...notify, params: [1] })).toBeUndefined();
    const changed = { kind: 'list-changed', gateways: ['gw-1', 'gw-2'], method: 'notifications/tools/list_changed', from: 'A' };
    expect(read(changed)).toEqual(changed);
    for (const junk of [{ ...changed, gateways: 'gw-1' }, { ...changed, gateways: [1] }, { ...changed, method: 'tools/call' }, { ...changed, from: undefined }]) expect(read(junk)).toBeUndefined();
    expect(read({ kind: 'session-unsubscribe', tag: 't' })).toBeUndefined();
    for (const message of [
      { kind: 'stream-attached', to: 'B', stream: 'p.abc', from: 'A' },
      { kind: 'stream-event', to: 'B', stream: 'p.abc', id: 'p.abc.3', data: '{"jsonrpc":"2.0"}' },
      { kind: 'stream-end', to: 'B', stream: 'p.abc' },
      { kind: 'stream-left', to: 'A', stream: 'p.abc', from: 'B' },
    ]) {
      expect(read(message)).toEqual(message);
    }
    for (const junk of [
      { ...resume, after: -1 },
      { ...resume, after: 1.5 },
      { ...resume, tag: '' },
      { kind: 'stream-resume', tag: 't', stream: 'p.abc', after: 2 },
      { kind: 'stream-attached', to: 'B', stream: 'p.abc' },
      { kind: 'stream-event', to: 'B', stream: 'p.abc', id: 'p.abc.3' },
      { kind: 'stream-left', to: 'A', stream: 'p.abc' },
      { kind: 'stream-other', to: 'A', stream: 'p.abc' },
    ]) {
      expect(read(junk)).toBeUndefined();
    }
  });
});
