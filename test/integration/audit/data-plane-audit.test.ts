import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { buildDataPlane, type DataPlane } from '../../../data-plane/app.js';
import { AuditShipper } from '../../../data-plane/audit/shipper.js';
import { AuditShipError, MemoryAuditTransport } from '../../../data-plane/audit/transport.js';
import { InMemorySnapshotSource } from '../../../data-plane/snapshot/snapshot-source.js';
import type { AuditEntry } from '../../../schema/audit/types.js';
import { auditEntrySchema } from '../../../schema/audit/validate.js';
import { hashFeatureDefinition } from '../../../schema/snapshot/index.js';
import { freePort, startEverythingHttp, type RunningServer } from '../../fixtures/mcp/spawn.js';
import { TOKENS, fixtureSnapshot } from '../../unit/data-plane/fixtures.js';

const SECRET = 'audit-data-plane-session-secret-0123456789';
const JSON_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
const MAX_BODY = 2048;

let everything: RunningServer;
const snapshots = new InMemorySnapshotSource();
const transport = new MemoryAuditTransport();
let plane: DataPlane;
let url: string;
const clients: { client: Client; transport: StreamableHTTPClientTransport }[] = [];

beforeAll(async () => {
  everything = await startEverythingHttp();
  const probe = new Client({ name: 'probe', version: '1' });
  await probe.connect(new StreamableHTTPClientTransport(new URL(everything.url)));
  const echo = (await probe.listTools()).tools.find((tool) => tool.name === 'echo')!;
  await probe.close();
  const deadPort = await freePort();
  snapshots.offer(
    fixtureSnapshot({
      httpUpstream: { kind: 'remote', url: everything.url, transport: 'streamable-http', allowInsecure: false },
      deadUpstream: { kind: 'remote', url: `http://127.0.0.1:${deadPort}/mcp`, transport: 'streamable-http', allowInsecure: false },
      liveHashes: { 'tools:echo': hashFeatureDefinition('tools', echo as Record<string, unknown>) },
      tweak: (source) => {
        source.gateways = source.gateways.map((gateway) => (gateway.slug === 'eng' ? { ...gateway, audit: { bodies: 'full', maxBodyBytes: MAX_BODY } } : gateway));
      },
    }),
  );
  const audit = new AuditShipper({ transport, flushIntervalMs: 20 });
  plane = buildDataPlane({ port: 0, sessionSecret: SECRET, callTimeoutMs: 5_000 }, { snapshots, audit });
  url = (await plane.listen()).url;
}, 60_000);

afterAll(async () => {
  for (const { client, transport: t } of clients) {
    await t.terminateSession().catch(() => undefined);
    await client.close().catch(() => undefined);
  }
  await plane?.close();
  await everything?.close();
});

async function connect(name = 'audit-client', version = '3.1.4'): Promise<{ client: Client; sessionRef: string }> {
  const t = new StreamableHTTPClientTransport(new URL(`${url}/mcp/eng`), { requestInit: { headers: { Authorization: `Bearer ${TOKENS.eng}` } } });
  const client = new Client({ name, version });
  await client.connect(t);
  clients.push({ client, transport: t });
  return { client, sessionRef: createHash('sha256').update(t.sessionId!).digest('hex').slice(0, 16) };
}

/** Waits until the shipper delivered entries matching `match`, grouped by correlation id. */
async function calls(match: (entry: AuditEntry) => boolean, expected: number): Promise<AuditEntry[][]> {
  let groups: AuditEntry[][] = [];
  await expect
    .poll(
      () => {
        const ids = new Set(transport.entries().filter(match).map((entry) => entry.correlationId));
        groups = [...ids].map((id) => transport.entries().filter((entry) => entry.correlationId === id));
        return groups.length;
      },
      { timeout: 5_000, interval: 25 },
    )
    .toBeGreaterThanOrEqual(expected);
  return groups;
}

const leg = (entries: AuditEntry[], name: AuditEntry['leg']) => entries.find((entry) => entry.leg === name)!;
/** A call's entries without the relayed legs of requests its upstream sent meanwhile. */
const ownLegs = (entries: AuditEntry[]) => entries.filter((entry) => !entry.leg.startsWith('relayed_'));

describe('audit legs recorded by the data plane', () => {
  it('records a tool call as four legs with one correlation id, full bodies scrubbed, tokens and sizes', async () => {
    const { client, sessionRef } = await connect();
    const result = await client.callTool({ name: 'web__echo', arguments: { message: 'hello audit', api_key: 'sk-live-very-secret' } });
    expect(result).toMatchObject({ content: [{ type: 'text', text: 'Echo: hello audit' }] });

    const [all] = await calls((entry) => entry.sessionRef === sessionRef && entry.method === 'tools/call', 1);
    // The call's own legs: a request the upstream sent while it ran (server-everything asks
    // for roots when a session starts) is on the call too, under its own method.
    const entries = ownLegs(all!);
    expect(entries.map((entry) => entry.leg).sort()).toEqual(['client_request', 'client_response', 'upstream_request', 'upstream_response']);
    const ids = new Set(entries!.map((entry) => entry.id));
    expect(ids.size).toBe(4);
    for (const entry of entries!) {
      expect(entry).toMatchObject({
        workspaceId: 'ws-acme',
        gatewayId: 'gw-eng',
        connectionId: 'conn-eng',
        hostId: 'host-cli',
        userId: 'usr-ada',
        serverId: 'srv-http',
        assignmentId: 'asg-http',
        clientName: 'audit-client',
        clientVersion: '3.1.4',
        sessionRef,
        method: 'tools/call',
        featureName: 'web__echo',
        status: 'ok',
        snapshotVersion: 1,
        dataPlaneId: null,
        dataPlaneInstance: expect.stringMatching(/\/\d+\/[0-9a-f]{6}$/),
      });
      expect(entry.body).not.toContain('sk-live-very-secret');
    }
    const request = leg(entries!, 'client_request');
    const upstreamRequest = leg(entries!, 'upstream_request');
    const upstreamResponse = leg(entries!, 'upstream_response');
    const response = leg(entries!, 'client_response');
    const times = [request, upstreamRequest, upstreamResponse, response].map((entry) => Date.parse(entry.occurredAt));
    expect([...times].sort((a, b) => a - b)).toEqual(times);

    expect(JSON.parse(request.body!)).toMatchObject({ method: 'tools/call', params: { name: 'web__echo', arguments: { message: 'hello audit', api_key: '[SCRUBBED]' } } });
    expect(request.headers).toMatchObject({ authorization: '[SCRUBBED]', 'mcp-session-id': '[SCRUBBED]', 'content-type': 'application/json' });
    expect(request.bytesIn).toBeGreaterThan(50);
    expect(request.inputTokens).toBeGreaterThan(5);
    // Upstream names: the namespace prefix is gone on the way up.
    expect(JSON.parse(upstreamRequest.body!)).toMatchObject({ method: 'tools/call', params: { name: 'echo', arguments: { api_key: '[SCRUBBED]' } } });
    expect(upstreamRequest.bytesOut).toBeGreaterThan(20);
    expect(JSON.parse(upstreamResponse.body!)).toMatchObject({ content: [{ type: 'text', text: 'Echo: hello audit' }] });
    expect(upstreamResponse.durationMs).toBeGreaterThan(0);
    expect(upstreamResponse.upstreamMs).toBe(upstreamResponse.durationMs);
    expect(upstreamResponse.outputTokens).toBeGreaterThan(3);

    expect(JSON.parse(response.body!)).toMatchObject({ id: expect.anything(), result: { content: [{ text: 'Echo: hello audit' }] } });
    expect(response.durationMs).toBeGreaterThanOrEqual(upstreamResponse.durationMs!);
    expect(response.upstreamMs).toBeCloseTo(upstreamResponse.durationMs!, 6);
    expect(response.gatewayMs).toBeCloseTo(response.durationMs! - response.upstreamMs!, 6);
    expect(response).toMatchObject({ inputTokens: null, outputTokens: expect.any(Number), bytesIn: null, bytesOut: expect.any(Number), errorCode: null, policyActions: [] });
    expect(response.outputTokens).toBeGreaterThan(3);
    expect(response.bytesOut).toBeGreaterThan(50);
    expect(response.jsonRpcId).toBe(request.jsonRpcId);

    // initialize was answered by the gateway: two client legs, and the session it issued.
    const [init] = await calls((entry) => entry.sessionRef === sessionRef && entry.method === 'initialize', 1);
    expect(init!.map((entry) => entry.leg).sort()).toEqual(['client_request', 'client_response']);
    expect(leg(init!, 'client_response')).toMatchObject({ status: 'ok', clientName: 'audit-client', serverId: null, upstreamMs: null });
  });

  it('cuts bodies at the gateway limit', async () => {
    const { client, sessionRef } = await connect();
    await client.callTool({ name: 'web__echo', arguments: { message: 'é'.repeat(3000) } });
    const [entries] = await calls((entry) => entry.sessionRef === sessionRef && entry.method === 'tools/call', 1);
    for (const entry of entries!.filter((e) => e.body !== null)) {
      expect(Buffer.byteLength(entry.body!)).toBeLessThanOrEqual(MAX_BODY);
      expect(entry.bodyTruncated).toBe(true);
      expect(entry.body).not.toContain('\uFFFD');
    }
  });

  it('records refusals: not provisioned or withheld (blocked, stage:provisioning), an unknown token, bad JSON', async () => {
    const { client, sessionRef } = await connect();
    await expect(client.callTool({ name: 'web__get-sum', arguments: { a: 1, b: 2 } })).rejects.toThrow(/withheld|pin/i);
    await expect(client.callTool({ name: 'nope', arguments: {} })).rejects.toThrow();
    const refusals = await calls((entry) => entry.sessionRef === sessionRef && entry.method === 'tools/call', 2);
    const byFeature = new Map(refusals.map((entries) => [entries[0]!.featureName, entries]));
    const withheld = byFeature.get('web__get-sum')!;
    expect(withheld.map((entry) => entry.leg).sort()).toEqual(['client_request', 'client_response', 'policy_action']);
    expect(leg(withheld, 'client_response')).toMatchObject({
      status: 'blocked',
      errorCode: -32602,
      policyActions: [{ ruleId: 'stage:provisioning', action: 'refuse', findings: ['WITHHELD', 'PIN_MISMATCH'], alert: true }],
    });
    expect(leg(withheld, 'policy_action')).toMatchObject({ status: 'blocked', policyActions: [{ ruleId: 'stage:provisioning' }] });
    expect(leg(byFeature.get('nope')!, 'client_response')).toMatchObject({ status: 'blocked', policyActions: [{ ruleId: 'stage:provisioning', findings: ['NOT_PROVISIONED'], alert: false }] });

    const anonymous = await fetch(`${url}/mcp/eng`, {
      method: 'POST',
      headers: { ...JSON_HEADERS, authorization: 'Bearer gh_at_not-a-real-token-000000000000000', 'user-agent': 'audit-anonymous/1' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(anonymous.status).toBe(401);
    const [unauthenticated] = await calls((entry) => entry.userAgent === 'audit-anonymous/1', 1);
    expect(leg(unauthenticated!, 'client_response')).toMatchObject({
      status: 'blocked',
      gatewayId: 'gw-eng',
      tokenId: null,
      connectionId: null,
      errorCode: -32051,
      policyActions: [{ ruleId: 'stage:authenticate', findings: ['UNAUTHENTICATED'] }],
    });
    expect(leg(unauthenticated!, 'client_request').headers?.authorization).toBe('[SCRUBBED]');

    const malformed = await fetch(`${url}/mcp/eng`, { method: 'POST', headers: { ...JSON_HEADERS, authorization: `Bearer ${TOKENS.eng}`, 'user-agent': 'audit-malformed/1' }, body: '{"jsonrpc":' });
    expect(malformed.status).toBe(400);
    const [bad] = await calls((entry) => entry.userAgent === 'audit-malformed/1', 1);
    expect(leg(bad!, 'client_response')).toMatchObject({ status: 'error', method: null, errorCode: -32700, connectionId: 'conn-eng', policyActions: [{ ruleId: 'stage:input' }] });

    const foreign = await fetch(`${url}/mcp/eng`, {
      method: 'POST',
      headers: { ...JSON_HEADERS, authorization: `Bearer ${TOKENS.eng}`, origin: 'http://evil.example', 'user-agent': 'audit-origin/1' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });
    expect(foreign.status).toBe(403);
    const [origin] = await calls((entry) => entry.userAgent === 'audit-origin/1', 1);
    expect(leg(origin!, 'client_response')).toMatchObject({ status: 'blocked', errorCode: -32000, policyActions: [{ ruleId: 'stage:origin', findings: ['ORIGIN_NOT_ALLOWED'] }] });
  });

  it('records an upstream failure on the upstream response and the client response', async () => {
    const { client, sessionRef } = await connect();
    await expect(client.callTool({ name: 'dead__echo', arguments: { message: 'x' } })).rejects.toThrow();
    const [entries] = await calls((entry) => entry.sessionRef === sessionRef && entry.featureName === 'dead__echo', 1);
    expect(leg(entries!, 'upstream_response')).toMatchObject({ status: 'error', serverId: 'srv-dead', errorCode: -32060, errorMessage: expect.any(String) });
    expect(leg(entries!, 'client_response')).toMatchObject({ status: 'error', errorCode: -32060 });
  });

  it('records each element of a JSON-RPC batch as its own call', async () => {
    const headers = { ...JSON_HEADERS, authorization: `Bearer ${TOKENS.eng}`, 'user-agent': 'audit-batch/1' };
    const init = await fetch(`${url}/mcp/eng`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-03-26', capabilities: {}, clientInfo: { name: 'batcher', version: '1' } } }),
    });
    const session = init.headers.get('mcp-session-id')!;
    const response = await fetch(`${url}/mcp/eng`, {
      method: 'POST',
      headers: { ...headers, 'mcp-session-id': session, 'mcp-protocol-version': '2025-03-26' },
      body: JSON.stringify([
        { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'web__echo', arguments: { message: 'one' } } },
        { jsonrpc: '2.0', id: 2, method: 'ping' },
        { jsonrpc: '2.0', method: 'notifications/initialized' },
      ]),
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toHaveLength(2);
    const groups = await calls((entry) => entry.userAgent === 'audit-batch/1' && entry.method !== 'initialize', 2);
    expect(groups).toHaveLength(2);
    const byMethod = new Map(groups.map((entries) => [entries[0]!.method, ownLegs(entries)]));
    expect(byMethod.get('tools/call')!.map((entry) => entry.leg).sort()).toEqual(['client_request', 'client_response', 'upstream_request', 'upstream_response']);
    expect(byMethod.get('ping')!.map((entry) => entry.leg).sort()).toEqual(['client_request', 'client_response']);
    expect(leg(byMethod.get('tools/call')!, 'client_response')).toMatchObject({ status: 'ok', clientName: 'batcher', jsonRpcId: '1' });
  });

  it('records a list fan-out with an upstream leg pair per upstream it asked, and pings as client legs', async () => {
    const { client, sessionRef } = await connect();
    await client.listTools();
    await client.ping();
    const groups = await calls((entry) => entry.sessionRef === sessionRef && (entry.method === 'tools/list' || entry.method === 'ping'), 2);
    const ping = groups.find((entries) => entries[0]!.method === 'ping')!;
    expect(ping.map((entry) => entry.leg).sort()).toEqual(['client_request', 'client_response']);
    const list = groups.find((entries) => entries[0]!.method === 'tools/list')!;
    const response = leg(list, 'client_response');
    expect(response.outputTokens).toBeGreaterThan(10);
    // eng fans tools/list out to its three assignments: the live HTTP upstream answers, the
    // managed process that exits and the dead port fail; each is a request and a response.
    const upstream = (name: 'upstream_request' | 'upstream_response') => list.filter((entry) => entry.leg === name);
    expect(upstream('upstream_request').map((entry) => entry.serverId).sort()).toEqual(['srv-dead', 'srv-http', 'srv-stdio']);
    expect(upstream('upstream_response').map((entry) => entry.serverId).sort()).toEqual(['srv-dead', 'srv-http', 'srv-stdio']);
    const live = upstream('upstream_response').find((entry) => entry.serverId === 'srv-http')!;
    expect(live).toMatchObject({ status: 'ok', assignmentId: 'asg-http', method: 'tools/list' });
    // Sizes but no token estimates on a fan-out's upstream pages (the client's answer has them).
    expect(live.outputTokens).toBeNull();
    expect(live.bytesIn).toBeGreaterThan(response.bytesOut!); // everything lists more tools than eng serves
    expect(live.body).toContain('"tools"');
    for (const failed of upstream('upstream_response').filter((entry) => entry.serverId !== 'srv-http')) {
      expect(failed.status).toBe('error');
      expect(failed.errorMessage).toMatch(/\S/);
    }
    // The client legs span three upstreams: no single server; the upstream time is the
    // span the legs covered together (they ran in parallel), never more than the call.
    expect(response.serverId).toBeNull();
    expect(response.upstreamMs).toBeGreaterThan(0);
    expect(response.upstreamMs!).toBeLessThanOrEqual(response.durationMs!);
    expect(response.gatewayMs).toBeCloseTo(response.durationMs! - response.upstreamMs!, 6);
  });
});

describe('hostile input', () => {
  it('records whatever clients send within the ingest limits, and never fails to build an entry', async () => {
    const recordedBefore = transport.entries().length;
    const random = (n: number) => Math.floor(Math.random() * n);
    const nasty = ['\ud800', '\u0000', '😀', 'x'.repeat(20_000), '"}', '\\', 'é'];
    const bodies = [
      () => JSON.stringify({ jsonrpc: '2.0', id: 'i'.repeat(random(2000)), method: 'm'.repeat(random(3000)), params: {} }),
      () => JSON.stringify({ jsonrpc: '2.0', id: random(1e9), method: 'tools/call', params: { name: nasty[random(nasty.length)]!.repeat(random(300)), arguments: { password: 'p', v: nasty[random(nasty.length)] } } }),
      () => JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'resources/read', params: { uri: `demo://${'u'.repeat(random(5000))}` } }),
      () => '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"web__echo","arguments":{"message":"\\ud800"}}}',
      () => `{${'['.repeat(random(5000))}`,
      () => JSON.stringify([{ jsonrpc: '2.0', id: 1, method: 'ping' }]),
    ];
    const init = await fetch(`${url}/mcp/eng`, {
      method: 'POST',
      headers: { ...JSON_HEADERS, authorization: `Bearer ${TOKENS.eng}` },
      body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'n'.repeat(500), version: '\ud800' } } }),
    });
    const session = init.headers.get('mcp-session-id')!;
    for (let i = 0; i < 150; i++) {
      const response = await fetch(`${url}/mcp/eng`, {
        method: 'POST',
        headers: { ...JSON_HEADERS, authorization: `Bearer ${TOKENS.eng}`, 'mcp-session-id': session, 'user-agent': `fuzz ${'a'.repeat(random(3000))}`, [`x-${i}`]: 'h'.repeat(random(10_000)) },
        body: bodies[random(bodies.length)]!(),
      });
      await response.text();
    }
    await expect.poll(() => transport.entries().filter((entry) => entry.userAgent?.startsWith('fuzz')).length, { timeout: 5_000 }).toBeGreaterThanOrEqual(300);
    // The fixture's ids are not UUIDs; everything else is checked as the ingest checks it.
    const relaxed = auditEntrySchema.extend(
      Object.fromEntries(['workspaceId', 'gatewayId', 'serverId', 'assignmentId', 'hostId', 'connectionId', 'tokenId', 'userId'].map((key) => [key, z.string().nullable()])),
    );
    const recorded = transport.entries().slice(recordedBefore);
    for (const entry of recorded) {
      const checked = relaxed.safeParse(entry);
      if (!checked.success) throw new Error(`${JSON.stringify(checked.error.issues[0])} in ${JSON.stringify(entry).slice(0, 500)}`);
    }
  });
});

describe('the audit buffer', () => {
  it('is bounded: when the control plane is down it fills, drops new calls with a metric, and never blocks a call', async () => {
    const down = new MemoryAuditTransport();
    down.fail = () => {
      throw new AuditShipError('NETWORK', 'connection refused', { retriable: true });
    };
    const audit = new AuditShipper({ transport: down, maxBufferedEntries: 20, flushIntervalMs: 10, initialRetryDelayMs: 5, maxRetryDelayMs: 20, closeTimeoutMs: 100 });
    const small = buildDataPlane({ port: 0, sessionSecret: SECRET, rateLimit: { perToken: { capacity: 0 } } }, { snapshots, audit });
    const smallUrl = (await small.listen()).url;
    try {
      const t = new StreamableHTTPClientTransport(new URL(`${smallUrl}/mcp/eng`), { requestInit: { headers: { Authorization: `Bearer ${TOKENS.eng}` } } });
      const client = new Client({ name: 'bounded', version: '1' });
      await client.connect(t);
      for (let i = 0; i < 12; i++) {
        expect(await client.callTool({ name: 'web__echo', arguments: { message: `m${i}` } })).toMatchObject({ content: [{ text: `Echo: m${i}` }] });
      }
      expect(audit.buffered()).toBeLessThanOrEqual(20);
      expect(audit.stats.dropped).toBeGreaterThan(0);
      expect(audit.stats.failures).toBeGreaterThan(0);
      // Anonymous refusals are not recorded once the buffer is half full.
      const before = audit.stats.dropped + audit.buffered();
      const anonymous = await fetch(`${smallUrl}/mcp/eng`, { method: 'POST', headers: { ...JSON_HEADERS, authorization: 'Bearer gh_at_nope' }, body: '{}' });
      expect(anonymous.status).toBe(401);
      expect(audit.stats.dropped + audit.buffered()).toBe(before);

      const metrics = await (await fetch(`${smallUrl}/metrics`)).text();
      const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1]);
      expect(Number(/^gatehouse_data_plane_audit_dropped_entries_total\{reason="buffer_full"\} (\S+)$/m.exec(metrics)?.[1])).toBeGreaterThan(0);
      expect(value('gatehouse_data_plane_audit_buffered_entries')).toBeGreaterThan(0);
      expect(value('gatehouse_data_plane_audit_buffer_capacity_entries')).toBeGreaterThanOrEqual(20);
      expect(value('gatehouse_data_plane_audit_ship_failures_total')).toBeGreaterThan(0);

      // The control plane comes back: what was kept ships, and the drops are reported with it.
      down.fail = undefined;
      await expect.poll(() => audit.buffered(), { timeout: 5_000 }).toBe(0);
      expect(down.entries().length).toBeGreaterThan(0);
      expect(down.batches[0]!.droppedEntries).toBe(audit.stats.dropped);
      await t.terminateSession().catch(() => undefined);
      await client.close();
    } finally {
      await small.close();
    }
  });
});
