import { createHash, randomUUID } from 'node:crypto';
import type { CappedText, Scrubber } from '../../schema/audit/scrub.js';
import type { AuditEntry, AuditLeg, AuditPolicyAction, AuditStatus } from '../../schema/audit/types.js';
import { AUDIT_STRING_LIMITS, MAX_AUDIT_BODY_CHARS } from '../../schema/audit/limits.js';
import { clientInfoOf } from '../mcp/session-id.js';
import { clientIp } from '../policy/client-address.js';
import type { CallFacts, UpstreamLegFacts } from './call-facts.js';
import type { TokenEstimator } from './token-estimator.js';

/** Body limit of a gateway whose snapshot does not say (`gateway.audit.maxBodyBytes`). */
export const DEFAULT_AUDIT_MAX_BODY_BYTES = 64 * 1024;

export interface EntryBuilderDeps {
  readonly scrubber: Scrubber;
  readonly tokens: TokenEstimator;
}

interface StageInfo {
  readonly stage: string;
  readonly status: AuditStatus;
  /** The stage action asks the control plane for an alert. */
  readonly alert: boolean;
}

/** Refusal codes (`error.data.code`) → the stage that refused (AUDIT.md, "Legs"). */
const STAGE_BY_CODE: { readonly [code: string]: StageInfo } = {
  HOST_NOT_ALLOWED: { stage: 'origin', status: 'blocked', alert: false },
  ORIGIN_NOT_ALLOWED: { stage: 'origin', status: 'blocked', alert: false },
  RATE_LIMITED: { stage: 'rate_limit', status: 'blocked', alert: true },
  UNAUTHENTICATED: { stage: 'authenticate', status: 'blocked', alert: false },
  DISABLED: { stage: 'kill_switch', status: 'blocked', alert: false },
  FORBIDDEN: { stage: 'authorize', status: 'blocked', alert: false },
  NOT_PROVISIONED: { stage: 'provisioning', status: 'blocked', alert: false },
  // A pin mismatch (rug pull) is worth a person's attention.
  WITHHELD: { stage: 'provisioning', status: 'blocked', alert: true },
  GATEWAY_NOT_FOUND: { stage: 'route', status: 'error', alert: false },
  SNAPSHOT_UNAVAILABLE: { stage: 'snapshot', status: 'error', alert: false },
};
const INPUT_STAGE: StageInfo = { stage: 'input', status: 'error', alert: false };

const STAGE_NAMES: { readonly [stage: string]: string } = {
  origin: 'Host and Origin validation',
  rate_limit: 'rate limit',
  authenticate: 'authentication',
  kill_switch: 'kill switch',
  authorize: 'authorization',
  provisioning: 'provisioning and pins',
  route: 'gateway routing',
  snapshot: 'snapshot',
  input: 'request validation',
};

const CANCELLED_CODE = -32800;
/** `RULE_BLOCKED_RPC_CODE` of `mcp/rules-stage.ts` (not imported: the entry worker's bundle stays free of the rule engine). */
const RULE_BLOCKED_CODE = -32070;
const NO_ACTIONS: readonly AuditPolicyAction[] = Object.freeze([]);
/** Upstream params this close in length to the client's are the same text but for the translated name. */
const SAME_TEXT_SLACK = 64;

/**
 * SHA-256 prefixes of recent session ids: calls of a session repeat it. As many as the
 * endpoint's verified-session cache (each entry keeps a ~200-byte id alive; hashing a
 * missed one costs ~1 µs).
 */
const sessionRefs = new Map<string, string>();
const SESSION_REFS = 4096;

function sessionRefOf(sessionId: string): string {
  let ref = sessionRefs.get(sessionId);
  if (ref === undefined) {
    ref = createHash('sha256').update(sessionId).digest('hex').slice(0, 16);
    if (sessionRefs.size >= SESSION_REFS) sessionRefs.clear();
    sessionRefs.set(sessionId, ref);
  }
  return ref;
}
const L = AUDIT_STRING_LIMITS;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
/** The fields of an entry that are the same on every leg of its call. */
type SharedFields = Pick<AuditEntry, 'correlationId' | 'workspaceId' | 'gatewayId' | 'hostId' | 'connectionId' | 'tokenId' | 'userId' | 'clientName' | 'clientVersion' | 'sessionRef' | 'method' | 'featureName' | 'jsonRpcId' | 'originIp' | 'userAgent' | 'dataPlaneId' | 'dataPlaneInstance' | 'snapshotVersion'>;
/** The fields a leg sets itself. */
type OwnFields = Mutable<Omit<AuditEntry, keyof SharedFields>>;

/**
 * Turns a finished call into its audit entries (AUDIT.md, "Legs" and "Fields"): this is
 * where bodies are serialized, scrubbed and cut, tokens estimated and sizes measured, in
 * the shipper after the call, never on its path. Every string is cut to the ingest
 * validator's limits so a batch is never refused for a long header or method name.
 *
 * With `texts`, each entry's JSON (exactly `JSON.stringify(entry)`) is pushed onto it in
 * the same order, with the fields the legs share serialized once per call.
 */
export function buildEntries(call: CallFacts, deps: EntryBuilderDeps, texts?: string[]): AuditEntry[] {
  const entries: AuditEntry[] = [];
  build(call, deps, entries, texts);
  return entries;
}

/**
 * {@link buildEntries} for the shipper: pushes only each entry's JSON onto `texts` (no
 * entry object is kept) and returns how many entries the call has.
 */
export function buildEntryTexts(call: CallFacts, deps: EntryBuilderDeps, texts: string[]): number {
  const before = texts.length;
  build(call, deps, undefined, texts);
  return texts.length - before;
}

function build(call: CallFacts, deps: EntryBuilderDeps, entries: AuditEntry[] | undefined, texts: string[] | undefined): void {
  const { scrubber, tokens } = deps;
  const grant = call.grant;
  const settings = call.auditSettings;
  const full = settings?.bodies === 'full';
  const maxBody = Math.min(settings?.maxBodyBytes ?? DEFAULT_AUDIT_MAX_BODY_BYTES, MAX_AUDIT_BODY_CHARS);

  const request = call.request;
  const params = request?.params;
  const method = request ? clip(request.method, L.method) : null;
  const headers = call.headers;
  const clientInfo = call.clientInfo ?? (request?.method === 'initialize' ? clientInfoOf(params?.clientInfo) : undefined);
  const ip = clientIp(call.remoteAddress, headers, call.clientAddress);
  const upstreamLegs = call.upstream;
  // The client legs of a routed call name its upstream; a list fan-out is the gateway's own
  // merged answer, whatever number of upstreams it asked, so its client legs name none.
  const fanOut = FAN_OUT_METHODS.has(request?.method ?? '');
  const single = upstreamLegs.length === 1 && !fanOut ? upstreamLegs[0]! : undefined;

  const { workspaceId, gatewayId } = call;
  const hostId = grant?.hostId ?? null;
  const connectionId = grant?.connectionId ?? null;
  const tokenId = grant?.tokenId ?? null;
  const userId = grant?.userId ?? null;
  const clientName = clientInfo ? clip(clientInfo.name, L.name) : null;
  const clientVersion = clientInfo ? clip(clientInfo.version, L.name) : null;
  const sessionRef = call.sessionId ? sessionRefOf(call.sessionId) : null;
  const featureName = featureOf(request?.method, params);
  const jsonRpcId = request ? clip(String(request.id), L.jsonRpcId) : null;
  const originIp = ip === 'unknown' ? null : clip(ip, L.originIp);
  const userAgent = typeof headers['user-agent'] === 'string' ? clip(headers['user-agent'], L.userAgent) : null;
  const serverId = single?.serverId ?? null;
  const assignmentId = single?.assignmentId ?? null;
  const { correlationId, instance, snapshotVersion } = call;
  const epochOf = (stamp: number) => call.startedEpoch + (stamp - call.startedAt);
  // What every entry of the call shares, last in each entry (one key order, one hidden
  // class) and serialized once: an entry's JSON is its own fields' JSON, then this.
  const shared: SharedFields = {
    correlationId,
    workspaceId,
    gatewayId,
    hostId,
    connectionId,
    tokenId,
    userId,
    clientName,
    clientVersion,
    sessionRef,
    method,
    featureName,
    jsonRpcId,
    originIp,
    userAgent,
    dataPlaneId: null,
    dataPlaneInstance: instance,
    snapshotVersion,
  };
  const sharedTail = texts ? `,${JSON.stringify(shared).slice(1)}` : '';
  /** A leg's own fields, all of them in one order; the caller sets what its leg has, then {@link add}. */
  const own = (leg: AuditLeg, at: number, status: AuditStatus, where: { readonly serverId: string | null; readonly assignmentId: string | null }): OwnFields => ({
    id: randomUUID(),
    leg,
    occurredAt: new Date(epochOf(at)).toISOString(),
    status,
    durationMs: null,
    gatewayMs: null,
    upstreamMs: null,
    serverId: where.serverId,
    assignmentId: where.assignmentId,
    errorCode: null,
    errorMessage: null,
    policyActions: NO_ACTIONS,
    body: null,
    bodyTruncated: false,
    headers: null,
    inputTokens: null,
    outputTokens: null,
    bytesIn: null,
    bytesOut: null,
  });
  const add = (fields: OwnFields, sharedFields: SharedFields = shared, tail: string = sharedTail): void => {
    if (texts) texts.push(JSON.stringify(fields).slice(0, -1) + tail);
    if (entries) entries.push(Object.assign(fields, sharedFields) as AuditEntry);
  };
  const callWhere = { serverId, assignmentId };

  // ── The outcome: the answer, a stage refusal, cancellation, a tool error ──
  const answer = parseAnswer(call.responseBody);
  const answerError = answer?.error;
  const refusal = call.refusal;
  let stage: StageInfo | undefined;
  let refusalCode: string | undefined;
  /** Why a withheld feature was refused (`error.data.reason`: PIN_MISMATCH, FLAGGED, SERVER_HELD, NAME_COLLISION). */
  let withheldReason: string | undefined;
  if (refusal) {
    refusalCode = refusal.code;
    stage = refusal.stage !== undefined ? (STAGE_BY_CODE[refusal.code] ?? { stage: refusal.stage, status: 'blocked', alert: false }) : STAGE_BY_CODE[refusal.code];
  } else if (answerError) {
    refusalCode = typeof answerError.data?.code === 'string' ? answerError.data.code : undefined;
    stage = refusalCode === undefined ? undefined : STAGE_BY_CODE[refusalCode];
    if (refusalCode === 'WITHHELD' && typeof answerError.data?.reason === 'string') {
      withheldReason = answerError.data.reason;
      // Only a pin mismatch (a rug pull) asks for an alert per refused call; the detectors
      // that hold or flag a feature raised theirs when they did.
      stage = { ...stage!, alert: withheldReason === 'PIN_MISMATCH' };
    }
  }
  if (!stage && call.statusCode >= 400 && call.statusCode < 500) stage = INPUT_STAGE;

  let status: AuditStatus = 'ok';
  let errorCode: number | null = null;
  let errorMessage: string | null = null;
  if (answerError) {
    status = 'error';
    errorCode = int32(answerError.code);
    errorMessage = clip(answerError.message, L.errorMessage);
  } else if (refusal) {
    status = 'error';
    errorCode = refusal.rpcCode;
    errorMessage = clip(refusal.message, L.errorMessage);
  } else if (!answer && (call.aborted || call.statusCode >= 400)) {
    status = 'error';
    errorCode = call.aborted ? CANCELLED_CODE : null;
    errorMessage = call.aborted ? 'cancelled: the client cancelled the request or went away before the answer' : `HTTP ${call.statusCode}`;
  } else if (isErrorResult(answer?.result)) {
    status = 'error';
    errorMessage = clip(firstText(answer!.result), L.errorMessage);
  }
  const actions: AuditPolicyAction[] = call.actions.map((record) => sanitizeAction(record.action));
  let stageAction: AuditPolicyAction | undefined;
  if (stage) {
    status = stage.status;
    stageAction = {
      ruleId: `stage:${stage.stage}`,
      ruleName: STAGE_NAMES[stage.stage] ?? stage.stage,
      action: 'refuse',
      findings: refusalCode ? [clip(refusalCode, L.name), ...(withheldReason ? [clip(withheldReason, L.name)] : [])] : [`http_${call.statusCode}`],
      ...(errorMessage ? { detail: clip(errorMessage, L.detail) } : {}),
      alert: stage.alert,
    };
  }
  if (actions.some((action) => action.action === 'block')) status = 'blocked';

  // ── Client side: sizes, tokens, bodies ──
  const paramsText = params === undefined ? undefined : JSON.stringify(params);
  const resultText = answer ? answerPayloadText(call.responseBody!, request?.id, answer) : undefined;
  const inputTokens = tokens.estimate(paramsText);
  const outputTokens = tokens.estimate(resultText);
  const bytesIn = call.requestText === undefined ? null : Buffer.byteLength(call.requestText);
  const bytesOut = call.responseBody === undefined ? null : Buffer.byteLength(call.responseBody);
  const requestBody = full && call.requestText !== undefined ? scrubber.jsonText(call.requestText, maxBody) : undefined;
  const responseBody = full && answer ? scrubbedText(scrubber, answer, call.responseBody!, maxBody) : undefined;

  const clientRequest = own('client_request', call.startedAt, status, callWhere);
  clientRequest.headers = clientHeaders(scrubber, headers);
  clientRequest.bytesIn = bytesIn;
  clientRequest.inputTokens = inputTokens;
  setBody(clientRequest, requestBody);
  add(clientRequest);

  // ── Upstream legs ──
  for (const leg of upstreamLegs) {
    const sentText = JSON.stringify(leg.params);
    const sent = own('upstream_request', leg.sentAt, 'ok', leg);
    sent.bytesOut = Buffer.byteLength(sentText);
    // Usually the client's params with the feature name translated: no need to tokenize twice.
    sent.inputTokens = paramsText !== undefined && Math.abs(sentText.length - paramsText.length) <= SAME_TEXT_SLACK ? inputTokens : tokens.estimate(sentText);
    if (full) setBody(sent, scrubber.toJsonText({ method: leg.method, params: leg.params }, maxBody));
    add(sent);
    const tookMs = leg.endedAt !== undefined && leg.startedAt !== undefined ? leg.endedAt - leg.startedAt : null;
    const outcome = leg.outcome;
    if (!outcome) {
      const missing = own('upstream_response', call.endedAt, 'error', leg);
      missing.durationMs = missing.upstreamMs = call.endedAt - leg.sentAt;
      missing.errorMessage = 'no answer from the upstream before the call ended';
      add(missing);
    } else if ('result' in outcome) {
      // Relayed as is, the result's JSON is the slice of the answer already taken.
      const text = leg.relayedAsIs && resultText !== undefined ? resultText : (JSON.stringify(outcome.result) ?? 'null');
      const failed = isErrorResult(outcome.result);
      const received = own('upstream_response', leg.endedAt!, failed ? 'error' : 'ok', leg);
      received.durationMs = received.upstreamMs = tookMs;
      if (failed) received.errorMessage = clip(firstText(outcome.result), L.errorMessage);
      received.bytesIn = Buffer.byteLength(text);
      // A fan-out's upstream pages are not what the client was sent: their tokens would be
      // counted by nobody (reports sum the client legs), at the cost of tokenizing every list.
      received.outputTokens = fanOut ? null : text === resultText ? outputTokens : tokens.estimate(text);
      if (full) setBody(received, scrubber.jsonText(text, maxBody));
      add(received);
    } else {
      const failure = outcome.error;
      const refused = own('upstream_response', leg.endedAt!, 'error', leg);
      refused.durationMs = refused.upstreamMs = tookMs;
      refused.errorCode = failure.code;
      refused.errorMessage = clip(failure.message, L.errorMessage);
      if (full) setBody(refused, scrubber.toJsonText({ error: failure }, maxBody));
      add(refused);
    }
  }

  // ── Server-to-client requests: what the upstream asked the client, and what went back ──
  for (const relayed of call.relayed ?? []) {
    // The legs carry the relayed message's own method and id (the call's are on its other
    // legs); the correlation id ties them to the call, `featureName` to the tool that asked.
    const relayedShared: SharedFields = { ...shared, method: clip(relayed.method, L.method), jsonRpcId: relayed.relayedId === undefined ? null : clip(relayed.relayedId, L.jsonRpcId) };
    const relayedTail = texts ? `,${JSON.stringify(relayedShared).slice(1)}` : '';
    const outcome = relayed.outcome;
    const refusedHere = relayed.relayedId === undefined;
    const blocked = outcome !== undefined && 'error' in outcome && outcome.error.code === RULE_BLOCKED_CODE;
    const asked = own('relayed_request', relayed.receivedAt, refusedHere ? (blocked ? 'blocked' : 'error') : 'ok', callWhere);
    asked.bytesOut = relayed.bytesOut ?? null;
    if (refusedHere && outcome !== undefined && 'error' in outcome) {
      asked.errorCode = outcome.error.code;
      asked.errorMessage = clip(outcome.error.message, L.errorMessage);
    }
    if (full) setBody(asked, scrubber.toJsonText({ method: relayed.method, ...(relayed.params ? { params: relayed.params } : {}) }, maxBody));
    add(asked, relayedShared, relayedTail);
    const endedAt = relayed.endedAt ?? call.endedAt;
    const answered = own('relayed_response', endedAt, outcome !== undefined && 'result' in outcome ? 'ok' : blocked ? 'blocked' : 'error', callWhere);
    answered.durationMs = endedAt - relayed.receivedAt;
    if (outcome === undefined) {
      answered.errorMessage = 'no answer from the client before the call ended';
    } else if ('result' in outcome) {
      const text = JSON.stringify(outcome.result) ?? 'null';
      answered.bytesIn = Buffer.byteLength(text);
      if (full) setBody(answered, scrubber.jsonText(text, maxBody));
    } else {
      answered.errorCode = outcome.error.code;
      answered.errorMessage = clip(outcome.error.message, L.errorMessage);
      if (full) setBody(answered, scrubber.toJsonText({ error: outcome.error }, maxBody));
    }
    add(answered, relayedShared, relayedTail);
  }

  // ── Policy actions: one entry each, and all of them on the client response ──
  for (const [i, record] of call.actions.entries()) {
    const action = actions[i]!;
    const acted = own('policy_action', record.at, action.action === 'block' ? 'blocked' : 'ok', callWhere);
    acted.policyActions = [action];
    add(acted);
  }
  if (stageAction) {
    const refused = own('policy_action', call.endedAt, stage!.status, callWhere);
    refused.policyActions = [stageAction];
    add(refused);
  }

  const durationMs = call.endedAt - call.startedAt;
  const upstreamMs = upstreamSpan(upstreamLegs);
  const clientResponse = own('client_response', call.endedAt, status, callWhere);
  clientResponse.durationMs = durationMs;
  clientResponse.upstreamMs = upstreamMs;
  clientResponse.gatewayMs = Math.max(0, durationMs - (upstreamMs ?? 0));
  clientResponse.errorCode = errorCode;
  clientResponse.errorMessage = errorMessage;
  clientResponse.policyActions = stageAction ? [...actions, stageAction] : actions;
  // The request side is on client_request: sums over both client legs count each once.
  clientResponse.bytesOut = bytesOut;
  clientResponse.outputTokens = outputTokens;
  setBody(clientResponse, responseBody);
  add(clientResponse);
}

interface Answer {
  readonly result?: unknown;
  readonly error?: { readonly code?: unknown; readonly message?: unknown; readonly data?: { readonly code?: unknown; readonly reason?: unknown } };
}

function parseAnswer(text: string | undefined): Answer | undefined {
  if (text === undefined) return undefined;
  try {
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed !== 'object' || parsed === null) return undefined;
    const record = parsed as { result?: unknown; error?: unknown };
    if (record.error !== undefined) {
      const error = record.error;
      return { error: typeof error === 'object' && error !== null ? (error as NonNullable<Answer['error']>) : { message: String(error) } };
    }
    return 'result' in record ? { result: record.result } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The `result` (or `error`) of an answer as JSON text. The endpoint writes
 * `{"jsonrpc":"2.0","id":<id>,"result":…}`, so the payload is a slice of the text already
 * written; anything else is serialized again.
 */
function answerPayloadText(text: string, id: unknown, answer: Answer): string {
  if (answer.error === undefined && id !== undefined) {
    const prefix = `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":`;
    if (text.startsWith(prefix) && text.endsWith('}')) return text.slice(prefix.length, -1);
  }
  return JSON.stringify(answer.error ?? answer.result) ?? 'null';
}

/** The answer's text with secrets scrubbed, reusing the text as written when nothing was secret. */
function scrubbedText(scrubber: Scrubber, parsed: unknown, text: string, maxBytes: number): CappedText {
  const scrubbed = scrubber.value(parsed);
  return scrubber.jsonText(scrubbed === parsed ? text : JSON.stringify(scrubbed), maxBytes);
}

function setBody(fields: OwnFields, body: CappedText | undefined): void {
  if (body) {
    fields.body = body.text;
    fields.bodyTruncated = body.truncated;
  }
}

function clientHeaders(scrubber: Scrubber, headers: Record<string, string | string[] | undefined>): { [name: string]: string } {
  const scrubbed = scrubber.headers(headers);
  const out: { [name: string]: string } = {};
  let n = 0;
  for (const [name, value] of Object.entries(scrubbed)) {
    if (n++ >= L.headers) break;
    out[clip(name, L.headerName)] = clip(value, L.headerValue);
  }
  return out;
}

/** The exposed feature a call names: tool or prompt name, resource URI, completion reference. */
function featureOf(method: string | undefined, params: Record<string, unknown> | undefined): string | null {
  if (!method || !params) return null;
  let name: unknown;
  if (method === 'tools/call' || method === 'prompts/get') name = params.name;
  else if (method.startsWith('resources/')) name = params.uri;
  else if (method === 'completion/complete') {
    const ref = params.ref as { name?: unknown; uri?: unknown } | undefined;
    name = ref?.name ?? ref?.uri;
  }
  return typeof name === 'string' ? clip(name, L.featureName) : null;
}

function isErrorResult(result: unknown): boolean {
  return typeof result === 'object' && result !== null && (result as { isError?: unknown }).isError === true;
}

function firstText(result: unknown): string {
  const content = (result as { content?: unknown }).content;
  if (Array.isArray(content)) {
    for (const item of content) {
      if (typeof item === 'object' && item !== null && typeof (item as { text?: unknown }).text === 'string') return (item as { text: string }).text;
    }
  }
  return 'the tool reported an error';
}

/** A rule's action cut to the ingest limits. */
function sanitizeAction(action: AuditPolicyAction): AuditPolicyAction {
  return {
    ruleId: clip(String(action.ruleId), L.name) || 'unknown',
    ruleName: clip(String(action.ruleName), L.name * 2),
    action: clip(String(action.action), 64) || 'unknown',
    findings: (action.findings ?? []).slice(0, L.findings).map((finding) => clip(String(finding), L.name)),
    ...(action.detail === undefined ? {} : { detail: clip(String(action.detail), L.detail) }),
    alert: action.alert === true,
  };
}

function clip(value: unknown, max: number): string {
  const text = typeof value === 'string' ? value : String(value ?? '');
  return text.length <= max ? text : text.slice(0, max);
}

export function int32(value: unknown): number | null {
  return typeof value === 'number' && Number.isInteger(value) && value >= -2_147_483_648 && value <= 2_147_483_647 ? value : null;
}

/** The list fan-outs (`mcp/aggregate.ts` LISTINGS): one upstream leg pair per upstream page. */
const FAN_OUT_METHODS: ReadonlySet<string> = new Set(['tools/list', 'prompts/list', 'resources/list', 'resources/templates/list']);

/**
 * Milliseconds during which some upstream leg of the call was in flight: the legs of a
 * list fan-out overlap (their sum would exceed the call), the pages of one upstream and a
 * routed call's single leg do not. Null when no leg was answered.
 */
function upstreamSpan(legs: readonly UpstreamLegFacts[]): number | null {
  if (legs.length === 1) {
    const leg = legs[0]!;
    return leg.endedAt !== undefined && leg.startedAt !== undefined ? leg.endedAt - leg.startedAt : null;
  }
  const spans: [number, number][] = [];
  for (const leg of legs) if (leg.endedAt !== undefined && leg.startedAt !== undefined) spans.push([leg.startedAt, leg.endedAt]);
  if (spans.length === 0) return null;
  spans.sort((a, b) => a[0] - b[0]);
  let total = 0;
  let [from, to] = spans[0]!;
  for (const [start, end] of spans) {
    if (start > to) {
      total += to - from;
      from = start;
      to = end;
    } else if (end > to) {
      to = end;
    }
  }
  return total + (to - from);
}
