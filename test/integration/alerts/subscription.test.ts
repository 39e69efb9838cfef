import { randomUUID } from 'node:crypto';
import { createClient, type Client } from 'graphql-ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { RaiseAlertInput } from '../../../control-plane/alerts/alert.service.js';
import type { Database } from '../../../control-plane/db/database.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { createWorkspaceWithOwner, keyWithRole, ok, startTestControlPlane, type TestControlPlane } from '../../helpers/control-plane.js';

let tdb: TestDatabase;
/** Where alerts are raised. */
let cp: TestControlPlane;
/** Another control-plane process on the same database, where subscribers connect. */
let second: TestControlPlane;
let secondDb: Database | undefined;
const clients: Client[] = [];

beforeAll(async () => {
  tdb = await createTestDatabase();
  cp = await startTestControlPlane(tdb.database);
  // Its own pool and LISTEN connection on Postgres; on PGlite (one process only) the same instance.
  secondDb = tdb.url ? await tdb.openAnother() : undefined;
  second = await startTestControlPlane(secondDb ?? tdb.database);
});
// Every test closes what it opens; waiting here keeps each test's readiness checks exact.
afterEach(async () => {
  await expect.poll(() => second.app.services.alerts.subscriberCount, { timeout: 5_000 }).toBe(0);
});
afterAll(async () => {
  for (const c of clients) await c.dispose();
  await second?.close();
  await secondDb?.close();
  await cp?.close();
  await tdb?.drop();
});

const SUB = `subscription($min: AlertSeverity, $types: [AlertType!]) {
  alerts(severityAtLeast: $min, types: $types) { change alert { id type severity state subject count details } }
}`;

function client(url: string, key: string): Client {
  const c = createClient({ url, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${key}` }, retryAttempts: 0, lazy: true });
  clients.push(c);
  return c;
}

interface Stream {
  readonly events: any[];
  readonly errors: any[];
  /** Resolves when the server completes the stream (or it errors). */
  readonly ended: Promise<void>;
  /** Resolves once the server holds the subscription (the alert stream is open in its process). */
  ready(): Promise<void>;
  next(predicate?: (e: any) => boolean, timeoutMs?: number): Promise<any>;
  unsubscribe(): void;
}

/** Subscribes and records every message; `ready` waits until the subscribing process counts the stream. */
function subscribe(c: Client, variables: Record<string, unknown> = {}, on: TestControlPlane = second): Stream {
  const events: any[] = [];
  const errors: any[] = [];
  const waiters: { predicate: (e: any) => boolean; resolve: (e: any) => void }[] = [];
  const before = on.app.services.alerts.subscriberCount;
  let endedResolve!: () => void;
  const ended = new Promise<void>((r) => (endedResolve = r));
  const unsubscribe = c.subscribe(
    { query: SUB, variables },
    {
      next: (msg) => {
        if (msg.errors) errors.push(...msg.errors);
        if (!msg.data) return;
        const event = (msg.data as any).alerts;
        events.push(event);
        for (const w of [...waiters]) {
          if (w.predicate(event)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(event);
          }
        }
      },
      error: (e) => {
        errors.push(e);
        endedResolve();
      },
      complete: () => endedResolve(),
    },
  );
  return {
    events,
    errors,
    ended,
    ready: async () => {
      await expect.poll(() => on.app.services.alerts.subscriberCount, { timeout: 5_000, interval: 10 }).toBeGreaterThan(before);
    },
    next(predicate = () => true, timeoutMs = 5_000) {
      const found = events.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching alert event within ${timeoutMs} ms; got ${JSON.stringify(events)}`)), timeoutMs);
        waiters.push({ predicate, resolve: (e) => (clearTimeout(timer), resolve(e)) });
      });
    },
    unsubscribe,
  };
}

const raise = (over: Partial<RaiseAlertInput> = {}) =>
  cp.app.services.alerts.raise({
    workspaceId: cp.workspaceId,
    type: 'UPSTREAM_OUTAGE',
    severity: 'error',
    subject: 'Server crm cannot be reached',
    foldKey: randomUUID(),
    ...over,
  });

describe('alerts subscription over graphql-ws, across control-plane processes', () => {
  it('delivers an alert raised in another process, then its fold, acknowledgement and resolution', async () => {
    const stream = subscribe(client(second.wsUrl, second.ownerKey));
    await stream.ready();
    const foldKey = randomUUID();
    const raised = await raise({ foldKey, subject: 'Cross-process outage', details: { code: 'CONNECT_FAILED' } });
    const first = await stream.next((e) => e.alert.subject === 'Cross-process outage');
    expect(first).toMatchObject({ change: 'RAISED', alert: { type: 'UPSTREAM_OUTAGE', severity: 'ERROR', state: 'OPEN', count: 1, details: { code: 'CONNECT_FAILED' } } });

    await raise({ foldKey, subject: 'Cross-process outage' });
    expect(await stream.next((e) => e.change === 'UPDATED' && e.alert.id === first.alert.id)).toMatchObject({ alert: { count: 2 } });

    // Acknowledged and resolved through the GraphQL API of the first process.
    const id = first.alert.id;
    expect(ok(await cp.gql(`mutation($id: ID!) { acknowledgeAlert(id: $id) { __typename } }`, { id })).acknowledgeAlert.__typename).toBe('AcknowledgeAlertSuccess');
    expect(await stream.next((e) => e.change === 'ACKNOWLEDGED' && e.alert.id === id)).toMatchObject({ alert: { state: 'ACKNOWLEDGED' } });
    expect(ok(await cp.gql(`mutation($id: ID!) { resolveAlert(id: $id) { __typename } }`, { id })).resolveAlert.__typename).toBe('ResolveAlertSuccess');
    expect(await stream.next((e) => e.change === 'RESOLVED' && e.alert.id === id)).toMatchObject({ alert: { state: 'RESOLVED', count: 2 } });
    expect(raised.id).toBe(Buffer.from(id, 'base64url').toString().split(':')[1]);
    stream.unsubscribe();
  });

  it('filters by severity and type on the server', async () => {
    const errorsOnly = subscribe(client(second.wsUrl, second.ownerKey), { min: 'ERROR' });
    await errorsOnly.ready();
    const pinsOnly = subscribe(client(second.wsUrl, second.ownerKey), { types: ['PIN_VIOLATION'] });
    await pinsOnly.ready();
    const tag = randomUUID();
    await raise({ severity: 'info', type: 'FEATURE_DISCOVERED', subject: `info ${tag}` });
    await raise({ severity: 'warning', type: 'PIN_VIOLATION', subject: `pin ${tag}` });
    await raise({ severity: 'error', type: 'SNAPSHOT_REJECTED', subject: `error ${tag}` });
    await errorsOnly.next((e) => e.alert.subject === `error ${tag}`);
    await pinsOnly.next((e) => e.alert.subject === `pin ${tag}`);
    expect(errorsOnly.events.filter((e) => e.alert.subject.endsWith(tag)).map((e) => e.alert.subject)).toEqual([`error ${tag}`]);
    expect(pinsOnly.events.filter((e) => e.alert.subject.endsWith(tag)).map((e) => e.alert.subject)).toEqual([`pin ${tag}`]);
    errorsOnly.unsubscribe();
    pinsOnly.unsubscribe();
  });

  it('keeps workspaces apart', async () => {
    const b = await createWorkspaceWithOwner(tdb.database, `B ${randomUUID()}`);
    const inB = subscribe(client(second.wsUrl, b.ownerKey));
    await inB.ready();
    const inA = subscribe(client(second.wsUrl, second.ownerKey));
    await inA.ready();
    await raise({ subject: 'only in A' });
    await raise({ workspaceId: b.workspaceId, subject: 'only in B' });
    await inB.next((e) => e.alert.subject === 'only in B');
    await inA.next((e) => e.alert.subject === 'only in A');
    expect(inB.events.map((e) => e.alert.subject)).toEqual(['only in B']);
    expect(inA.events.map((e) => e.alert.subject)).not.toContain('only in B');
    inB.unsubscribe();
    inA.unsubscribe();
  });

  it('refuses a key without alerting.view with a typed FORBIDDEN error', async () => {
    const member = await keyWithRole(cp, 'Member');
    const stream = subscribe(client(second.wsUrl, member));
    await stream.ended;
    expect(stream.events).toEqual([]);
    expect(JSON.stringify(stream.errors)).toContain('FORBIDDEN');
    expect(JSON.stringify(stream.errors)).toContain('alerting.view');
  });

  it('ends the stream with FORBIDDEN when the key is revoked or its role loses alerting.view', async () => {
    const roleId = ok(
      await cp.gql(`mutation { createRole(input: { name: "Alert watcher ${randomUUID().slice(0, 8)}", capabilities: ["alerting.view"] }) { ... on CreateRoleSuccess { role { id } } } }`),
    ).createRole.role.id;
    const mint = async () =>
      ok(
        await cp.gql(`mutation($r: ID!) { createApiKey(input: { name: "watcher", roleId: $r }) { ... on CreateApiKeySuccess { created { secret apiKey { id } } } } }`, { r: roleId }),
      ).createApiKey.created;

    const revokedKey = await mint();
    const byRevocation = subscribe(client(second.wsUrl, revokedKey.secret));
    await byRevocation.ready();
    await raise({ subject: 'seen before revocation' });
    await byRevocation.next((e) => e.alert.subject === 'seen before revocation');
    ok(await cp.gql(`mutation($id: ID!) { revokeApiKey(id: $id) { __typename } }`, { id: revokedKey.apiKey.id }));
    await byRevocation.ended;
    expect(JSON.stringify(byRevocation.errors)).toMatch(/FORBIDDEN.*revoked|revoked.*FORBIDDEN/);

    const roleKey = await mint();
    const byRole = subscribe(client(second.wsUrl, roleKey.secret));
    await byRole.ready();
    ok(await cp.gql(`mutation($id: ID!) { updateRole(id: $id, input: { capabilities: ["people.view"] }) { __typename } }`, { id: roleId }));
    await byRole.ended;
    expect(JSON.stringify(byRole.errors)).toContain('no longer has alerting.view');
    await raise({ subject: 'after the role changed' });
    await new Promise((r) => setTimeout(r, 100));
    expect(byRole.events.map((e) => e.alert.subject)).not.toContain('after the role changed');
  });
});

describe('subscribers that go away', () => {
  it('a subscriber that drops its socket mid-stream releases its stream; the process keeps serving', async () => {
    const baseline = 0;
    // Raw sockets speaking graphql-transport-ws, cut at the TCP level mid-stream.
    const sockets = await Promise.all(Array.from({ length: 3 }, () => rawSubscriber(second.wsUrl, second.ownerKey)));
    await expect.poll(() => second.app.services.alerts.subscriberCount, { timeout: 5_000 }).toBe(baseline + 3);
    const flood = (async () => {
      for (let i = 0; i < 40; i++) await raise({ subject: `flood ${i}` });
    })();
    await expect.poll(() => sockets.every((s) => s.received > 0), { timeout: 5_000 }).toBe(true);
    for (const s of sockets) s.socket.terminate();
    await flood;
    await expect.poll(() => second.app.services.alerts.subscriberCount, { timeout: 5_000 }).toBe(baseline);

    // A graphql-ws client that disposes mid-stream (complete + close) releases its stream too.
    const c = client(second.wsUrl, second.ownerKey);
    const stream = subscribe(c);
    await stream.ready();
    await raise({ subject: 'before dispose' });
    await stream.next((e) => e.alert.subject === 'before dispose');
    await c.dispose();
    await expect.poll(() => second.app.services.alerts.subscriberCount, { timeout: 5_000 }).toBe(baseline);

    const fresh = subscribe(client(second.wsUrl, second.ownerKey));
    await fresh.ready();
    await raise({ subject: 'after the drops' });
    expect(await fresh.next((e) => e.alert.subject === 'after the drops')).toMatchObject({ change: 'RAISED' });
    fresh.unsubscribe();
    await expect.poll(() => second.app.services.alerts.subscriberCount, { timeout: 5_000 }).toBe(baseline);
  });
});

/** A bare graphql-transport-ws client: connection_init, subscribe, count `next` messages. */
async function rawSubscriber(url: string, key: string): Promise<{ socket: WebSocket; received: number }> {
  const socket = new WebSocket(url, 'graphql-transport-ws');
  const state = { socket, received: 0 };
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.once('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${key}` } })));
    socket.on('message', (data) => {
      const msg = JSON.parse(String(data)) as { type: string };
      if (msg.type === 'connection_ack') {
        socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: SUB } }));
        resolve();
      } else if (msg.type === 'next') state.received++;
    });
  });
  return state;
}
