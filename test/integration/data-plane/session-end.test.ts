import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDataPlane, type DataPlane } from '../../../data-plane/app.js';
import { RedisSessionState } from '../../../data-plane/mcp/session-state-redis.js';
import { silentLogger } from '../../../data-plane/logger.js';
import { SessionLogLevels } from '../../../data-plane/mcp/session-log-levels.js';
import { InMemorySnapshotSource } from '../../../data-plane/snapshot/snapshot-source.js';
import { fixtureSnapshot } from '../../unit/data-plane/fixtures.js';
import { TOKENS, postMcp, rawSession } from './proxy-helpers.js';

const SECRET = 'session-end-session-secret-0123456789abcdef';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const snapshots = new InMemorySnapshotSource();
const planes: DataPlane[] = [];

beforeAll(async () => {
  snapshots.offer(fixtureSnapshot());
  // Fail with a clear message when no Redis is reachable, rather than a timeout later.
  const probe = new RedisSessionState({ url: REDIS_URL, logger: silentLogger() });
  try {
    await probe.ready(3_000);
  } finally {
    await probe.close();
  }
});

afterAll(async () => {
  for (const plane of planes) await plane.close();
});

async function start(redisUrl: string | undefined): Promise<string> {
  // Session ids are random, so runs sharing one Redis never collide.
  const plane = buildDataPlane({ port: 0, sessionSecret: SECRET, ...(redisUrl ? { redisUrl } : {}) }, { snapshots });
  planes.push(plane);
  return (await plane.listen()).url;
}

function ping(url: string, session: string): Promise<Response> {
  return postMcp(url, { jsonrpc: '2.0', id: randomUUID(), method: 'ping' }, { 'mcp-session-id': session });
}

function remove(url: string, session: string): Promise<Response> {
  return fetch(`${url}/mcp/eng`, { method: 'DELETE', headers: { authorization: `Bearer ${TOKENS.eng}`, 'mcp-session-id': session } });
}

async function statusWithin(url: string, session: string, status: number, ms: number): Promise<number> {
  const deadline = Date.now() + ms;
  for (;;) {
    const got = (await ping(url, session)).status;
    if (got === status || Date.now() > deadline) return got;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('ending a session across replicas', () => {
  it('with Redis: a DELETE on one replica ends the session on every replica, including one started later', async () => {
    const a = await start(REDIS_URL);
    const b = await start(REDIS_URL);
    const session = await rawSession(a);
    expect((await ping(b, session)).status).toBe(200);

    expect((await remove(a, session)).status).toBe(200);
    expect((await ping(a, session)).status).toBe(404);
    // Pushed over pub/sub: on the other replica within moments of the DELETE's answer.
    expect(await statusWithin(b, session, 404, 1_000)).toBe(404);
    const ended = await ping(b, session);
    expect(await ended.json()).toMatchObject({ error: { code: -32600, message: 'the session is unknown, expired or ended; initialize a new session' } });

    // A replica that was not running at the DELETE learns it from Redis when it connects.
    const c = await start(REDIS_URL);
    expect(await statusWithin(c, session, 404, 3_000)).toBe(404);

    // Other sessions are untouched.
    const other = await rawSession(b);
    expect((await ping(a, other)).status).toBe(200);
  });

  it('without Redis: the session ends on the replica that got the DELETE only (documented)', async () => {
    const a = await start(undefined);
    const b = await start(undefined);
    const session = await rawSession(a);
    expect((await remove(a, session)).status).toBe(200);
    expect((await ping(a, session)).status).toBe(404);
    expect((await ping(b, session)).status).toBe(200);
  });
});

describe('session log levels across replicas (Redis)', () => {
  it('a level set on one replica reaches the others, including one that connects later', async () => {
    const states = [0, 1].map(() => new RedisSessionState({ url: REDIS_URL, logger: silentLogger() }));
    const later = () => new RedisSessionState({ url: REDIS_URL, logger: silentLogger() });
    try {
      const [a, b] = states.map((state) => new SessionLogLevels(60_000, state));
      await Promise.all(states.map((state) => state.ready()));
      const session = `v2.${randomUUID()}.${randomUUID()}`; // a unique tag per run
      const now = Date.now();
      await a!.set(session, now, 'error');
      expect(a!.minimumRank(session, now)).toBe(4);
      const deadline = Date.now() + 1_000;
      while (b!.minimumRank(session, now) === undefined && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(b!.minimumRank(session, now)).toBe(4);
      // Started after the level was set: learns it from the keys when it connects.
      const state = later();
      states.push(state);
      const c = new SessionLogLevels(60_000, state);
      const until = Date.now() + 3_000;
      while (c.minimumRank(session, now) === undefined && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(c.minimumRank(session, now)).toBe(4);
    } finally {
      for (const state of states) await state.close();
    }
  });
});
