import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDataPlane, type DataPlane } from '../../../data-plane/app.js';
import { InMemorySnapshotSource } from '../../../data-plane/snapshot/snapshot-source.js';
import { hashFeatureDefinition } from '../../../schema/snapshot/index.js';
import { everythingStdioCommand, startEverythingHttp, type RunningServer } from '../../fixtures/mcp/spawn.js';
import { TOKENS, fixtureSnapshot } from '../../unit/data-plane/fixtures.js';

const SECRET = 'replica-test-session-secret-0123456789abcdef';

let everything: RunningServer;
const replicas: DataPlane[] = [];
let proxy: Server;
const snapshots = new InMemorySnapshotSource();
let proxyUrl: string;
/** Which replica (0 or 1) served each proxied request, with its method. */
const served: { replica: number; method: string }[] = [];

/**
 * A round-robin reverse proxy: each request goes to the next replica, bodies streamed
 * both ways (an SSE response flows through as it is written).
 */
function roundRobinProxy(targets: readonly number[]): Server {
  let next = 0;
  return createServer((req, res) => {
    const replica = next++ % targets.length;
    served.push({ replica, method: req.method ?? '' });
    const upstream = request({ host: '127.0.0.1', port: targets[replica], method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
}

beforeAll(async () => {
  everything = await startEverythingHttp();
  const probe = new Client({ name: 'probe', version: '1' });
  await probe.connect(new StreamableHTTPClientTransport(new URL(everything.url)));
  const echo = (await probe.listTools()).tools.find((tool) => tool.name === 'echo')!;
  await probe.close();
  const stdio = everythingStdioCommand();
  // One snapshot source shared by both replicas, as if each had its own push client on one control plane.
  snapshots.offer(
    fixtureSnapshot({
      httpUpstream: { kind: 'remote', url: everything.url, transport: 'streamable-http', allowInsecure: false },
      stdioUpstream: { kind: 'managed-stdio', command: stdio.command, args: stdio.args, env: {}, secretEnv: {}, cwd: null },
      liveHashes: { 'tools:echo': hashFeatureDefinition('tools', echo as Record<string, unknown>) },
    }),
  );
  const ports: number[] = [];
  for (let i = 0; i < 2; i++) {
    const plane = buildDataPlane({ port: 0, sessionSecret: SECRET, listTimeoutMs: 2_000, callTimeoutMs: 20_000 }, { snapshots });
    replicas.push(plane);
    ports.push((await plane.listen()).port);
  }
  proxy = roundRobinProxy(ports);
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
}, 60_000);

afterAll(async () => {
  await new Promise<void>((resolve) => {
    proxy?.close(() => resolve());
    proxy?.closeAllConnections();
  });
  for (const plane of replicas) await plane.close();
  await everything?.close();
});

describe('two data-plane replicas behind a round-robin proxy', () => {
  it('serves one SDK client session alternating between them with no error', async () => {
    const transport = new StreamableHTTPClientTransport(new URL(`${proxyUrl}/mcp/eng`), {
      requestInit: { headers: { Authorization: `Bearer ${TOKENS.eng}` } },
    });
    const client = new Client({ name: 'replica-test', version: '1' });
    const errors: Error[] = [];
    client.onerror = (error) => errors.push(error);
    await client.connect(transport);
    const sessionId = transport.sessionId;
    expect(sessionId).toMatch(/^v2\./); // self-contained and encrypted: any replica opens it

    const tools = await client.listTools();
    expect(tools.tools.map((tool) => tool.name).sort()).toEqual(['local__echo', 'web__echo']);
    for (let i = 0; i < 8; i++) {
      const name = i % 2 === 0 ? 'web__echo' : 'local__echo';
      expect(await client.callTool({ name, arguments: { message: `call ${i}` } })).toMatchObject({ content: [{ type: 'text', text: `Echo: call ${i}` }] });
    }
    await client.ping();
    expect(transport.sessionId).toBe(sessionId);

    // Both replicas served POSTs of this one session.
    const posts = served.filter((entry) => entry.method === 'POST');
    expect(posts.length).toBeGreaterThanOrEqual(11);
    expect(new Set(posts.map((entry) => entry.replica))).toEqual(new Set([0, 1]));
    // Each replica opened at most one upstream session per assignment (never one per call).
    const entries = snapshots.current()!.gatewaysBySlug.get('eng')!.entries;
    for (const plane of replicas) {
      expect(plane.pool.size).toBeLessThanOrEqual(entries.length);
      for (const entry of entries) expect(plane.pool.peek(entry.upstreamKey)?.initializations ?? 0).toBeLessThanOrEqual(1);
    }

    await transport.terminateSession();
    await client.close();
    expect(errors.filter((error) => !/abort|closed|terminated/i.test(error.message))).toEqual([]);
  });
});
