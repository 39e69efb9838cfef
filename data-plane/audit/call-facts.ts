import type { AuditPolicyAction } from '../../schema/audit/types.js';
import type { AuditEntry } from '../../schema/audit/types.js';
import { toRpcError } from '../mcp/router.js';
import { buildEntries, buildEntryTexts, int32, type EntryBuilderDeps } from './build-entries.js';
import type { AuditedCall } from './call-auditor.js';
import type { ClientAddressConfig } from '../policy/client-address.js';

/**
 * What the entries of one finished call are built from (`build-entries.ts`), as plain
 * data: scalars, strings, and the JSON values of params and results. No snapshot, no
 * request object, no function: facts cross to the entry builder's worker thread by
 * structured clone (`entry-builder.ts`), so the serializing, scrubbing and token
 * counting of audit entries runs beside the calls instead of between them.
 *
 * Taking the facts of a call is cheap (references and ids); the rare paths that need code
 * (a stage refusal's message, an upstream error's JSON-RPC form) run here, once.
 */
export interface CallFacts {
  readonly correlationId: string;
  /** `performance.now()` stamps of this process; `startedEpoch` is wall-clock at `startedAt`. */
  readonly startedAt: number;
  readonly startedEpoch: number;
  readonly endedAt: number;
  readonly statusCode: number;
  readonly aborted: boolean;
  readonly slug: string;
  readonly instance: string;
  readonly clientAddress: ClientAddressConfig;
  readonly remoteAddress: string | undefined;
  readonly headers: { readonly [name: string]: string | string[] | undefined };
  readonly workspaceId: string;
  readonly snapshotVersion: number;
  readonly gatewayId: string | null;
  /** The gateway's `audit` settings (absent in snapshots compiled before they existed). */
  readonly auditSettings: { readonly bodies?: string; readonly maxBodyBytes?: number } | undefined;
  readonly grant: { readonly tokenId: string; readonly hostId: string; readonly connectionId: string; readonly userId: string | null } | undefined;
  readonly clientInfo: { readonly name: string; readonly version: string } | undefined;
  readonly sessionId: string | undefined;
  readonly request: { readonly method: string; readonly id: string | number; readonly params: Record<string, unknown> | undefined } | undefined;
  readonly requestText: string | undefined;
  readonly responseBody: string | undefined;
  readonly refusal: { readonly code: string; readonly stage: string | undefined; readonly rpcCode: number | null; readonly message: string } | undefined;
  readonly upstream: readonly UpstreamLegFacts[];
  /** Server-to-client requests relayed during the call (absent in facts taken before they were recorded). */
  readonly relayed?: readonly RelayedLegFacts[];
  readonly actions: readonly { readonly action: AuditPolicyAction; readonly at: number }[];
}

export interface UpstreamLegFacts {
  readonly serverId: string;
  readonly assignmentId: string;
  readonly method: string;
  readonly params: Record<string, unknown>;
  readonly sentAt: number;
  readonly startedAt: number | undefined;
  readonly endedAt: number | undefined;
  readonly outcome: { readonly result: unknown } | { readonly error: { readonly code: number | null; readonly message: string } } | undefined;
  /** The client's answer was serialized from this leg's result object itself (no rule rewrote it): its text is the answer's. */
  readonly relayedAsIs: boolean;
}

/** A server-to-client request of the call (sampling, elicitation, roots) and what went back upstream. */
export interface RelayedLegFacts {
  readonly method: string;
  readonly params: Record<string, unknown> | undefined;
  /** The id the client was asked under; undefined when the gateway did not relay it (the outcome says why). */
  readonly relayedId: string | undefined;
  readonly receivedAt: number;
  readonly bytesOut: number | undefined;
  readonly endedAt: number | undefined;
  /** Undefined: still unanswered when the facts were taken. */
  readonly outcome: { readonly result: unknown } | { readonly error: { readonly code: number | null; readonly message: string } } | undefined;
}

/**
 * The audit entries of a finished call, built here (the event loop; tests): its facts,
 * then {@link buildEntries} (which pushes each entry's JSON onto `texts` when given).
 */
export function buildCallEntries(call: AuditedCall, deps: EntryBuilderDeps, texts?: string[]): AuditEntry[] {
  const facts = callFacts(call);
  return facts ? buildEntries(facts, deps, texts) : [];
}

/** The JSON of each audit entry of a finished call, pushed onto `texts` ({@link buildEntryTexts}); returns how many. */
export function buildCallEntryTexts(call: AuditedCall, deps: EntryBuilderDeps, texts: string[]): number {
  const facts = callFacts(call);
  return facts ? buildEntryTexts(facts, deps, texts) : 0;
}

/** The facts of a finished call; undefined when it belongs to no workspace (nothing to record). */
export function callFacts(call: AuditedCall): CallFacts | undefined {
  const compiled = call.admission?.compiled ?? call.compiled;
  if (!compiled) return undefined;
  const gateway = call.admission?.gateway ?? compiled.gatewaysBySlug.get(call.slug);
  const grant = call.admission?.principal.grant;
  const refusal = call.refusal;
  const request = call.request;
  return {
    correlationId: call.correlationId,
    startedAt: call.startedAt,
    startedEpoch: call.startedEpoch,
    endedAt: call.endedAt,
    statusCode: call.statusCode,
    aborted: call.aborted,
    slug: call.slug,
    instance: call.context.instance,
    clientAddress: call.context.clientAddress,
    remoteAddress: call.remoteAddress,
    headers: call.headers,
    workspaceId: compiled.workspaceId,
    snapshotVersion: compiled.version,
    gatewayId: gateway?.gateway.id ?? null,
    // Read defensively: snapshots compiled before `gateway.audit` existed have none.
    auditSettings: (gateway?.gateway as { audit?: { bodies?: string; maxBodyBytes?: number } } | undefined)?.audit,
    grant: grant ? { tokenId: grant.token.tokenId, hostId: grant.token.hostId, connectionId: grant.connectionId, userId: grant.userId } : undefined,
    clientInfo: call.claims?.clientInfo,
    sessionId: call.sessionId,
    request: request ? { method: request.method, id: request.id, params: request.params } : undefined,
    requestText: call.requestText,
    responseBody: call.responseBody,
    refusal: refusal
      ? 'stage' in refusal
        ? { code: refusal.code, stage: refusal.stage, rpcCode: refusal.rpcCode, message: refusal.message() }
        : { code: refusal.code, stage: undefined, rpcCode: refusal.rpcCode, message: refusal.message }
      : undefined,
    upstream: (call.upstream ?? []).map((leg) => {
      const assignment = leg.target.entry.assignment;
      const outcome = leg.outcome;
      return {
        serverId: assignment.serverId,
        assignmentId: assignment.id,
        method: leg.target.method,
        params: leg.params,
        sentAt: leg.sentAt,
        startedAt: leg.startedAt,
        endedAt: leg.endedAt,
        outcome: outcomeFacts(outcome),
        relayedAsIs: outcome !== undefined && 'result' in outcome && outcome.result === call.answeredResult,
      };
    }),
    relayed: (call.relayed ?? []).map((record) => ({
      method: record.method,
      params: record.params,
      relayedId: record.relayedId,
      receivedAt: record.receivedAt,
      bytesOut: record.bytesOut,
      endedAt: record.endedAt,
      outcome: outcomeFacts(record.outcome),
    })),
    actions: call.actions ?? [],
  };
}

/** An upstream's or a client's answer as plain data: the result, or the error as JSON-RPC describes it. */
function outcomeFacts(outcome: { readonly result: unknown } | { readonly error: unknown } | undefined): UpstreamLegFacts['outcome'] {
  return outcome === undefined ? undefined : 'result' in outcome ? { result: outcome.result } : { error: describeError(outcome.error) };
}

function describeError(error: unknown): { code: number | null; message: string } {
  try {
    const rpc = toRpcError(error);
    return { code: int32(rpc.code), message: rpc.message };
  } catch {
    return { code: null, message: error instanceof Error ? error.message || error.name : String(error) };
  }
}

