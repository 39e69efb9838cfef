/**
 * The benchmark's load generator uses a lean client (test/bench/load/lean-client.ts) and
 * a lean echo upstream (test/bench/upstreams/echo.ts) so neither end dominates what is
 * measured. These tests hold both to the protocol: the lean client gets the same answers
 * as the SDK's Client from an SDK server, and the SDK's Client accepts the lean upstream.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeanMcpSession, closePools } from '../../bench/load/lean-client.js';
import { runJob } from '../../bench/load/worker.js';
import { serveEchoHttp } from '../../bench/upstreams/echo.js';
import { startHttpFixture, type RunningServer } from '../../fixtures/mcp/spawn.js';
import { ECHO_STDIO } from '../../bench/lib/peers.js';

async function sdkClient(url: string): Promise<Client> {
  const client = new Client({ name: 'sdk-reference', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return client;
}

describe('lean benchmark client against an SDK server', () => {
  let fixture: RunningServer;
  beforeAll(async () => {
    fixture = await startHttpFixture('echo-server');
  });
  afterAll(async () => {
    await fixture.close();
    await closePools();
  });

  it('negotiates a session and gets the same tools/list and tools/call answers as the SDK Client', async () => {
    const reference = await sdkClient(fixture.url);
    const lean = new LeanMcpSession(fixture.url);
    const init = await lean.initialize();
    expect(lean.id).toMatch(/.+/);
    expect(init.serverInfo).toEqual(reference.getServerVersion());
    expect(await lean.listTools()).toEqual(await reference.listTools());
    const args = { text: 'héllo ✓ '.repeat(100) };
    expect(await lean.callTool('echo', args)).toEqual(await reference.callTool({ name: 'echo', arguments: args }));
    await lean.close();
    await reference.close();
  });

  it('reports JSON-RPC errors as the server sent them', async () => {
    const lean = new LeanMcpSession(fixture.url);
    await lean.initialize();
    const answer = await lean.request('no/such-method', {});
    expect(answer.error?.code).toBe(-32601);
    await lean.close();
  });
});

describe('lean echo upstream against the SDK Client', () => {
  it('serves initialize, tools/list and tools/call over Streamable HTTP', async () => {
    const echo = await serveEchoHttp({ extraTools: 2, listDelayMs: 0 }, 0);
    try {
      const client = await sdkClient(echo.url);
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name)).toEqual(['echo', 'tool_1', 'tool_2']);
      expect(await client.callTool({ name: 'echo', arguments: { text: 'ping' } })).toEqual({ content: [{ type: 'text', text: 'ping' }] });
      await client.close();
    } finally {
      await echo.close();
    }
  });

  it('serves the same over stdio', async () => {
    const client = new Client({ name: 'sdk-reference', version: '1.0.0' });
    await client.connect(new StdioClientTransport({ command: ECHO_STDIO[0], args: ECHO_STDIO.slice(1) }));
    expect(await client.callTool({ name: 'echo', arguments: { text: 'over stdio' } })).toEqual({ content: [{ type: 'text', text: 'over stdio' }] });
    await client.close();
  });

  it('measures calls through the load generator without errors', async () => {
    const echo = await serveEchoHttp({ extraTools: 0, listDelayMs: 0 }, 0);
    try {
      const result = await runJob({ kind: 'sequential', url: echo.url, headers: {}, calls: 50, warmup: 5, payloadBytes: 1024 });
      expect(result).toMatchObject({ kind: 'latency', errors: 0, latency: { count: 50 } });
      const concurrent = await runJob({ kind: 'concurrent', url: echo.url, headers: {}, sessions: 4, durationMs: 200, warmupMs: 50, payloadBytes: 16 });
      expect(concurrent.kind === 'throughput' && concurrent.calls > 0 && concurrent.errors === 0).toBe(true);
    } finally {
      await echo.close();
      await closePools();
    }
  });
});
