import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDataPlane, type DataPlane } from '../../../data-plane/app.js';
import { processMetrics } from '../../../data-plane/ops/metrics.js';
import { InMemorySnapshotSource } from '../../../data-plane/snapshot/snapshot-source.js';
import { hashFeatureDefinition } from '../../../schema/snapshot/index.js';
import { startEverythingHttp, type RunningServer } from '../../fixtures/mcp/spawn.js';
import { TOKENS, fixtureSnapshot } from '../../unit/data-plane/fixtures.js';

const SECRET = 'metrics-test-session-secret-0123456789abcdef';

let everything: RunningServer;
let plane: DataPlane;
let limited: DataPlane;
let url: string;
let limitedUrl: string;

beforeAll(async () => {
  everything = await startEverythingHttp();
  const probe = new Client({ name: 'probe', version: '1' });
  await probe.connect(new StreamableHTTPClientTransport(new URL(everything.url)));
  const echo = (await probe.listTools()).tools.find((tool) => tool.name === 'echo')!;
  await probe.close();
  const snapshots = new InMemorySnapshotSource();
  snapshots.offer(
    fixtureSnapshot({
      httpUpstream: { kind: 'remote', url: everything.url, transport: 'streamable-http', allowInsecure: false },
      liveHashes: { 'tools:echo': hashFeatureDefinition('tools', echo as Record<string, unknown>) },
    }),
  );
  plane = buildDataPlane({ port: 0, sessionSecret: SECRET, listTimeoutMs: 1_000 }, { snapshots });
  url = (await plane.listen()).url;
  limited = buildDataPlane({ port: 0, sessionSecret: SECRET, rateLimit: { perIp: { capacity: 1, refillPerSecond: 0.01 } } }, { snapshots });
  limitedUrl = (await limited.listen()).url;
}, 60_000);

afterAll(async () => {
  await plane?.close();
  await limited?.close();
  await everything?.close();
});

/** `name{labels} value` lines of the exposition, as a map. */
function parse(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

describe('/metrics', () => {
  it('counts calls, errors, latency, upstream health, snapshot version and rate-limit refusals', async () => {
    const transport = new StreamableHTTPClientTransport(new URL(`${url}/mcp/eng`), { requestInit: { headers: { Authorization: `Bearer ${TOKENS.eng}` } } });
    const client = new Client({ name: 'metrics-test', version: '1' });
    await client.connect(transport);
    await client.listTools();
    for (let i = 0; i < 3; i++) await client.callTool({ name: 'web__echo', arguments: { message: `m${i}` } });
    await expect(client.callTool({ name: 'web__nope', arguments: {} })).rejects.toThrow();
    await transport.terminateSession();
    await client.close();
    const anonymous = await fetch(`${url}/mcp/eng`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: '{}' });
    expect(anonymous.status).toBe(401);
    for (let i = 0; i < 2; i++) await fetch(`${limitedUrl}/mcp/eng`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: '{}' });

    const response = await fetch(`${url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const samples = parse(await response.text());
    const value = (key: string) => samples.get(key) ?? 0;

    expect(value('gatehouse_data_plane_calls_total{gateway="eng",method="initialize",outcome="ok"}')).toBeGreaterThanOrEqual(1);
    expect(value('gatehouse_data_plane_calls_total{gateway="eng",method="tools/list",outcome="ok"}')).toBeGreaterThanOrEqual(1);
    expect(value('gatehouse_data_plane_calls_total{gateway="eng",method="tools/call",outcome="ok"}')).toBe(3);
    expect(value('gatehouse_data_plane_calls_total{gateway="eng",method="tools/call",outcome="error"}')).toBe(1);
    expect(value('gatehouse_data_plane_errors_total{gateway="eng",method="tools/call",code="-32602"}')).toBe(1);
    expect(value('gatehouse_data_plane_calls_total{gateway="eng",method="http:POST",outcome="refused"}')).toBeGreaterThanOrEqual(2);
    expect(value('gatehouse_data_plane_errors_total{gateway="eng",method="http:POST",code="-32051"}')).toBeGreaterThanOrEqual(2);
    expect(value('gatehouse_data_plane_request_duration_seconds_count{gateway="eng",method="tools/call"}')).toBe(4);
    expect(value('gatehouse_data_plane_request_duration_seconds_bucket{le="+Inf",gateway="eng",method="tools/call"}')).toBe(4);
    expect(value('gatehouse_data_plane_rate_limited_total{scope="ip"}')).toBe(1);
    expect(value('gatehouse_data_plane_snapshot_version')).toBe(1);
    expect(value('gatehouse_data_plane_upstream_up{gateway="eng",server="Everything (HTTP)",assignment="asg-http"}')).toBe(1);
    expect(samples.has('gatehouse_data_plane_upstream_up{gateway="eng",server="Dead server",assignment="asg-dead"}')).toBe(true);
    expect(value('gatehouse_data_plane_upstream_up{gateway="eng",server="Dead server",assignment="asg-dead"}')).toBe(0);
    expect(value('gatehouse_data_plane_process_resident_memory_bytes')).toBeGreaterThan(0);
  });

  it('creates the metrics once per process and keeps labels bounded', async () => {
    expect(processMetrics()).toBe(processMetrics());
    const response = await fetch(`${url}/mcp/${'x'.repeat(40)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', authorization: `Bearer ${TOKENS.eng}` },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'made/up' }),
    });
    expect(response.status).toBe(404);
    const text = await (await fetch(`${url}/metrics`)).text();
    expect(text).not.toContain('x'.repeat(40));
    expect(text).toContain('gateway="(unknown)"');
  });
});
