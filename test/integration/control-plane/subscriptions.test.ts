import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Database } from '../../../control-plane/db/database.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { createWorkspaceWithOwner, keyWithRole, ok, startTestControlPlane, type TestControlPlane } from '../../helpers/control-plane.js';

let tdb: TestDatabase;
let cp: TestControlPlane;
let second: TestControlPlane;
let secondDb: Database | undefined;
const clients: Client[] = [];

beforeAll(async () => {
  tdb = await createTestDatabase();
  cp = await startTestControlPlane(tdb.database);
  // A second control-plane process on the same database: its own connection pool and LISTEN
  // connection on Postgres; on PGlite (one process only) the same embedded instance.
  secondDb = tdb.url ? await tdb.openAnother() : undefined;
  second = await startTestControlPlane(secondDb ?? tdb.database);
});
afterAll(async () => {
  for (const c of clients) await c.dispose();
  await second?.close();
  await secondDb?.close();
  await cp?.close();
  await tdb?.drop();
});

function client(url: string, key: string): Client {
  const c = createClient({ url, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${key}` }, retryAttempts: 0, lazy: true });
  clients.push(c);
  return c;
}

/** Collects events of a subscription until `count` arrived; resolves them. */
function collect(c: Client, query: string, count: number): { done: Promise<any[]>; ready: Promise<void> } {
  const events: any[] = [];
  let ready!: () => void;
  const readyP = new Promise<void>((r) => (ready = r));
  const done = new Promise<any[]>((resolve, reject) => {
    const unsubscribe = c.subscribe(
      { query },
      {
        next: (msg) => {
          if (msg.errors) return reject(new Error(JSON.stringify(msg.errors)));
          events.push(msg.data);
          if (events.length >= count) {
            unsubscribe();
            resolve(events);
          }
        },
        error: reject,
        complete: () => resolve(events),
      },
    );
  });
  // graphql-ws has no "subscribed" ack; the server registers the subscription right after the socket opens.
  c.on('connected', () => setTimeout(ready, 100));
  return { done, ready: readyP };
}

const SUB = `subscription { workspaceEvents { type subjectType actor details } }`;

describe('workspaceEvents subscription over graphql-ws', () => {
  it('delivers an event to a real client after a mutation', async () => {
    const sub = collect(client(cp.wsUrl, cp.ownerKey), SUB, 1);
    await sub.ready;
    ok(await cp.gql(`mutation { createTeam(input: { name: "Live" }) { __typename } }`));
    const [event] = await sub.done;
    expect(event.workspaceEvents).toMatchObject({ type: 'team.created', subjectType: 'Team', details: { name: 'Live' } });
    expect(event.workspaceEvents.actor).toMatch(/^api_key:/);
  });

  it('delivers a change committed through another control-plane process', async () => {
    const sub = collect(client(second.wsUrl, second.ownerKey), SUB, 1);
    await sub.ready;
    ok(await cp.gql(`mutation { createTeam(input: { name: "Across processes" }) { __typename } }`));
    const [event] = await sub.done;
    expect(event.workspaceEvents).toMatchObject({ type: 'team.created', details: { name: 'Across processes' } });
  });

  it('keeps workspaces apart', async () => {
    const b = await createWorkspaceWithOwner(tdb.database, 'Other');
    const subB = collect(client(cp.wsUrl, b.ownerKey), SUB, 1);
    await subB.ready;
    ok(await cp.gql(`mutation { createTeam(input: { name: "Only in A" }) { __typename } }`));
    ok(await cp.gql(`mutation { createTeam(input: { name: "Only in B" }) { __typename } }`, {}, b.ownerKey));
    const [event] = await subB.done;
    expect(event.workspaceEvents.details).toEqual({ name: 'Only in B' });
  });

  it('authenticates the socket: an unknown key is closed with 4403', async () => {
    const c = client(cp.wsUrl, 'gh_admin_' + 'x'.repeat(43));
    const closed = new Promise<number>((resolve) => c.on('closed', (e) => resolve((e as { code: number }).code)));
    c.subscribe({ query: SUB }, { next: () => undefined, error: () => undefined, complete: () => undefined });
    expect(await closed).toBe(4403);
  });

  it('checks the capability on subscribe', async () => {
    const member = await keyWithRole(cp, 'Member');
    const c = client(cp.wsUrl, member);
    const result = await new Promise<any>((resolve) => {
      c.subscribe({ query: SUB }, { next: (m) => resolve(m), error: (e) => resolve({ error: e }), complete: () => resolve({ complete: true }) });
    });
    const errors = result.errors ?? result.error;
    expect(JSON.stringify(errors)).toContain('FORBIDDEN');
    expect(JSON.stringify(errors)).toContain('logging.view');
  });
});
