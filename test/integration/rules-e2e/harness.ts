import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError, type ClientCapabilities } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll } from 'vitest';
import type { SourceRule, SourceRuleEngine } from '../../../control-plane/snapshot/source.js';
import { buildDataPlane, type DataPlane } from '../../../data-plane/app.js';
import type { AuditedCall, AuditSink } from '../../../data-plane/audit/call-auditor.js';
import { verifyEngineSignature, SIGNATURE_HEADER } from '../../../schema/rules/engines/index.js';
import { InMemorySnapshotSource } from '../../../data-plane/snapshot/snapshot-source.js';
import type { AuditPolicyAction } from '../../../schema/audit/types.js';
import { RULE_PARTS, sealSnapshotSecret, type RuleAction, type RuleDetection, type RuleHook, type RulePart } from '../../../schema/snapshot/index.js';
import { TOKENS, fixtureSnapshot } from '../../unit/data-plane/fixtures.js';

export const KEY_ID = 'sk_rules_e2e';
export const SNAPSHOT_KEY = randomBytes(32);
export const HASH_SALT = 'e2e-rule-salt';
export const SIGNING_SECRET = 'e2e-engine-signing-secret';
const UPSTREAM = fileURLToPath(new URL('./rules-upstream.ts', import.meta.url));

/** The fixture upstream's tools, prompt, resources and resource template, exposed on gateway `eng` with prefix `fx`. */
const TOOLS = ['echo', 'echo_json', 'last_received', 'profile', 'fetch_page', 'big', 'binary', 'ask_person', 'ask_person_url', 'needs_sign_in', 'ask_model'];

export interface RuleSpec {
  readonly name: string;
  readonly detection: RuleDetection;
  readonly action: RuleAction;
  readonly hooks?: readonly RuleHook[];
  readonly parts?: readonly RulePart[];
  readonly features?: readonly string[];
  readonly failureMode?: 'open' | 'closed';
  readonly raiseAlert?: boolean;
}

/** A local rule engine speaking Gatehouse's webhook envelope; `answer` decides per request. */
export interface EngineServer {
  readonly url: string;
  /** Envelopes received, signature checked. */
  readonly received: Array<{ hook: string; payload: unknown; headers: IncomingMessage['headers'] }>;
  close(): Promise<void>;
}

export type EngineBehaviour = (envelope: { hook: string; payload: unknown }) => { status?: number; body: string; delayMs?: number };

export async function startEngine(behaviour: EngineBehaviour): Promise<EngineServer> {
  const received: EngineServer['received'] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const check = verifyEngineSignature(req.headers[SIGNATURE_HEADER] as string | undefined, raw, SIGNING_SECRET);
      if (!check.ok) {
        res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ verdict: 'error', reason: check.reason }));
        return;
      }
      const envelope = JSON.parse(raw.toString('utf8')) as { hook: string; payload: unknown };
      received.push({ hook: envelope.hook, payload: envelope.payload, headers: req.headers });
      const answer = behaviour(envelope);
      const send = () => {
        if (!res.destroyed) res.writeHead(answer.status ?? 200, { 'content-type': 'application/json' }).end(answer.body);
      };
      if (answer.delayMs) setTimeout(send, answer.delayMs).unref();
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/evaluate`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const seal = (plaintext: string, aad: string) => sealSnapshotSecret(SNAPSHOT_KEY, KEY_ID, plaintext, aad);

export function engineRow(id: string, url: string, options: { timeoutMs?: number; forwardHeaders?: string[] } = {}): SourceRuleEngine {
  return {
    id,
    name: `Engine ${id}`,
    kind: 'webhook',
    url,
    method: 'POST',
    headers: [{ name: 'x-engine-key', value: seal('engine-api-key', `rule-engine:${id}:header:x-engine-key`) }],
    forwardHeaders: options.forwardHeaders ?? [],
    signingSecret: seal(SIGNING_SECRET, `rule-engine:${id}:signing-secret`),
    timeoutMs: options.timeoutMs ?? 2_000,
    allowPrivateNetwork: true,
    options: {},
  };
}

/** The audit sink of the tests: keeps every finished call. */
export class RecordingSink implements AuditSink {
  readonly calls: AuditedCall[] = [];
  accept(call: AuditedCall): boolean {
    this.calls.push(call);
    return true;
  }
  load(): number {
    return 0;
  }
  async close(): Promise<void> {}
  /** Policy actions of the finished calls of a tool, in order. */
  policyActions(): AuditPolicyAction[] {
    return this.calls.flatMap((call) => (call.actions ?? []).map((record) => record.action));
  }
  clear(): void {
    this.calls.length = 0;
  }
}

/**
 * The gateway and SDK client of one test file: started before its tests (`beforeAll`),
 * closed after them. `client()` is the client connected at start.
 */
export function rulesGatewayPerFile(): { readonly gateway: RulesGateway; client(): Client } {
  const gateway = new RulesGateway();
  let client: Client | undefined;
  beforeAll(async () => {
    await gateway.start();
    client = await gateway.client();
  }, 60_000);
  afterAll(async () => {
    await gateway.close();
  });
  return { gateway, client: () => client! };
}

export class RulesGateway {
  readonly snapshots = new InMemorySnapshotSource();
  readonly audit = new RecordingSink();
  plane!: DataPlane;
  url!: string;
  #version = 0;
  readonly #clients: { client: Client; transport: StreamableHTTPClientTransport }[] = [];

  async start(): Promise<void> {
    this.publish([]);
    this.plane = buildDataPlane(
      { port: 0, sessionSecret: 'rules-e2e-session-secret-0123456789abcdef', callTimeoutMs: 20_000, maxBodyBytes: 16 * 1024 * 1024 },
      { snapshots: this.snapshots, audit: this.audit },
    );
    this.url = (await this.plane.listen()).url;
  }

  /** Publishes a new snapshot version whose gateway `eng` has exactly these rules (in order). */
  publish(specs: readonly RuleSpec[], engines: readonly SourceRuleEngine[] = []): void {
    this.#version += 1;
    const rules: SourceRule[] = specs.map((spec, i) => ({
      id: `rule-${this.#version}-${i}`,
      gatewayId: 'gw-eng',
      name: spec.name,
      enabled: true,
      order: i,
      hooks: spec.hooks ?? ['request', 'response'],
      scope: {
        assignmentIds: [],
        features: spec.features ?? [],
        parts: spec.parts ?? RULE_PARTS,
      },
      detection: spec.detection,
      action: spec.action,
      failureMode: spec.failureMode ?? 'closed',
      raiseAlert: spec.raiseAlert ?? false,
    }));
    const snapshot = fixtureSnapshot(
      {
        tweak: (source) => {
          source.workspace = { ...source.workspace, ruleHashSalt: seal(HASH_SALT, 'workspace:ws-acme:rule-hash-salt') };
          source.servers = [
            {
              id: 'srv-rules',
              name: 'Rules fixture',
              disabled: false,
              upstream: { kind: 'managed-stdio', command: process.execPath, args: ['--import', 'tsx', UPSTREAM], env: {}, secretEnv: {}, cwd: null },
              auth: { kind: 'none' },
            },
          ];
          source.discoveredFeatures = [
            ...TOOLS.map((name) => ({ serverId: 'srv-rules', featureType: 'tools' as const, name, contentHash: 'a'.repeat(64), flagged: false })),
            { serverId: 'srv-rules', featureType: 'prompts', name: 'summarize', contentHash: 'a'.repeat(64), flagged: false },
            { serverId: 'srv-rules', featureType: 'prompts', name: 'refuse', contentHash: 'a'.repeat(64), flagged: false },
            { serverId: 'srv-rules', featureType: 'resources', name: 'doc://customers', contentHash: 'a'.repeat(64), flagged: false },
            { serverId: 'srv-rules', featureType: 'resources', name: 'doc://logo', contentHash: 'a'.repeat(64), flagged: false },
            { serverId: 'srv-rules', featureType: 'resourceTemplates', name: 'doc://customer/{id}', contentHash: 'a'.repeat(64), flagged: false },
          ];
          source.assignments = [
            {
              id: 'asg-rules',
              gatewayId: 'gw-eng',
              serverId: 'srv-rules',
              containerId: null,
              disabled: false,
              identityScheme: 'shared',
              namespacePrefix: 'fx',
              provisioning: { tools: { mode: 'ALLOW_ALL' }, prompts: { mode: 'ALLOW_ALL' }, resources: { mode: 'ALLOW_ALL' }, resourceTemplates: { mode: 'ALLOW_ALL' } },
            },
          ];
          source.metadataOverrides = [];
          source.pins = [];
          source.rules = rules;
          source.ruleEngines = engines;
        },
      },
      this.#version,
    );
    this.snapshots.offer(snapshot, new Map([[KEY_ID, SNAPSHOT_KEY]]));
  }

  /** A connected SDK client; `capabilities` and `setup` (request handlers) for one that answers sampling or elicitation. */
  async client(headers: Record<string, string> = {}, options: { capabilities?: ClientCapabilities; setup?: (client: Client) => void } = {}): Promise<Client> {
    const transport = new StreamableHTTPClientTransport(new URL(`${this.url}/mcp/eng`), {
      requestInit: { headers: { Authorization: `Bearer ${TOKENS.eng}`, ...headers } },
    });
    const client = new Client({ name: 'rules-e2e', version: '1.0.0' }, { capabilities: options.capabilities ?? {} });
    options.setup?.(client);
    await client.connect(transport);
    this.#clients.push({ client, transport });
    return client;
  }

  async close(): Promise<void> {
    for (const { client, transport } of this.#clients) {
      await transport.terminateSession().catch(() => undefined);
      await client.close().catch(() => undefined);
    }
    await this.plane?.close();
  }
}

/** The JSON-RPC error a promise rejects with. */
export async function rpcError(promise: Promise<unknown>): Promise<McpError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof McpError) return error;
    throw error;
  }
  throw new Error('expected a JSON-RPC error');
}

/** The text of the first content block of a tool result. */
export function textOf(result: unknown): string {
  const content = (result as { content?: Array<{ type: string; text?: string }> }).content ?? [];
  return content.find((block) => block.type === 'text')?.text ?? '';
}
