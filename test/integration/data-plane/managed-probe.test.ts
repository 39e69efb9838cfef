import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDataPlane, type DataPlane } from '../../../data-plane/app.js';
import { InMemorySnapshotSource } from '../../../data-plane/snapshot/snapshot-source.js';
import { freePort, isProcessAlive } from '../../fixtures/mcp/spawn.js';
import { captureLogs, connectClient, eventually, fixtureLaunch, parseMetrics, proxySnapshot, textOf, type ServerSetup } from './proxy-helpers.js';

/**
 * The health probe of managed servers behind a real data plane: a managed server that is
 * alive but hung (its `hang` tool blocks its event loop) is pinged once idle, found hung
 * after two unanswered pings, killed and restarted by the supervisor, and the next call
 * through the gateway, with the SDK's real client, is served by the new process.
 */

const SECRET = 'managed-probe-session-secret-0123456789abcdef';
const TOOLS = ['whoami', 'hang'];
const PROBE = { intervalMs: 200, timeoutMs: 200, failures: 2 };

let snapshots: InMemorySnapshotSource;
let plane: DataPlane;
let baseUrl: string;
let logs: ReturnType<typeof captureLogs>;
const renewed: string[] = [];

beforeAll(async () => {
  const httpPort = await freePort();
  const stdio: ServerSetup = { upstream: { kind: 'managed-stdio', ...fixtureLaunch('supervised-server'), env: {}, secretEnv: {}, cwd: null }, tools: TOOLS };
  const http: ServerSetup = {
    upstream: { kind: 'managed-http', ...fixtureLaunch('supervised-server'), env: { FIXTURE_HTTP_FROM_PORT: '1' }, secretEnv: {}, cwd: null, url: `http://127.0.0.1:${httpPort}/mcp` },
    tools: TOOLS,
  };
  snapshots = new InMemorySnapshotSource();
  snapshots.offer(proxySnapshot({ 'srv-stdio': stdio, 'srv-http': http }));
  logs = captureLogs();
  plane = buildDataPlane({ port: 0, sessionSecret: SECRET, callTimeoutMs: 10_000, managedProbe: PROBE }, { snapshots, logger: logs.logger });
  plane.pool.onSessionRenewed((key) => renewed.push(key));
  baseUrl = (await plane.listen()).url;
}, 60_000);

afterAll(async () => {
  await plane?.close();
});

async function call(tool: string): Promise<string> {
  const { client, close } = await connectClient(baseUrl);
  try {
    const result = await client.callTool({ name: tool, arguments: {} });
    if (result.isError) throw new Error(textOf(result));
    return textOf(result);
  } finally {
    await close();
  }
}

const pidOf = async (tool: string) => (JSON.parse(await call(tool)) as { pid: number }).pid;

function entryKey(assignmentId: string): string {
  return snapshots.current()!.gatewaysBySlug.get('eng')!.entries.find((entry) => entry.assignment.id === assignmentId)!.upstreamKey;
}

async function metric(name: string, assignment: string, server: string): Promise<number | undefined> {
  const metrics = parseMetrics(await (await fetch(`${baseUrl}/metrics`)).text());
  return metrics.get(`${name}{gateway="eng",server="${server}",assignment="${assignment}"}`);
}

describe('health probe of managed servers', () => {
  for (const [kind, tool, assignment] of [['stdio', 'local__whoami', 'asg-stdio'], ['HTTP', 'web__whoami', 'asg-http']] as const) {
    it(`leaves a healthy idle ${kind} server alone: it answers the pings and keeps its process`, async () => {
      const pid = await pidOf(tool);
      const connection = plane.pool.peek(entryKey(assignment))!;
      await eventually(async () => expect(connection.probesSent).toBeGreaterThanOrEqual(2), 3_000, 50);
      expect(connection.probeFailures).toBe(0);
      expect(connection.hangRestarts).toBe(0);
      expect(connection.processId).toBe(pid);
    });
  }

  it('restarts a hung stdio server; the next call is served by the new process, and the metrics count it', async () => {
    const key = entryKey('asg-stdio');
    const connection = plane.pool.peek(key)!;
    const before = await pidOf('local__whoami');
    const renewals = renewed.length;
    expect(await call('local__hang')).toBe('hanging');
    await eventually(async () => expect(connection.hangRestarts).toBe(1), 4_000, 50);
    await eventually(async () => expect(isProcessAlive(before)).toBe(false), 3_000, 50);

    const after = await pidOf('local__whoami');
    expect(after).not.toBe(before);
    expect(connection.processId).toBe(after);
    expect(connection.probeFailures).toBe(2);
    expect(connection.processRestarts).toBe(1);
    // The new session went through the renewal path (subscriptions are renewed there).
    expect(renewed.slice(renewals)).toContain(key);
    // Probes stay outside the circuit breaker.
    expect(connection.circuitState).toBe('closed');
    expect(connection.breaker.consecutiveFailures).toBe(0);

    const server = 'Everything (stdio)';
    expect(await metric('gatehouse_data_plane_managed_process_hang_restarts', 'asg-stdio', server)).toBe(1);
    expect(await metric('gatehouse_data_plane_managed_probe_failures', 'asg-stdio', server)).toBe(2);
    expect(await metric('gatehouse_data_plane_managed_process_restarts', 'asg-stdio', server)).toBe(1);
    expect(await metric('gatehouse_data_plane_upstream_circuit_state', 'asg-stdio', server)).toBe(0);
    const warning = logs.lines().find((line) => line.msg === 'restarting a managed server process' && line.pid === before);
    expect(warning).toMatchObject({ level: 40, server, reason: expect.stringMatching(/^it is hung: it answered none of 2 pings in a row \(last: no answer within 200 ms\)$/) });
  });

  it('restarts a hung managed HTTP server the same way', async () => {
    const key = entryKey('asg-http');
    const before = await pidOf('web__whoami');
    const connection = plane.pool.peek(key)!;
    expect(await call('web__hang')).toBe('hanging');
    await eventually(async () => expect(connection.hangRestarts).toBe(1), 4_000, 50);
    const after = await eventually(() => pidOf('web__whoami'), 8_000);
    expect(after).not.toBe(before);
    expect(isProcessAlive(before)).toBe(false);
    expect(connection.probeFailures).toBe(2);
    expect(await metric('gatehouse_data_plane_managed_process_hang_restarts', 'asg-http', 'Everything (HTTP)')).toBe(1);
  }, 15_000);
});
