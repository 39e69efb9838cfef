import { readFileSync } from 'node:fs';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { parse } from 'graphql';
import { createRequire } from 'node:module';
import path from 'node:path';
import {
  AssignServerDocument,
  CreateAccessTokenDocument,
  CreateConnectionDocument,
  CreateGatewayDocument,
  CreateHostDocument,
  CreateServerDocument,
  DiscoverServerDocument,
  GatehouseClient,
  GetGatewayDocument,
  ListGatewaysDocument,
  ListHostsDocument,
  ListServersDocument,
  RestoreGatewayDocument,
  SetGatewayDisabledDocument,
  SetProvisioningDocument,
  UpdateServerDocument,
  unwrap,
  type FeatureType,
} from '../../sdk/index.js';

// The quickstart is a client of the public GraphQL API, like any script a user writes:
// it uses the SDK only, never the control plane's services.

/**
 * The host's connections without their tokens: the generated `GetHost` also selects 100
 * tokens per connection, which the default cost limit refuses.
 */
const HostConnectionsDocument: TypedDocumentNode<
  { host: { connections: { edges: { node: { id: string; name: string; gatewayId: string; disabled: boolean } }[] } } | null },
  { id: string }
> = parse(`query QuickstartHostConnections($id: ID!) {
  host(id: $id) { connections(first: 100) { edges { node { id name gatewayId disabled } } } }
}`);

export { QUICKSTART_VARIABLES, quickstartDefaults } from './quickstart-settings.js';

export const QUICKSTART_SERVER_NAME = 'server-everything (quickstart)';
export const QUICKSTART_GATEWAY_SLUG = 'quickstart';
export const QUICKSTART_HOST_NAME = 'quickstart-agent';
const CONNECTION_NAME = 'quickstart';

export interface QuickstartOptions {
  /** Control-plane base URL, e.g. `http://127.0.0.1:4000`. */
  readonly url: string;
  /** An admin API key able to manage servers, gateways and hosts (the owner key is). */
  readonly apiKey: string;
  /** Progress lines, for people; omit for silence. */
  readonly log?: (line: string) => void;
  /** How long to wait for the data plane to accept the new token. Default 20 s; 0 skips the wait. */
  readonly dataPlaneWaitMs?: number;
}

/** What `--json` prints. */
export interface QuickstartResult {
  /** The gateway's MCP endpoint (`gateway.dataPlaneUrl`). */
  readonly mcpUrl: string;
  /** The API access token (`gh_at_…`), shown once. */
  readonly token: string;
  readonly graphqlUrl: string;
  readonly gatewayId: string;
  readonly serverId: string;
  readonly hostId: string;
  readonly connectionId: string;
}

/** `node <server-everything>/dist/index.js stdio`, resolved from this installation. */
export function serverEverythingCommand(): { command: string; args: string[] } {
  const require = createRequire(import.meta.url);
  const packageJson = require.resolve('@modelcontextprotocol/server-everything/package.json');
  return { command: process.execPath, args: [path.join(path.dirname(packageJson), 'dist', 'index.js'), 'stdio'] };
}

/**
 * Sets up a demo gateway through the public API, idempotently: the server-everything
 * stdio server (registered once, its command refreshed), discovered; gateway `quickstart`
 * with it assigned under an empty prefix and everything provisioned; host
 * `quickstart-agent` with a connection to the gateway; and a new API access token.
 * Then waits until the data plane accepts that token, so it works the moment it is printed.
 */
export async function runQuickstart(options: QuickstartOptions): Promise<QuickstartResult> {
  const log = options.log ?? (() => undefined);
  const client = new GatehouseClient({ url: options.url, apiKey: options.apiKey });
  try {
    const serverId = await ensureServer(client, log);
    const run = unwrap(await client.request(DiscoverServerDocument, { id: serverId }), 'discoverServer').run;
    if (run.status !== 'OK') {
      throw new Error(`discovering ${QUICKSTART_SERVER_NAME} failed (${run.errorCode ?? run.status}): ${run.errorMessage ?? 'no message'}`);
    }
    log(`Discovered ${run.featureCount} features of ${QUICKSTART_SERVER_NAME}.`);

    const gateway = await ensureGateway(client, log);
    let assignment = gateway.assignments.edges.map((e) => e.node).find((a) => a.serverId === serverId);
    if (!assignment) {
      assignment = unwrap(await client.request(AssignServerDocument, { input: { gatewayId: gateway.id, serverId, namespacePrefix: '' } }), 'assignServer').assignment;
      log('Assigned the server to the gateway (no namespace prefix).');
    }
    for (const featureType of ['TOOLS', 'PROMPTS', 'RESOURCES', 'RESOURCE_TEMPLATES'] satisfies FeatureType[]) {
      unwrap(
        await client.request(SetProvisioningDocument, { assignmentId: assignment.id, input: { featureType, mode: 'ALLOW_ALL' } }),
        'setProvisioning',
      );
    }
    log('Provisioned all tools, prompts, resources and resource templates.');

    const hostId = await ensureHost(client, log);
    const connectionId = await ensureConnection(client, hostId, gateway.id, log);
    const { created } = unwrap(
      await client.request(CreateAccessTokenDocument, { input: { connectionId, name: `quickstart ${new Date().toISOString()}` } }),
      'createAccessToken',
    );
    log(`Created API access token ${created.accessToken.prefix}… for the connection.`);

    const result: QuickstartResult = {
      mcpUrl: gateway.dataPlaneUrl,
      token: created.secret,
      graphqlUrl: client.graphqlUrl,
      gatewayId: gateway.id,
      serverId,
      hostId,
      connectionId,
    };
    await waitForDataPlane(result, options.dataPlaneWaitMs ?? 20_000, log);
    return result;
  } finally {
    await client.close();
  }
}

async function ensureServer(client: GatehouseClient, log: (line: string) => void): Promise<string> {
  const managed = { launch: 'STDIO' as const, ...serverEverythingCommand() };
  let after: string | null | undefined;
  do {
    const { servers } = await client.request(ListServersDocument, { first: 100, after });
    const existing = servers.edges.find((e) => e.node.name === QUICKSTART_SERVER_NAME)?.node;
    if (existing) {
      if (existing.command !== managed.command || JSON.stringify(existing.args) !== JSON.stringify(managed.args)) {
        unwrap(await client.request(UpdateServerDocument, { id: existing.id, input: { managed } }), 'updateServer');
        log(`Updated the command of ${QUICKSTART_SERVER_NAME}.`);
      }
      return existing.id;
    }
    after = servers.pageInfo.hasNextPage ? servers.pageInfo.endCursor : undefined;
  } while (after);
  const { server } = unwrap(
    await client.request(CreateServerDocument, {
      input: { name: QUICKSTART_SERVER_NAME, description: 'The MCP reference server, run over stdio by the data plane', managed },
    }),
    'createServer',
  );
  log(`Registered ${QUICKSTART_SERVER_NAME} as a managed stdio server.`);
  return server.id;
}

async function ensureGateway(client: GatehouseClient, log: (line: string) => void) {
  let id: string | undefined;
  let after: string | null | undefined;
  do {
    const { gateways } = await client.request(ListGatewaysDocument, { includeArchived: true, first: 100, after });
    id = gateways.edges.find((e) => e.node.slug === QUICKSTART_GATEWAY_SLUG)?.node.id;
    after = !id && gateways.pageInfo.hasNextPage ? gateways.pageInfo.endCursor : undefined;
  } while (after);
  if (id) {
    log(`Reusing gateway "${QUICKSTART_GATEWAY_SLUG}".`);
  } else {
    id = unwrap(await client.request(CreateGatewayDocument, { input: { name: 'Quickstart', slug: QUICKSTART_GATEWAY_SLUG } }), 'createGateway').gateway.id;
    log(`Created gateway "${QUICKSTART_GATEWAY_SLUG}".`);
  }
  const { gateway } = await client.request(GetGatewayDocument, { id });
  if (!gateway) throw new Error(`gateway "${QUICKSTART_GATEWAY_SLUG}" disappeared while the quickstart ran`);
  if (gateway.archived) {
    unwrap(await client.request(RestoreGatewayDocument, { id: gateway.id }), 'restoreGateway');
    log(`Restored the archived gateway "${QUICKSTART_GATEWAY_SLUG}".`);
  }
  if (gateway.disabled) {
    unwrap(await client.request(SetGatewayDisabledDocument, { id: gateway.id, disabled: false }), 'setGatewayDisabled');
    log(`Switched gateway "${QUICKSTART_GATEWAY_SLUG}" back on.`);
  }
  return gateway;
}

async function ensureHost(client: GatehouseClient, log: (line: string) => void): Promise<string> {
  let after: string | null | undefined;
  do {
    const { hosts } = await client.request(ListHostsDocument, { first: 100, after });
    const existing = hosts.edges.find((e) => e.node.name === QUICKSTART_HOST_NAME)?.node;
    if (existing) {
      if (existing.disabled) throw new Error(`host "${QUICKSTART_HOST_NAME}" is switched off by an admin; switch it on or delete it, then run the quickstart again`);
      return existing.id;
    }
    after = hosts.pageInfo.hasNextPage ? hosts.pageInfo.endCursor : undefined;
  } while (after);
  const { host } = unwrap(await client.request(CreateHostDocument, { input: { name: QUICKSTART_HOST_NAME, kind: 'AGENT' } }), 'createHost');
  log(`Created token host "${QUICKSTART_HOST_NAME}".`);
  return host.id;
}

async function ensureConnection(client: GatehouseClient, hostId: string, gatewayId: string, log: (line: string) => void): Promise<string> {
  const { host } = await client.request(HostConnectionsDocument, { id: hostId });
  const existing = host?.connections.edges.map((e) => e.node).find((c) => c.gatewayId === gatewayId && c.name === CONNECTION_NAME);
  if (existing) {
    if (existing.disabled) throw new Error(`connection "${CONNECTION_NAME}" of host "${QUICKSTART_HOST_NAME}" is switched off by an admin`);
    return existing.id;
  }
  const { connection } = unwrap(await client.request(CreateConnectionDocument, { input: { hostId, gatewayId, name: CONNECTION_NAME } }), 'createConnection');
  log(`Connected "${QUICKSTART_HOST_NAME}" to the gateway.`);
  return connection.id;
}

/**
 * Polls the MCP endpoint with `initialize` until the data plane has the snapshot that
 * knows the new token (a few hundred milliseconds after the last change). Gives up with a
 * note, not an error: the data plane may not be reachable from where the quickstart runs.
 */
async function waitForDataPlane(result: QuickstartResult, timeoutMs: number, log: (line: string) => void): Promise<void> {
  if (timeoutMs <= 0) return;
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    try {
      const response = await fetch(result.mcpUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${result.token}` },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'gatehouse-quickstart', version: '1' } },
        }),
        signal: AbortSignal.timeout(5_000),
      });
      await response.body?.cancel();
      if (response.ok) {
        log('The data plane serves the gateway with the new token.');
        return;
      }
      last = `HTTP ${response.status}`;
    } catch (err) {
      last = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  log(`Note: ${result.mcpUrl} did not accept the token within ${Math.round(timeoutMs / 1000)} s (${last}); check the data plane's /readyz.`);
}

/** The human-readable report: URL, token, a `claude mcp add` line and an `mcp.json` snippet. */
export function formatQuickstart(result: QuickstartResult): string {
  const mcpJson = JSON.stringify(
    { mcpServers: { quickstart: { type: 'http', url: result.mcpUrl, headers: { Authorization: `Bearer ${result.token}` } } } },
    null,
    2,
  );
  return [
    '',
    '  Your quickstart gateway is ready.',
    '',
    `  MCP URL:  ${result.mcpUrl}`,
    `  Token:    ${result.token}   (shown once; send it as "Authorization: Bearer <token>")`,
    '',
    '  Claude Code:',
    `    claude mcp add --transport http quickstart ${result.mcpUrl} --header "Authorization: Bearer ${result.token}"`,
    '',
    '  mcp.json (Cursor, VS Code, Claude Desktop and others):',
    ...mcpJson.split('\n').map((line) => `    ${line}`),
    '',
    `  Manage it at ${result.graphqlUrl} (gateway ${result.gatewayId}).`,
    '',
    '',
  ].join('\n');
}
