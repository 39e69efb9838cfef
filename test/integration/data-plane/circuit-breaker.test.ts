import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDataPlane, type DataPlane } from '../../../data-plane/app.js';
import { InMemorySnapshotSource } from '../../../data-plane/snapshot/snapshot-source.js';
import { freePort, stopChild } from '../../fixtures/mcp/spawn.js';
import { connectClient, fixtureLaunch, parseMetrics, proxySnapshot, textOf } from './proxy-helpers.js';

const SECRET = 'circuit-breaker-session-secret-0123456789abcdef';
const COOL_DOWN_MS = 1_500;

let plane: DataPlane;
let baseUrl: string;
let port: number;
let revived: ChildProcess | undefined;

beforeAll(async () => {
  port = await freePort();
  const snapshots = new InMemorySnapshotSource();
  // Nothing listens on the port yet: every call fails to connect.
  snapshots.offer(
    proxySnapshot({ 'srv-dead': { upstream: { kind: 'remote', url: `http://127.0.0.1:${port}/mcp`, transport: 'streamable-http', allowInsecure: false }, tools: ['echo'] } }),
  );
  plane = buildDataPlane({ port: 0, sessionSecret: SECRET, circuitBreaker: { failureThreshold: 3, coolDownMs: COOL_DOWN_MS } }, { snapshots });
  baseUrl = (await plane.listen()).url;
}, 60_000);

afterAll(async () => {
  await plane?.close();
  if (revived) await stopChild(revived);
});

async function callEcho(): Promise<{ result?: unknown; error?: McpError; ms: number }> {
  const { client, close } = await connectClient(baseUrl);
  const started = performance.now();
  try {
    const result = await client.callTool({ name: 'dead__echo', arguments: { text: 'hi' } });
    return { result, ms: performance.now() - started };
  } catch (error) {
    if (!(error instanceof McpError)) throw error;
    return { error, ms: performance.now() - started };
  } finally {
    await close();
  }
}

async function circuitState(): Promise<number | undefined> {
  const metrics = parseMetrics(await (await fetch(`${baseUrl}/metrics`)).text());
  return metrics.get('gatehouse_data_plane_upstream_circuit_state{gateway="eng",server="Dead server",assignment="asg-dead"}');
}

/** Starts the echo fixture on the dead port, as an upstream coming back. */
async function revive(): Promise<ChildProcess> {
  const { command, args } = fixtureLaunch('echo-server', ['--http', String(port)]);
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr?.resume();
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`echo fixture exited with ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith('LISTENING')) resolve();
    });
  });
  return child;
}

describe('circuit breaker per upstream', () => {
  it('opens after consecutive failures and then refuses at once, naming the server and when it retries', async () => {
    for (let i = 0; i < 3; i += 1) {
      const { error } = await callEcho();
      expect(error?.code).toBe(-32060);
      expect(error?.message).toMatch(/server "Dead server" is unreachable/);
    }
    expect(await circuitState()).toBe(2);
    const refused = await callEcho();
    expect(refused.error?.code).toBe(-32060);
    expect(refused.error?.message).toMatch(/server "Dead server" is unavailable after 3 consecutive failures \(last: .*\); the gateway will try it again at \d{4}-\d\d-\d\dT[\d:.]+Z \(in [12] s\)/);
    expect(refused.error?.data).toMatchObject({ code: 'UPSTREAM_UNREACHABLE', server: 'Dead server', circuit: 'open', retryAfterSeconds: expect.any(Number) });
    expect(Date.parse((refused.error?.data as { retryAt: string }).retryAt)).toBeGreaterThan(Date.now());
  });

  it('leaves an open upstream out of lists at once, with the reason', async () => {
    const { client, close } = await connectClient(baseUrl);
    try {
      const started = performance.now();
      const listed = await client.listTools();
      expect(performance.now() - started).toBeLessThan(500);
      expect(listed.tools).toEqual([]);
      expect(listed._meta?.['gatehouse/unavailable']).toEqual([
        expect.objectContaining({ server: 'Dead server', code: 'UPSTREAM_UNREACHABLE', message: expect.stringContaining('will try it again at') }),
      ]);
    } finally {
      await close();
    }
  });

  it('lets one probe through after the cool-down and closes again when the upstream answers', async () => {
    revived = await revive();
    await new Promise((resolve) => setTimeout(resolve, COOL_DOWN_MS + 100));
    expect(await circuitState()).toBe(1);
    const probe = await callEcho();
    expect(probe.error).toBeUndefined();
    expect(textOf(probe.result)).toBe('hi');
    expect(await circuitState()).toBe(0);
    const metrics = parseMetrics(await (await fetch(`${baseUrl}/metrics`)).text());
    expect(metrics.get('gatehouse_data_plane_upstream_consecutive_failures{gateway="eng",server="Dead server",assignment="asg-dead"}')).toBe(0);
  });
});
