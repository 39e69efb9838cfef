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
import { noteMcpMethod, processMetrics } from '../ops/metrics.js'; // [ops]
import { auditBatchElement, callAudit } from '../audit/call-auditor.js'; // [audit]
import { RulesRuntime } from './rules-stage.js'; // [rules]
import { CallRegistry, RELAYED_ID_PREFIX, REQUEST_CANCELLED } from './calls.js';
import { DEFAULT_SESSION_STREAMS, SessionStreams, type SharedSessionEvents } from './session-streams.js';
import { CallStreams } from './call-streams.js'; // [proxy]
import { SharedCallStreams } from './call-streams-shared.js'; // [proxy]
import { EndedSessions, SessionIdCodec, clientInfoOf, relayedCapabilities, sessionTag, type SessionClaims } from './session-id.js';
import { answerBatch, batchRefusal } from './batch.js'; // [proxy]
import { ListPager } from './list-cursor.js'; // [proxy]
import { SessionLogLevels, type LogLevel } from './session-log-levels.js'; // [proxy]
import type { SharedSessionForwards } from './session-forwards.js'; // [proxy]

export interface McpEndpointDeps {
  readonly config: DataPlaneConfig;
  readonly snapshots: SnapshotSource;
  readonly pool: UpstreamPool;
  readonly logger: DataPlaneLogger;
  readonly clock: () => number;
  /**
   * [ops] Rate-limit stage 1b, after authentication: takes one call from the token's
   * bucket; false when it answered 429 itself. Absent: no per-token limit.
   */
  readonly tokenRateLimit?: (tokenId: string, res: ServerResponse) => Promise<boolean>;
  /** [proxy] Ended sessions (shared across replicas through Redis when configured); default local to this endpoint. */
  readonly endedSessions?: EndedSessions;
  /** [proxy] Levels sessions set with `logging/setLevel` (shared likewise); default local to this endpoint. */
  readonly sessionLogLevels?: SessionLogLevels;
  /** [proxy] Cancellations and relayed-request answers for calls held by other replicas (Redis); absent: dropped here. */
  readonly sessionForwards?: SharedSessionForwards;
  /** [proxy] Every session's GET-stream events, readable by every replica (Redis); absent: each replica replays its own. */
  readonly sessionEvents?: SharedSessionEvents;
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
  const ended = deps.endedSessions ?? new EndedSessions(config.sessionMaxAgeMs);
  const logLevels = deps.sessionLogLevels ?? new SessionLogLevels(config.sessionMaxAgeMs);
  const listPages = new ListPager(config.sessionSecret, config.listPageSize); // [proxy] cursors of merged lists
  const relayedMetric = processMetrics().relayed;
  const calls = new CallRegistry({ onRelayed: (method, outcome) => relayedMetric.inc({ method: RELAYED_METHODS.has(method) ? method : 'other', outcome }) }); // [ops]
  const callStreams = new CallStreams({ resumeGraceMs: config.streamResumeGraceMs, primeAfterMs: config.streamPrimeAfterMs }); // [proxy] resumable POST streams
  const forwards = deps.sessionForwards;
  const streams = new SessionStreams(
    DEFAULT_SESSION_STREAMS,
    () => snapshots.current(),
    forwards && {
      forwards,
      ...(deps.sessionEvents ? { events: deps.sessionEvents } : {}), // [proxy] GET streams resumed through any replica
      // [proxy] Nobody here watches the upstream URI any more (unsubscribed through another replica).
      unwatched: (upstreamKey, uri) =>
        void pool.peek(upstreamKey)?.request('resources/unsubscribe', { uri }, { timeoutMs: config.callTimeoutMs }).catch((error: unknown) => {
          logger.debug({ err: error, upstream: upstreamKey, uri }, 'could not unsubscribe the upstream session from a resource nobody here watches');
        }),
    },
  );
  const rules = new RulesRuntime(); // [rules] compiled once per snapshot and gateway
  pool.onNotification((upstreamKey, notification) => streams.onUpstreamNotification(upstreamKey, notification));
  // [proxy] A new upstream session holds none of the old one's subscriptions: subscribe again
  // to what sessions here still watch, so their resources/updated keep coming.
  pool.onSessionRenewed((upstreamKey) => {
    const connection = pool.peek(upstreamKey);
    for (const uri of streams.upstreamSubscriptions(upstreamKey)) {
      connection?.request('resources/subscribe', { uri }, { timeoutMs: config.callTimeoutMs }).catch((error: unknown) => {
        logger.warn({ err: error, upstream: upstreamKey, uri }, 'could not renew a resource subscription on a new upstream session; its updates stop until the client subscribes again');
      });
    }
  });
  // [proxy] Call streams resumed through another replica than the one holding the call.
  const sharedStreams = forwards ? new SharedCallStreams(callStreams, forwards, logger) : undefined;
  // [proxy] What another replica got for a call held here.
  forwards?.subscribeForwards((forwarded) => {
    if (forwarded.kind === 'cancel') calls.cancelTagged(forwarded.tag, forwarded.requestId, forwarded.reason);
    else if (forwarded.kind === 'answer') calls.answerTagged(forwarded.tag, forwarded.id, forwarded.result, forwarded.error);
    else if (forwarded.kind === 'session-notify') streams.onSharedNotify(forwarded.tag, { method: forwarded.method, ...(forwarded.params ? { params: forwarded.params } : {}) });
    else if (forwarded.kind === 'session-unsubscribe') streams.onSharedUnsubscribe(forwarded.tag, forwarded.uri);
    else if (forwarded.kind === 'list-changed') streams.onSharedListChanged(forwarded.gateways, forwarded.method, forwarded.from);
    else sharedStreams?.onMessage(forwarded);
  });

  return async function handleMcp(req: HttpRequest, res: ServerResponse, gatewaySlug: string): Promise<void> {
    if ((req.method !== 'POST' && req.method !== 'DELETE' && req.method !== 'GET') || (req.method === 'GET' && !acceptsEventStream(req.headers.accept))) {
      res.setHeader('allow', 'GET, POST, DELETE');
      return sendError(res, 405, null, JSON_RPC_ERRORS.INVALID_REQUEST, `method ${req.method} is not allowed here; this gateway takes POST (messages), GET with Accept: text/event-stream (the server-to-client stream) and DELETE (end session)`);
    }
    const now = clock();
    const admitted = admitRequest({ compiled: snapshots.current(), gatewaySlug, authorization: req.headers.authorization, now });
    if (!admitted.ok) {
      req.resume();
      return sendRefusal(res, null, admitted);
    }
    const admission = admitted.value;
    callAudit(res)?.admitted(admission); // [audit]
    // [ops] rate limit per access token (stage 1b), right after authentication.
    if (deps.tokenRateLimit && !(await deps.tokenRateLimit(admission.principal.grant.token.tokenId, res))) {
      req.resume();
      return;
    }

    if (req.method === 'DELETE') {
      const session = checkSession(req, admission, now);
      if (!session.ok) return sendError(res, session.status, null, JSON_RPC_ERRORS.INVALID_REQUEST, session.message);
      ended.sweep(now);
      await ended.add(session.id, session.claims.issuedAt); // [proxy] every replica, with Redis
      streams.end(session.id);
      res.writeHead(200).end();
      return;
    }

    if (req.method === 'GET') {
      const session = checkSession(req, admission, now);
      if (!session.ok) return sendError(res, session.status, null, JSON_RPC_ERRORS.INVALID_REQUEST, session.message);
      const lastEventId = req.headers['last-event-id'];
      // [proxy] The rest of a call's stream the client lost (or was asked to poll for).
      if (typeof lastEventId === 'string' && CallStreams.isCallStreamEventId(lastEventId)) {
        if (callStreams.resume(session.id, lastEventId, res)) return;
        if (sharedStreams && (await sharedStreams.resume(sessionTag(session.id), lastEventId, res))) return;
      }
      const opened = await streams.open(session.id, session.claims, config.sessionMaxAgeMs, res, typeof lastEventId === 'string' ? lastEventId : undefined, now);
      if (!opened) return sendError(res, 409, null, JSON_RPC_ERRORS.INVALID_REQUEST, 'this session already has an open GET stream; close it before opening another');
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
      // [proxy] JSON-RPC batches: only for 2025-03-26 sessions; each element runs this handler.
      const batchSession = checkSession(req, admission, now);
      const refused = batchRefusal(parsed, batchSession.ok ? batchSession.claims.protocolVersion : req.headers[VERSION_HEADER]);
      if (refused) return sendError(res, 400, null, JSON_RPC_ERRORS.INVALID_REQUEST, refused);
      if (!batchSession.ok) return sendError(res, batchSession.status, null, JSON_RPC_ERRORS.INVALID_REQUEST, batchSession.message);
      return answerBatch(parsed, req, res, (one, answer) => (auditBatchElement(res, one, answer), handleMcp(one, answer, gatewaySlug))); // [audit] each element
    }
    const classified = classifyMessage(parsed);
    if (!classified.ok) return sendError(res, 400, classified.id, JSON_RPC_ERRORS.INVALID_REQUEST, classified.reason);
    const message = classified.message;
    noteMcpMethod(res, message.kind === 'response' ? '(response)' : message.method); // [ops] metrics label
    callAudit(res)?.received(message, text); // [audit]

    if (message.kind === 'request' && message.method === 'initialize') {
      return initialize(res, message.id, message.params, admission, now);
    }

    const session = checkSession(req, admission, now);
    const id = message.kind === 'request' ? message.id : null;
    if (!session.ok) return sendError(res, session.status, id, JSON_RPC_ERRORS.INVALID_REQUEST, session.message);
    callAudit(res)?.session(session.id, session.claims); // [audit]
    const version = req.headers[VERSION_HEADER];
    if (typeof version === 'string' && !isSupportedProtocolVersion(version)) {
      return sendError(res, 400, id, JSON_RPC_ERRORS.INVALID_REQUEST, `unsupported MCP-Protocol-Version ${version}; this gateway speaks ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')}`);
    }

    if (message.kind === 'response') {
      // The client's answer to a request relayed to it during a call: back to the upstream,
      // through the replica holding the call when it is not this one.
      if (!calls.answer(session.id, message.id, message.result, message.error)) {
        if (forwards && typeof message.id === 'string' && message.id.startsWith(RELAYED_ID_PREFIX)) {
          await forwards.publishForward({ kind: 'answer', tag: sessionTag(session.id), id: message.id, ...(message.error === undefined ? { result: message.result } : { error: message.error }) });
        } else {
          logger.debug({ id: message.id }, 'a client answered a request that is not waiting (ended, cancelled or on another replica)');
        }
      }
      res.writeHead(202).end();
      return;
    }
    if (message.kind === 'notification') {
      if (message.method === 'notifications/cancelled') {
        const { requestId, reason } = message.params ?? {};
        if (!calls.cancel(session.id, requestId, reason) && forwards && (typeof requestId === 'string' || typeof requestId === 'number')) {
          await forwards.publishForward({ kind: 'cancel', tag: sessionTag(session.id), requestId, ...(typeof reason === 'string' ? { reason } : {}) });
        }
      }
      res.writeHead(202).end();
      return;
    }

    // Calls that may produce interim messages answer on an SSE stream when the client takes one.
    const streamed = STREAMED_METHODS.has(message.method);
    // Deferred: the stream starts with the first interim message; a call with none is answered as JSON.
    // A stream the client can resume: its connection dropping cancels the call only when it
    // never started or the client did not come back in time (`call-streams.ts`).
    const audited = callAudit(res); // [audit] this call's record (a stream that may outlive its response keeps it open)
    const stream =
      streamed && acceptsEventStream(req.headers.accept)
        ? callStreams.open(session.id, res, audited ? { started: () => audited.hold(), settled: (delivered) => audited.settle(delivered) } : undefined)
        : undefined;
    const call = calls.begin(session.id, message.id);
    const onGone = () => call.abort();
    if (stream) stream.onAbandon(onGone);
    else res.once('close', onGone);
    const meta = message.params?._meta;
    const progressToken = typeof meta === 'object' && meta !== null ? (meta as Record<string, unknown>).progressToken : undefined;
    const reply = (body: string) => {
      if (stream?.started) {
        audited?.responded(body); // [audit]
        stream.finish(body);
      } else {
        stream?.release();
        sendJson(res, 200, body);
      }
    };
    const callRules = rules.hook(admission, { audit: audited, signal: call.signal, headers: req.headers });
    try {
      const result = await routeRequest(message.method, message.params, {
        admission,
        pool,
        listTimeoutMs: config.listTimeoutMs,
        callTimeoutMs: config.callTimeoutMs,
        listPages, // [proxy]
        logger,
        signal: call.signal,
        audit: audited, // [audit] stage 10
        ...(callRules ? { rules: callRules } : {}), // [rules] stages 6 and 9
        ...(streamed
          ? {
              relay: calls.relay({
                sessionId: session.id,
                capabilities: session.claims.clientCapabilities,
                stream,
                progressToken: typeof progressToken === 'string' || typeof progressToken === 'number' ? progressToken : undefined,
                minimumLogRank: logLevels.minimumRank(session.id, now),
                pausable: session.claims.protocolVersion >= POLLING_PROTOCOL_VERSION,
                audit: audited, // [audit] server-to-client requests and their answers
                rules: callRules, // [rules] relayedRequests and relayedAnswers
              }),
            }
          : {}),
        ...(message.method.startsWith('resources/') ? { subscriptions: streams.subscriptions(session.id, session.claims, config.sessionMaxAgeMs, now) } : {}),
        ...(message.method === 'logging/setLevel' ? { setLogLevel: (level: LogLevel) => logLevels.set(session.id, session.claims.issuedAt, level) } : {}),
      });
      audited?.answered(result); // [audit]
      reply(resultMessage(message.id, result));
    } catch (error) {
      if (call.signal.aborted) {
        // Cancelled by the client (or it went away): no answer is expected.
        if (audited) audited.cancelled = true; // [audit] a stream that ends without an answer is a cancelled call, not an answered one
        if (stream?.started) stream.end();
        else if (!res.writableEnded && !res.destroyed) sendJson(res, 200, errorMessage(message.id, { code: REQUEST_CANCELLED, message: 'the request was cancelled' }));
        return;
      }
      if (error instanceof RpcError) {
        return reply(errorMessage(message.id, { code: error.code, message: error.message, ...(error.data === undefined ? {} : { data: error.data }) }));
      }
      const correlationId = audited?.correlationId ?? crypto.randomUUID();
      logger.error({ err: error, correlationId, method: message.method }, 'unexpected error while routing');
      return reply(errorMessage(message.id, { code: JSON_RPC_ERRORS.INTERNAL_ERROR, message: `internal error (correlation id ${correlationId})` }));
    } finally {
      if (!stream) res.off('close', onGone);
      call.finish();
    }
  };

  function initialize(res: ServerResponse, id: JsonRpcId, params: Record<string, unknown> | undefined, admission: Admission, now: number): void {
    const protocolVersion = negotiateProtocolVersion(params?.protocolVersion);
    const { gateway } = admission.gateway;
    const sessionId = sessions.issue(
      {
        workspaceId: admission.compiled.workspaceId,
        gatewayId: gateway.id,
        connectionId: admission.principal.grant.connectionId,
        protocolVersion,
        clientCapabilities: relayedCapabilities(params?.capabilities),
        clientInfo: clientInfoOf(params?.clientInfo), // [audit]
      },
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
    if (!claims || ended.has(header, now, claims.issuedAt)) return unknown;
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
 * it, with `listChanged` (upstream list changes are relayed on the GET stream) and, for
 * resources, `subscribe` (a subscription goes to the owning upstream; one that does not
 * support it answers with its error). Logging is relayed per call; completions are routed
 * to the owner of the prompt or resource template.
 */
export function gatewayCapabilities(gateway: CompiledGateway): Record<string, object> {
  const serves = (type: 'tools' | 'prompts' | 'resources' | 'resourceTemplates') =>
    gateway.entries.some((entry) => entry.assignment.enabled && entry.assignment.features[type].some((feature) => feature.withheld === undefined));
  const capabilities: Record<string, object> = {};
  if (serves('tools')) capabilities.tools = { listChanged: true };
  if (serves('prompts')) capabilities.prompts = { listChanged: true };
  if (serves('resources') || serves('resourceTemplates')) capabilities.resources = { subscribe: true, listChanged: true };
  if (serves('prompts') || serves('resourceTemplates')) capabilities.completions = {};
  capabilities.logging = {};
  return capabilities;
}

/** Requests whose upstream may send progress, logging or requests before answering. */
const STREAMED_METHODS = new Set(['tools/call', 'prompts/get', 'resources/read']);

/** Server-to-client methods kept as metric labels; anything else an upstream asks is `other`. */
const RELAYED_METHODS = new Set(['sampling/createMessage', 'elicitation/create', 'roots/list']);

/** The first protocol version in which a server may close a call's stream for the client to poll the rest (SEP-1699). */
const POLLING_PROTOCOL_VERSION = '2025-11-25';


function acceptsEventStream(header: string | undefined): boolean {
  if (header === undefined) return false;
  return header
    .split(',')
    .map((part) => part.split(';')[0]!.trim().toLowerCase())
    .some((type) => type === 'text/event-stream');
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

function readBody(req: HttpRequest, limit: number): Promise<string> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    return Promise.reject(new BodyTooLarge());
  }
  // Plain 'data'/'end' listeners: an async iterator over the stream costs a promise per chunk.
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.resume();
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8'));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const onAborted = () => onError(new Error('the client closed the connection while sending its request'));
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onClose = () => {
      if (!req.complete) onAborted();
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

function sendRefusal(res: ServerResponse, id: JsonRpcId | null, refusal: Refusal): void {
  callAudit(res)?.refused(refusal); // [audit]
  for (const [name, value] of Object.entries(refusal.headers ?? {})) res.setHeader(name, value);
  sendJson(res, refusal.status, errorMessage(id, { code: refusal.rpcCode, message: refusal.message, data: { code: refusal.code, ...refusal.detail } }));
}

function sendError(res: ServerResponse, status: number, id: JsonRpcId | null, code: number, message: string): void {
  sendJson(res, status, errorMessage(id, { code, message }));
}

function sendJson(res: ServerResponse, status: number, body: string): void {
  callAudit(res)?.responded(body); // [audit]
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
}
