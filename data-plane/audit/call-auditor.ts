import { randomUUID } from 'node:crypto';
import type { IncomingMessage as HttpRequest, ServerResponse } from 'node:http';
import type { Result } from '@modelcontextprotocol/sdk/types.js';
import type { AuditPolicyAction } from '../../schema/audit/types.js';
import type { RelayAuditHook, RelayedRequestRecord } from '../mcp/calls.js';
import type { IncomingMessage as RpcMessage } from '../mcp/json-rpc.js';
import type { CallAuditHook, UpstreamTarget } from '../mcp/router.js';
import type { SessionClaims } from '../mcp/session-id.js';
import type { Admission } from '../policy/admit.js';
import type { ClientAddressConfig } from '../policy/client-address.js';
import type { RateLimitRefusal } from '../policy/rate-limit.js';
import type { Refusal } from '../policy/refusal.js';
import type { CompiledSnapshot } from '../snapshot/compiled-snapshot.js';
import type { SnapshotSource } from '../snapshot/snapshot-source.js';

/** Where finished calls go: the shipper, or a test's sink. */
export interface AuditSink {
  /**
   * Takes a finished call (to be turned into entries later, off the call's path). Never
   * blocks, never throws; false when it was dropped (the buffer is full).
   */
  accept(call: AuditedCall): boolean;
  /** How full the buffer is, 0..1. */
  load(): number;
  /** Ships what is buffered (within its deadline) and stops. */
  close(): Promise<void>;
}

/** A refusal by a pipeline stage, as the audit trail names it (see AUDIT.md, `stage:<name>`). */
export interface StageRefusal {
  readonly stage: string;
  /** Stable code (`RATE_LIMITED`, `UNAUTHENTICATED`, …). */
  readonly code: string;
  readonly rpcCode: number | null;
  /** Built lazily from what the stage knew; never on the call's path. */
  readonly message: () => string;
}

/** One upstream request of a call and, once answered, its outcome. */
export interface UpstreamLegRecord {
  readonly target: UpstreamTarget;
  readonly params: Record<string, unknown>;
  /** `performance.now()` when sent. */
  readonly sentAt: number;
  startedAt?: number;
  endedAt?: number;
  outcome?: { readonly result: Result } | { readonly error: unknown };
}

export interface PolicyRecord {
  readonly action: AuditPolicyAction;
  readonly at: number;
}

/** What entries of calls recorded by one auditor share. */
export interface AuditorContext {
  /** `dataPlaneInstance` of every entry. */
  readonly instance: string;
  /** For the origin IP, read as the rate limiter reads it. */
  readonly clientAddress: ClientAddressConfig;
}

const calls = new WeakMap<ServerResponse, AuditedCall>();

/** The call being recorded for a response, if auditing is on. */
export function callAudit(res: ServerResponse): AuditedCall | undefined {
  return calls.get(res);
}

/**
 * Records one request to `/mcp/<slug>`: references and `performance.now()` stamps only.
 * Nothing is serialized, scrubbed, hashed or counted here; the shipper builds the entries
 * from this record after the answer was sent (`build-entries.ts`). Implements the
 * router's {@link CallAuditHook}, so the router reports upstream legs and policy actions
 * straight into it.
 */
export class AuditedCall implements CallAuditHook, RelayAuditHook {
  readonly correlationId = randomUUID();
  /** `performance.now()` at arrival. */
  readonly startedAt = performance.now();
  /** Wall clock at arrival; later stamps are this plus a monotonic offset. */
  readonly startedEpoch = Date.now();
  /** The snapshot held at arrival (the workspace of refusals before admission). */
  readonly compiled: CompiledSnapshot | undefined;
  readonly remoteAddress: string | undefined;
  admission: Admission | undefined;
  request: Extract<RpcMessage, { kind: 'request' }> | undefined;
  requestText: string | undefined;
  sessionId: string | undefined;
  claims: SessionClaims | undefined;
  refusal: StageRefusal | Refusal | undefined;
  responseBody: string | undefined;
  answeredResult: unknown;
  upstream: UpstreamLegRecord[] | undefined;
  /** Server-to-client requests the upstream sent while serving the call, in arrival order. */
  relayed: RelayedRequestRecord[] | undefined;
  actions: PolicyRecord[] | undefined;
  statusCode = 0;
  endedAt = 0;
  /** The connection closed before the answer was written (the client went away). */
  aborted = false;
  /** The client cancelled the call (`notifications/cancelled`, or it went away): recorded as cancelled however its stream ended. */
  cancelled = false;
  /** Whether a held call's answer reached a client ({@link hold}); undefined: read from the response. */
  delivered: boolean | undefined;
  #held = false;
  #finishLater: (() => void) | undefined;

  /** The request's headers (not the request itself: a record lives until the next flush). */
  readonly headers: HttpRequest['headers'];

  constructor(
    readonly context: AuditorContext,
    req: HttpRequest,
    readonly slug: string,
    snapshots: SnapshotSource,
  ) {
    this.compiled = snapshots.current();
    this.remoteAddress = req.socket.remoteAddress;
    this.headers = req.headers;
  }

  admitted(admission: Admission): void {
    this.admission = admission;
  }

  /** The parsed message and its text; only requests are audited. */
  received(message: RpcMessage, text: string): void {
    if (message.kind !== 'request') return;
    this.request = message;
    this.requestText = text;
  }

  session(id: string, claims: SessionClaims): void {
    this.sessionId = id;
    this.claims = claims;
  }

  /** An admission stage refused (authentication, kill switch, authorization, no gateway). */
  refused(refusal: Refusal): void {
    this.refusal = refusal;
  }

  /** A stage outside admission refused: Host/Origin validation. */
  refusedByOrigin(code: string, message: string): void {
    this.refusal = { stage: 'origin', code, rpcCode: -32000, message: () => message };
  }

  rateLimited(refusal: RateLimitRefusal): void {
    this.refusal = {
      stage: 'rate_limit',
      code: 'RATE_LIMITED',
      rpcCode: -32055,
      // As `sendRateLimited` words it.
      message: () =>
        `rate limit exceeded for ${refusal.scope === 'ip' ? 'this client address' : 'this access token'} (${Math.round(refusal.limits.refillPerSecond * 60)} requests per minute, bursts of ${refusal.limits.capacity}); retry after ${Math.max(1, Math.ceil(refusal.retryAfterMs / 1000))} s`,
    };
  }

  /** The JSON-RPC message answered (JSON body, or the final message of an SSE stream). */
  responded(body: string): void {
    this.responseBody = body;
  }

  /** The result object the answer was serialized from (an upstream's own, when no rule rewrote it). */
  answered(result: unknown): void {
    this.answeredResult = result;
  }

  // ── CallAuditHook (the router) ──

  // A leg reported after the call finished (a list page past its deadline) is left out:
  // the record may be built already, and the call's answer did not wait for it.

  upstreamRequest(target: UpstreamTarget, params: Record<string, unknown>): void {
    if (this.endedAt !== 0) return;
    (this.upstream ??= []).push({ target, params, sentAt: performance.now() });
  }

  upstreamResponse(target: UpstreamTarget, startedAt: number, outcome: { readonly result: Result } | { readonly error: unknown }): void {
    if (this.endedAt !== 0) return;
    const legs = (this.upstream ??= []);
    let leg: UpstreamLegRecord | undefined;
    for (let i = legs.length - 1; i >= 0; i--) {
      if (legs[i]!.target === target && legs[i]!.outcome === undefined) {
        leg = legs[i];
        break;
      }
    }
    if (!leg) {
      leg = { target, params: {}, sentAt: startedAt };
      legs.push(leg);
    }
    leg.startedAt = startedAt;
    leg.endedAt = performance.now();
    leg.outcome = outcome;
  }

  policy(action: AuditPolicyAction): void {
    (this.actions ??= []).push({ action, at: performance.now() });
  }

  // ── RelayAuditHook (the call's relay, `mcp/calls.ts`) ──

  relayedRequest(record: RelayedRequestRecord): void {
    if (this.endedAt !== 0) return;
    (this.relayed ??= []).push(record);
  }

  /**
   * Keeps the record open after its response closed: a call whose stream the client may
   * resume on another connection (`call-streams.ts`) ends when {@link settle} says so.
   */
  hold(): void {
    this.#held = true;
  }

  /** Ends a {@link hold}: `delivered` says whether the stream's end reached a client connection. */
  settle(delivered: boolean): void {
    if (!this.#held) return;
    this.#held = false;
    this.delivered = delivered;
    const finish = this.#finishLater;
    this.#finishLater = undefined;
    finish?.();
  }

  /** @internal The response closed: finish now, or once the hold is settled. */
  finishWhenSettled(finish: () => void): boolean {
    if (!this.#held) return false;
    this.#finishLater = finish;
    return true;
  }

  /** Entries this call will produce, for the buffer's bound. */
  legCount(): number {
    return 2 + 2 * (this.upstream?.length ?? 0) + 2 * (this.relayed?.length ?? 0) + (this.actions?.length ?? 0) + (this.refusal ? 1 : 0);
  }

  /** Epoch milliseconds of a `performance.now()` stamp of this call. */
  epochOf(stamp: number): number {
    return this.startedEpoch + (stamp - this.startedAt);
  }
}

export interface CallAuditorOptions {
  readonly snapshots: SnapshotSource;
  readonly context: AuditorContext;
}

/**
 * Starts a record per request and hands it to the sink when the response closes.
 * Requests refused before authentication (anonymous) are kept only while the sink is
 * less than half full, so a flood of them cannot crowd out authenticated calls.
 */
export class CallAuditor {
  constructor(
    private readonly sink: AuditSink,
    private readonly options: CallAuditorOptions,
  ) {}

  begin(req: HttpRequest, res: ServerResponse, slug: string): AuditedCall {
    const call = new AuditedCall(this.options.context, req, slug, this.options.snapshots);
    calls.set(res, call);
    finishers.set(res, this);
    res.once('close', onResponseClose);
    return call;
  }

  /** @internal */
  finish(call: AuditedCall, res: ServerResponse): void {
    if (call.finishWhenSettled(() => this.finish(call, res))) return;
    call.endedAt = performance.now();
    call.statusCode = res.statusCode;
    // A batch element's captured response has no `writableFinished`.
    call.aborted = call.cancelled || (call.delivered === undefined ? !(res.writableFinished ?? res.writableEnded) : !call.delivered);
    if (!call.sessionId) {
      // initialize: the session it issued.
      const issued = res.getHeader('mcp-session-id');
      if (typeof issued === 'string') call.sessionId = issued;
    }
    if (!worthRecording(call)) return;
    if (!call.admission && this.sink.load() >= 0.5) return;
    this.sink.accept(call);
  }
}

const finishers = new WeakMap<ServerResponse, CallAuditor>();

/**
 * Records one element of a JSON-RPC batch (protocol 2025-03-26) as a call of its own,
 * with the element's request and captured response, when the batch's request is being
 * recorded. The batch's own request then has no message and is not recorded itself.
 */
export function auditBatchElement(batchResponse: ServerResponse, req: HttpRequest, res: ServerResponse): void {
  const auditor = finishers.get(batchResponse);
  const batch = calls.get(batchResponse);
  if (auditor && batch) auditor.begin(req, res, batch.slug);
}

/** One shared listener (no closure per request): `this` is the response. */
function onResponseClose(this: ServerResponse): void {
  const call = calls.get(this);
  const auditor = finishers.get(this);
  if (call && auditor) auditor.finish(call, this);
}

/** A request, a refusal or an HTTP error, of a workspace: successful GET streams, DELETEs, notifications and responses are not. */
function worthRecording(call: AuditedCall): boolean {
  if (!(call.admission?.compiled ?? call.compiled)) return false;
  return call.request !== undefined || call.refusal !== undefined || call.statusCode >= 400;
}
