/**
 * Helpers of the [proxy] integration tests (managed servers, circuit breaker, pagination,
 * batches, session ending): snapshots built from the shared fixture workspace with the
 * assignments each test needs, a fixture command line, a log capture and small pollers.
 */
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { pino } from 'pino';
import type { SourceAssignment, SourceDiscoveredFeature } from '../../../control-plane/snapshot/source.js';
import type { DataPlaneLogger } from '../../../data-plane/logger.js';
import type { FeatureType, GatewaySnapshot, SnapshotUpstream } from '../../../schema/snapshot/index.js';
import { TOKENS, fixtureSnapshot, type FixtureOptions } from '../../unit/data-plane/fixtures.js';

export { TOKENS };

/** The fixture workspace's servers (and their assignments on gateway `eng`, prefixes web/local/dead). */
export type FixtureServerId = 'srv-http' | 'srv-stdio' | 'srv-dead';
const ASSIGNMENT_OF: Record<FixtureServerId, string> = { 'srv-http': 'asg-http', 'srv-stdio': 'asg-stdio', 'srv-dead': 'asg-dead' };

export interface ServerSetup {
  readonly upstream: SnapshotUpstream;
  /** Tools discovery saw; provisioned with ALLOW_ALL. */
  readonly tools: readonly string[];
}

/**
 * The fixture workspace with the given servers replaced and all their tools provisioned
 * (ALLOW_ALL); servers not given are disabled, so they launch and call nothing.
 */
export function proxySnapshot(servers: Partial<Record<FixtureServerId, ServerSetup>>, version = 1): GatewaySnapshot {
  const options: FixtureOptions = {
    ...(servers['srv-http'] ? { httpUpstream: servers['srv-http'].upstream } : {}),
    ...(servers['srv-stdio'] ? { stdioUpstream: servers['srv-stdio'].upstream } : {}),
    ...(servers['srv-dead'] ? { deadUpstream: servers['srv-dead'].upstream } : {}),
    tweak: (source) => {
      const discovered: SourceDiscoveredFeature[] = [];
      for (const [serverId, setup] of Object.entries(servers) as [FixtureServerId, ServerSetup][]) {
        for (const name of setup.tools) discovered.push({ serverId, featureType: 'tools' as FeatureType, name, contentHash: 'a'.repeat(64), flagged: false });
      }
      source.discoveredFeatures = discovered;
      source.pins = [];
      source.metadataOverrides = [];
      source.assignments = source.assignments.map((assignment): SourceAssignment => {
        const serverId = (Object.keys(ASSIGNMENT_OF) as FixtureServerId[]).find((id) => ASSIGNMENT_OF[id] === assignment.id);
        const used = serverId !== undefined && servers[serverId] !== undefined;
        return {
          ...assignment,
          disabled: !used,
          provisioning: { tools: { mode: 'ALLOW_ALL' }, prompts: { mode: 'BLOCK_ALL' }, resources: { mode: 'BLOCK_ALL' }, resourceTemplates: { mode: 'BLOCK_ALL' } },
        };
      });
    },
  };
  return fixtureSnapshot(options, version);
}

/** The command line that runs a fixture of test/fixtures/mcp over stdio (or HTTP with extra args). */
export function fixtureLaunch(name: string, args: readonly string[] = []): { command: string; args: string[] } {
  const file = fileURLToPath(new URL(`../../fixtures/mcp/${name}.ts`, import.meta.url));
  return { command: process.execPath, args: ['--import', 'tsx', file, ...args] };
}

/** A pino logger at `info` writing JSON lines into memory. */
export function captureLogs(): { logger: DataPlaneLogger; lines: () => Record<string, unknown>[]; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString('utf8'));
      done();
    },
  });
  const logger = pino({ level: 'info' }, stream);
  const text = () => chunks.join('');
  return {
    logger,
    text,
    lines: () =>
      text()
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

/** An SDK client session with the gateway `eng` of a data plane at `baseUrl`. */
export async function connectClient(baseUrl: string, token: string = TOKENS.eng): Promise<{ client: Client; close: () => Promise<void> }> {
  const transport = new StreamableHTTPClientTransport(new URL(`${baseUrl}/mcp/eng`), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
  const client = new Client({ name: 'proxy-test', version: '1.0.0' });
  await client.connect(transport);
  return {
    client,
    close: async () => {
      await transport.terminateSession().catch(() => undefined);
      await client.close().catch(() => undefined);
    },
  };
}

/** The text of a tool result's first content item. */
export function textOf(result: unknown): string {
  return ((result as { content: { text: string }[] }).content[0]?.text) ?? '';
}

/** Retries `attempt` until it resolves (or `timeoutMs` passes, then rethrows the last error). */
export async function eventually<T>(attempt: () => Promise<T>, timeoutMs = 10_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  }
}

/** `name{labels} value` lines of a Prometheus exposition, as a map. */
export function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

export const JSON_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' } as const;

/** POSTs a JSON body to gateway `eng` with the token (and session, protocol version when given). */
export function postMcp(baseUrl: string, body: unknown, headers: Record<string, string> = {}, token: string = TOKENS.eng): Promise<Response> {
  return fetch(`${baseUrl}/mcp/eng`, {
    method: 'POST',
    headers: { ...JSON_HEADERS, authorization: `Bearer ${token}`, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** Opens a raw session with `initialize` at the given protocol version; returns its id. */
export async function rawSession(baseUrl: string, protocolVersion = '2025-06-18', token: string = TOKENS.eng): Promise<string> {
  const response = await postMcp(
    baseUrl,
    { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion, capabilities: {}, clientInfo: { name: 'raw', version: '1' } } },
    {},
    token,
  );
  if (response.status !== 200) throw new Error(`initialize answered ${response.status}: ${await response.text()}`);
  return response.headers.get('mcp-session-id')!;
}
