import { McpError, type Result } from '@modelcontextprotocol/sdk/types.js';
import type { AuditPolicyAction } from '../../schema/audit/types.js';
import type { FeatureType } from '../../schema/snapshot/index.js';
import type { CompiledAssignment, ExposedFeature } from '../snapshot/compiled-snapshot.js';
import type { DataPlaneLogger } from '../logger.js';
import type { Admission } from '../policy/admit.js';
import { resolveFeature, resolveResource, type LivePinCheck, type RoutedFeature } from '../policy/provisioning.js';
import type { StageResult } from '../policy/refusal.js';
import { UpstreamError } from '../upstream/upstream-error.js';
import type { UpstreamPool } from '../upstream/upstream-pool.js';
import type { CallRelay } from '../upstream/relay.js';
import { listAcrossGateway, pinKey } from './aggregate.js';
import type { ListPager } from './list-cursor.js';
import { JSON_RPC_ERRORS, RpcError } from './json-rpc.js';
import { LOG_LEVELS, isLogLevel, type LogLevel } from './session-log-levels.js';
import { exposeResourceLinks } from './resource-links.js';

export interface RouteContext {
  readonly admission: Admission;
  readonly pool: UpstreamPool;
  /** Per-upstream deadline of list fan-outs. */
  readonly listTimeoutMs: number;
  /** Per-upstream timeout of targeted calls. */
  readonly callTimeoutMs: number;
  readonly logger: DataPlaneLogger;
  /** Where the upstream's progress, logging and server-to-client requests for this call go. */
  readonly relay?: CallRelay;
  /** Aborts the upstream request (the client cancelled or went away). */
  readonly signal?: AbortSignal;
  /** The session's resource subscriptions on this replica (for `resources/updated`). */
  readonly subscriptions?: SubscriptionHook;
  /** Pipeline stages 6 and 9: the gateway's content rules (absent: no rules). */
  readonly rules?: RulesHook;
  /** Pipeline stage 10: records the upstream legs and policy actions of this call (absent: not audited). */
  readonly audit?: CallAuditHook;
  /** [proxy] Gateway-side pagination of merged lists (absent: one page). */
  readonly listPages?: ListPager;
  /** [proxy] Records the session's `logging/setLevel` (present for that method). */
  readonly setLogLevel?: (level: LogLevel) => Promise<void>;
}

/** The call a rule or audit record is about: the routed feature and its assignment entry. */
export interface RoutedTarget {
  readonly method: string;
  readonly exposed: ExposedFeature;
  /** The feature's upstream name (tool/prompt name or resource URI). */
  readonly upstreamName: string;
}

/**
 * Content rules on both legs. `request` returns the (possibly rewritten) params sent
 * upstream, or throws {@link RpcError} when a rule blocks; `response` returns the
 * (possibly rewritten) result, a block turning it into an error result. Both report
 * what acted through {@link CallAuditHook.policy}.
 */
export interface RulesHook {
  request(target: RoutedTarget, params: Record<string, unknown>): Promise<Record<string, unknown>>;
  response(target: RoutedTarget, result: Result): Promise<Result>;
  /**
   * A server-to-client request the upstream sent while serving the call (`relayedRequests`,
   * response leg), in the scope of the target the call was routed to: the (possibly
   * rewritten) params to relay, or {@link RpcError} when a rule blocks (the upstream gets it).
   */
  relayedRequest(method: string, params: Record<string, unknown>): Promise<Record<string, unknown>>;
  /** The client's answer to such a request (`relayedAnswers`, request leg), before it goes upstream. */
  relayedAnswer(method: string, result: Result): Promise<Result>;
  /**
   * The upstream's own JSON-RPC error in place of a result: its message and data read as
   * the result's part would be, and for `-32042` (URL elicitation required) the URL-mode
   * elicitations in `data.elicitations` read as `relayedRequests`, like the ones sent as
   * requests. The error to give the client: as it was, rewritten, or a block (-32070).
   */
  upstreamError(target: RoutedTarget, error: RpcError): Promise<RpcError>;
}

/**
 * Where one upstream request of a call went: its method and the assignment entry. A
 * routed call has one (or none, when refused before it); a list fan-out one per
 * upstream page. The object's identity pairs a request with its response.
 */
export interface UpstreamTarget {
  readonly method: string;
  readonly entry: CompiledAssignment;
}

/** What the router tells the audit stage about one call's upstream legs and policy actions. */
export interface CallAuditHook {
  upstreamRequest(target: UpstreamTarget, params: Record<string, unknown>): void;
  /** `startedAt` is the `performance.now()` taken before the upstream request. */
  upstreamResponse(target: UpstreamTarget, startedAt: number, outcome: { readonly result: Result } | { readonly error: unknown }): void;
  policy(action: AuditPolicyAction): void;
}

/** Records a session's subscriptions; `remove` says how many sessions here still watch the URI. */
export interface SubscriptionHook {
  add(exposedUri: string, upstreamKey: string, upstreamUri: string): void;
  remove(exposedUri: string): number;
}

/** Upstream failures as JSON-RPC codes, in the server range beside the policy codes. */
export const UPSTREAM_RPC_CODES = { UPSTREAM_TIMEOUT: -32061, other: -32060 } as const;

const LIST_METHODS: { readonly [method: string]: FeatureType } = {
  'tools/list': 'tools',
  'prompts/list': 'prompts',
  'resources/list': 'resources',
  'resources/templates/list': 'resourceTemplates',
};

/** MCP methods this gateway knows of but does not serve yet: told apart from typos in the message. */
const NOT_YET = new Set([
  'tasks/get',
  'tasks/list',
  'tasks/result',
  'tasks/cancel',
]);

/**
 * Answers one admitted request (anything but `initialize`, which the endpoint answers
 * because it issues the session). Throws {@link RpcError} for every refusal.
 */
export async function routeRequest(method: string, params: Record<string, unknown> | undefined, context: RouteContext): Promise<Result> {
  const { admission } = context;
  const listType = LIST_METHODS[method];
  if (listType) {
    const paging = context.listPages ? { pager: context.listPages, cursor: params?.cursor } : undefined;
    return listAcrossGateway(listType, admission.compiled, admission.gateway, context.pool, context.listTimeoutMs, context.logger, paging, context.audit);
  }
  switch (method) {
    case 'ping':
      return {};
    case 'tools/call':
      return forward(method, params, 'name', resolveFeature(admission.gateway, 'tools', requireString(params, 'name'), livePins(context, 'tools')), context);
    case 'prompts/get':
      return forward(method, params, 'name', resolveFeature(admission.gateway, 'prompts', requireString(params, 'name'), livePins(context, 'prompts')), context);
    case 'resources/read': {
      const uri = requireString(params, 'uri');
      const routed = resolveResource(admission.gateway, uri, (exposed) => livePins(context, exposed.featureType)(exposed));
      const result = await forward(method, params, 'uri', routed, context);
      return renameReadContents(result, routed.ok ? routed.value.upstreamName : uri, uri);
    }
    case 'resources/subscribe': {
      const uri = requireString(params, 'uri');
      const routed = resolveResource(admission.gateway, uri, (exposed) => livePins(context, exposed.featureType)(exposed));
      await forward(method, params, 'uri', routed, context);
      if (routed.ok) context.subscriptions?.add(uri, routed.value.exposed.entry.upstreamKey, routed.value.upstreamName);
      return {};
    }
    case 'resources/unsubscribe': {
      const uri = requireString(params, 'uri');
      const routed = resolveResource(admission.gateway, uri, (exposed) => livePins(context, exposed.featureType)(exposed));
      // The upstream session is shared: it stays subscribed while another session here watches the URI.
      if ((context.subscriptions?.remove(uri) ?? 0) > 0) return {};
      await forward(method, params, 'uri', routed, context);
      return {};
    }
    case 'completion/complete':
      return complete(params, context);
    case 'logging/setLevel': {
      // Upstream sessions are shared, so one client's level is not forwarded to them: the
      // gateway drops relayed log messages below it for this session (`session-log-levels.ts`).
      const level = requireString(params, 'level');
      if (!isLogLevel(level)) throw new RpcError(JSON_RPC_ERRORS.INVALID_PARAMS, `params.level must be one of ${LOG_LEVELS.join(', ')}; got "${level}"`);
      await context.setLogLevel?.(level);
      return {};
    }
    default:
      if (NOT_YET.has(method)) throw new RpcError(JSON_RPC_ERRORS.METHOD_NOT_FOUND, `method "${method}" is not supported by this gateway yet`);
      throw new RpcError(JSON_RPC_ERRORS.METHOD_NOT_FOUND, `method "${method}" does not exist`);
  }
}

function livePins(context: RouteContext, featureType: FeatureType): LivePinCheck {
  return (exposed) =>
    exposed.feature.pinnedHash !== undefined &&
    (context.pool.peek(exposed.entry.upstreamKey)?.livePinMismatches.has(pinKey(featureType, exposed.feature.upstreamName)) ?? false);
}

async function forward(
  method: string,
  params: Record<string, unknown> | undefined,
  nameKey: string,
  routed: StageResult<RoutedFeature>,
  context: RouteContext,
): Promise<Result> {
  if (!routed.ok) throw new RpcError(routed.rpcCode, routed.message, { code: routed.code, ...routed.detail });
  const { exposed, upstreamName } = routed.value;
  const result = await exchange({ method, exposed, upstreamName }, { ...params, [nameKey]: upstreamName }, context);
  // [proxy] Links to the upstream's resources, renamed to the URIs clients read them by.
  return exposeResourceLinks(method, result, exposed.entry, context.admission.gateway);
}

/**
 * Stages 6 to 9 of a routed call: request-leg rules, the upstream request (its legs
 * recorded for audit), response-leg rules.
 */
async function exchange(target: RoutedTarget, params: Record<string, unknown>, context: RouteContext): Promise<Result> {
  const connection = context.pool.get(target.exposed.entry, context.admission.compiled.secretKeys);
  const upstreamParams = context.rules ? await context.rules.request(target, params) : params; // stage 6
  const leg: UpstreamTarget | undefined = context.audit ? { method: target.method, entry: target.exposed.entry } : undefined;
  if (leg) context.audit!.upstreamRequest(leg, upstreamParams);
  const startedAt = performance.now();
  let result: Result;
  try {
    result = await connection.request(target.method, upstreamParams, {
      timeoutMs: context.callTimeoutMs,
      ...(context.signal ? { signal: context.signal } : {}),
      ...(context.relay ? { relay: context.relay } : {}),
    });
  } catch (error) {
    if (leg) context.audit!.upstreamResponse(leg, startedAt, { error });
    const failure = toRpcError(error);
    // [rules] The upstream's own error reaches the client (and its model) like a result: read it as one.
    if (error instanceof McpError && context.rules) throw await context.rules.upstreamError(target, failure);
    throw failure;
  }
  if (leg) context.audit!.upstreamResponse(leg, startedAt, { result });
  return context.rules ? context.rules.response(target, result) : result; // stage 9
}

/** `completion/complete` for a prompt argument or a resource template, routed by the reference. */
async function complete(params: Record<string, unknown> | undefined, context: RouteContext): Promise<Result> {
  const ref = params?.ref;
  if (typeof ref !== 'object' || ref === null) throw new RpcError(JSON_RPC_ERRORS.INVALID_PARAMS, 'params.ref must be an object');
  const reference = ref as Record<string, unknown>;
  const gateway = context.admission.gateway;
  if (reference.type === 'ref/prompt') {
    const name = requireString(reference, 'name');
    const routed = resolveFeature(gateway, 'prompts', name, livePins(context, 'prompts'));
    return forwardWithRef(params!, reference, 'name', routed, context);
  }
  if (reference.type === 'ref/resource') {
    const uri = requireString(reference, 'uri');
    const template = gateway.features.resourceTemplates.get(uri);
    const routed = template
      ? resolveFeature(gateway, 'resourceTemplates', uri, livePins(context, 'resourceTemplates'))
      : resolveResource(gateway, uri, (exposed) => livePins(context, exposed.featureType)(exposed));
    return forwardWithRef(params!, reference, 'uri', routed, context);
  }
  throw new RpcError(JSON_RPC_ERRORS.INVALID_PARAMS, 'params.ref.type must be "ref/prompt" or "ref/resource"');
}

/**
 * Forwards a completion with the reference renamed to the upstream's name, through the
 * same stages as `forward`: request-leg rules (the value being completed is user content),
 * the upstream legs in audit, response-leg rules (the suggested values). The target is the
 * referenced prompt or resource, so rules scoped to that feature apply. A completion result
 * has no error form, so a response-leg block is a JSON-RPC error, as for `prompts/get`.
 */
async function forwardWithRef(
  params: Record<string, unknown>,
  reference: Record<string, unknown>,
  key: string,
  routed: StageResult<RoutedFeature>,
  context: RouteContext,
): Promise<Result> {
  if (!routed.ok) throw new RpcError(routed.rpcCode, routed.message, { code: routed.code, ...routed.detail });
  const { exposed, upstreamName } = routed.value;
  return exchange({ method: 'completion/complete', exposed, upstreamName }, { ...params, ref: { ...reference, [key]: upstreamName } }, context);
}

/** An upstream failure as the JSON-RPC error the client gets. */
export function toRpcError(error: unknown): RpcError {
  if (error instanceof RpcError) return error;
  if (error instanceof UpstreamError) {
    const code = error.code === 'UPSTREAM_TIMEOUT' ? UPSTREAM_RPC_CODES.UPSTREAM_TIMEOUT : UPSTREAM_RPC_CODES.other;
    return new RpcError(code, error.message, { code: error.code, server: error.serverName, ...error.detail });
  }
  if (error instanceof McpError) {
    // The upstream's own error, relayed with its code. The SDK prefixes "MCP error <code>: ".
    return new RpcError(error.code, error.message.replace(/^MCP error -?\d+: /, ''), error.data);
  }
  throw error;
}

function requireString(params: Record<string, unknown> | undefined, key: string): string {
  const value = params?.[key];
  if (typeof value !== 'string' || value === '') {
    throw new RpcError(JSON_RPC_ERRORS.INVALID_PARAMS, `params.${key} must be a non-empty string`);
  }
  return value;
}

/** `resources/read` contents carry the upstream URI; the client asked for the namespaced one. */
function renameReadContents(result: Result, upstreamUri: string, exposedUri: string): Result {
  const contents = (result as { contents?: unknown }).contents;
  if (!Array.isArray(contents) || upstreamUri === exposedUri) return result;
  return {
    ...result,
    contents: contents.map((content: unknown) =>
      typeof content === 'object' && content !== null && (content as { uri?: unknown }).uri === upstreamUri ? { ...content, uri: exposedUri } : content,
    ),
  };
}
