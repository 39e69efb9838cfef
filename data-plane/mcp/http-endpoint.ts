import type { IncomingMessage as HttpRequest, ServerResponse } from 'node:http';
import type { DataPlaneConfig } from '../config.js';
import type { DataPlaneLogger } from '../logger.js';
import { admitRequest, type Admission } from '../policy/admit.js';
import type { Refusal } from '../policy/refusal.js';
import type { SnapshotSource } from '../snapshot/snapshot-source.js';
import type { CompiledGateway } from '../snapshot/compiled-snapshot.js';
import type { UpstreamPool } from '../upstream/upstream-pool.js';
import { JSON_RPC_ERRORS, RpcError, classifyMessage, errorMessage, resultMessage, type JsonRpcId } from './json-rpc.js';
import { GATEHOUSE_VERSION, SUPPORTED_PROTOCOL_VERSIONS, isSupportedProtocolVersion, negotiateProtocolVersion } from './protocol.js';
import { routeRequest } from './router.js';
import { EndedSessions, SessionIdCodec, type SessionClaims } from './session-id.js';

export interface McpEndpointDeps {
  readonly config: DataPlaneConfig;
  readonly snapshots: SnapshotSource;
  readonly pool: UpstreamPool;
  readonly logger: DataPlaneLogger;
  readonly clock: () => number;
}

const SESSION_HEADER = 'mcp-session-id';
const VERSION_HEADER = 'mcp-protocol-version';

/** Thrown while reading a body that exceeds the limit. */
class BodyTooLarge extends Error {}

/**
 * The Streamable HTTP endpoint for `/mcp/<slug>`: POST carries one JSON-RPC message and
 * gets a JSON answer (202 for notifications and responses); DELETE ends a session; GET
 * (the server-to-client stream) is not offered yet, so it gets 405 as the spec allows.
 * Every message runs the admission stages (a token revoked mid-session stops the
 * session's next message), then the session check, then routing.
 */
export function createMcpEndpoint(deps: McpEndpointDeps) {
  const { config, snapshots, pool, logger, clock } = deps;
  const sessions = new SessionIdCodec(config.sessionSecret, config.sessionMaxAgeMs);
  const ended = new EndedSessions(config.sessionMaxAgeMs);

  return async function handleMcp(req: HttpRequest, res: ServerResponse, gatewaySlug: string): Promise<void> {
    if (req.method !== 'POST' && req.method !== 'DELETE') {
      res.setHeader('allow', 'POST, DELETE');
      return sendError(res, 405, null, JSON_RPC_ERRORS.INVALID_REQUEST, `method ${req.method} is not allowed here; this gateway takes POST (messages) and DELETE (end session)`);
    }
    const now = clock();
    const admitted = admitRequest({ compiled: snapshots.current(), gatewaySlug, authorization: req.headers.authorization, now });
    if (!admitted.ok) {
      req.resume();
      return sendRefusal(res, null, admitted);
    }
    const admission = admitted.value;

    if (req.method === 'DELETE') {
      const session = checkSession(req, admission, now);
      if (!session.ok) return sendError(res, session.status, null, JSON_RPC_ERRORS.INVALID_REQUEST, session.message);
      ended.sweep(now);
      ended.add(session.id, session.claims.issuedAt);
      res.writeHead(200).end();
      return;
    }

    if (!isJsonContentType(req.headers['content-type'])) {
      req.resume();
      return sendError(res, 415, null, JSON_RPC_ERRORS.INVALID_REQUEST, 'Content-Type must be application/json');
    }
    if (!acceptsJson(req.headers.accept)) {
      req.resume();
      return sendError(res, 406, null, JSON_RPC_ERRORS.INVALID_REQUEST, 'Accept must include application/json (clients should send "application/json, text/event-stream")');
    }

    let text: string;
    try {
      text = await readBody(req, config.maxBodyBytes);
    } catch (error) {
      if (error instanceof BodyTooLarge) {
        res.setHeader('connection', 'close');
        return sendError(res, 413, null, JSON_RPC_ERRORS.INVALID_REQUEST, `the request body exceeds the limit of ${config.maxBodyBytes} bytes`);
      }
      throw error;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return sendError(res, 400, null, JSON_RPC_ERRORS.PARSE_ERROR, 'the request body is not valid JSON');
    }
    if (Array.isArray(parsed)) {
      return sendError(res, 400, null, JSON_RPC_ERRORS.INVALID_REQUEST, 'JSON-RPC batches are not supported by this gateway; send one message per request');
    }
    const classified = classifyMessage(parsed);
    if (!classified.ok) return sendError(res, 400, classified.id, JSON_RPC_ERRORS.INVALID_REQUEST, classified.reason);
    const message = classified.message;

    if (message.kind === 'request' && message.method === 'initialize') {
      return initialize(res, message.id, message.params, admission, now);
    }

    const session = checkSession(req, admission, now);
    const id = message.kind === 'request' ? message.id : null;
    if (!session.ok) return sendError(res, session.status, id, JSON_RPC_ERRORS.INVALID_REQUEST, session.message);
    const version = req.headers[VERSION_HEADER];
    if (typeof version === 'string' && !isSupportedProtocolVersion(version)) {
      return sendError(res, 400, id, JSON_RPC_ERRORS.INVALID_REQUEST, `unsupported MCP-Protocol-Version ${version}; this gateway speaks ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')}`);
    }

    if (message.kind !== 'request') {
      // Notifications and answers to server requests: accepted; relaying them upstream comes later.
      res.writeHead(202).end();
      return;
    }
    try {
      const result = await routeRequest(message.method, message.params, {
        admission,
        pool,
        listTimeoutMs: config.listTimeoutMs,
        callTimeoutMs: config.callTimeoutMs,
        logger,
      });
      sendJson(res, 200, resultMessage(message.id, result));
    } catch (error) {
      if (error instanceof RpcError) {
        return sendJson(res, 200, errorMessage(message.id, { code: error.code, message: error.message, ...(error.data === undefined ? {} : { data: error.data }) }));
      }
      const correlationId = crypto.randomUUID();
      logger.error({ err: error, correlationId, method: message.method }, 'unexpected error while routing');
      return sendJson(res, 200, errorMessage(message.id, { code: JSON_RPC_ERRORS.INTERNAL_ERROR, message: `internal error (correlation id ${correlationId})` }));
    }
  };

  function initialize(res: ServerResponse, id: JsonRpcId, params: Record<string, unknown> | undefined, admission: Admission, now: number): void {
    const protocolVersion = negotiateProtocolVersion(params?.protocolVersion);
    const { gateway } = admission.gateway;
    const sessionId = sessions.issue(
      { workspaceId: admission.compiled.workspaceId, gatewayId: gateway.id, connectionId: admission.principal.grant.connectionId, protocolVersion },
      now,
    );
    res.setHeader(SESSION_HEADER, sessionId);
    sendJson(
      res,
      200,
      resultMessage(id, {
        protocolVersion,
        capabilities: gatewayCapabilities(admission.gateway),
        serverInfo: { name: `gatehouse/${gateway.slug}`, title: gateway.name, version: GATEHOUSE_VERSION },
      }),
    );
  }

  function checkSession(
    req: HttpRequest,
    admission: Admission,
    now: number,
  ): { ok: true; id: string; claims: SessionClaims } | { ok: false; status: number; message: string } {
    const header = req.headers[SESSION_HEADER];
    if (typeof header !== 'string' || header === '') {
      return { ok: false, status: 400, message: 'the Mcp-Session-Id header is required; send initialize first to get one' };
    }
    const claims = sessions.verify(header, now);
    const unknown = { ok: false as const, status: 404, message: 'the session is unknown, expired or ended; initialize a new session' };
    if (!claims || ended.has(header, now)) return unknown;
    // A session is bound to the connection and gateway that opened it.
    if (
      claims.workspaceId !== admission.compiled.workspaceId ||
      claims.gatewayId !== admission.gateway.gateway.id ||
      claims.connectionId !== admission.principal.grant.connectionId
    ) {
      return unknown;
    }
    return { ok: true, id: header, claims };
  }
}

/**
 * What the gateway offers: a feature type when some enabled entry serves something of
 * it. List-change and subscription notifications are not relayed yet, so not offered.
 */
export function gatewayCapabilities(gateway: CompiledGateway): Record<string, object> {
  const serves = (type: 'tools' | 'prompts' | 'resources' | 'resourceTemplates') =>
    gateway.entries.some((entry) => entry.assignment.enabled && entry.assignment.features[type].some((feature) => feature.withheld === undefined));
  const capabilities: Record<string, object> = {};
  if (serves('tools')) capabilities.tools = {};
  if (serves('prompts')) capabilities.prompts = {};
  if (serves('resources') || serves('resourceTemplates')) capabilities.resources = {};
  return capabilities;
}

function isJsonContentType(header: string | undefined): boolean {
  return header !== undefined && header.split(';')[0]!.trim().toLowerCase() === 'application/json';
}

function acceptsJson(header: string | undefined): boolean {
  if (header === undefined) return false;
  return header
    .split(',')
    .map((part) => part.split(';')[0]!.trim().toLowerCase())
    .some((type) => type === 'application/json' || type === 'application/*' || type === '*/*');
}

async function readBody(req: HttpRequest, limit: number): Promise<string> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    throw new BodyTooLarge();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      req.resume();
      throw new BodyTooLarge();
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function sendRefusal(res: ServerResponse, id: JsonRpcId | null, refusal: Refusal): void {
  for (const [name, value] of Object.entries(refusal.headers ?? {})) res.setHeader(name, value);
  sendJson(res, refusal.status, errorMessage(id, { code: refusal.rpcCode, message: refusal.message, data: { code: refusal.code, ...refusal.detail } }));
}

function sendError(res: ServerResponse, status: number, id: JsonRpcId | null, code: number, message: string): void {
  sendJson(res, status, errorMessage(id, { code, message }));
}

function sendJson(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
}
