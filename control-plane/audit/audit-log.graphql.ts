import type { AuditLeg, AuditPolicyAction } from '../../schema/audit/types.js';
import { builder } from '../graphql/builder.js';
import type { Context } from '../graphql/context.js';
import { COMMON_ERRORS } from '../graphql/error-types.js';
import { encodeGlobalId } from '../graphql/global-id.js';
import {
  AccessTokenRef,
  AssignmentRef,
  ConnectionRef,
  GatewayRef,
  HostRef,
  ServerRef,
  UserRef,
  WorkspaceRef,
} from '../graphql/refs.js';
import { parseAuditLogFilter, type AuditLogFilter, type RawAuditLogFilter } from './audit-log.filter.js';
import type { AuditCallView, AuditEntryView, AuditPageArgs } from './audit-log.service.js';

export const AuditLegEnum = builder.enumType('AuditLeg', {
  description: 'Which leg of a call an audit entry records.',
  values: {
    CLIENT_REQUEST: { value: 'client_request', description: 'What the client sent to the gateway.' },
    UPSTREAM_REQUEST: { value: 'upstream_request', description: 'What the gateway sent to an upstream server.' },
    UPSTREAM_RESPONSE: { value: 'upstream_response', description: 'What the upstream answered.' },
    CLIENT_RESPONSE: { value: 'client_response', description: 'What the gateway answered the client; one per call.' },
    POLICY_ACTION: { value: 'policy_action', description: 'A rule or pipeline stage acted on the call.' },
    RELAYED_REQUEST: {
      value: 'relayed_request',
      description: 'A request the upstream sent the client while serving the call (sampling, elicitation, roots); method and jsonRpcId are its own.',
    },
    RELAYED_RESPONSE: { value: 'relayed_response', description: 'What went back to the upstream for a RELAYED_REQUEST: the client’s answer, or the gateway’s error.' },
  } as const,
});

export const AuditStatusEnum = builder.enumType('AuditStatus', {
  values: {
    OK: { value: 'ok' },
    ERROR: { value: 'error', description: 'The upstream or the gateway failed the call.' },
    BLOCKED: { value: 'blocked', description: 'A policy stage or rule refused the call.' },
  } as const,
});

const AuditPolicyActionType = builder.objectRef<AuditPolicyAction>('AuditPolicyAction').implement({
  description: 'One rule or pipeline stage that acted on a leg.',
  fields: (t) => ({
    ruleId: t.exposeString('ruleId', { description: 'A rule id, or `detector:<name>` / `stage:<name>` for built-in stages.' }),
    ruleName: t.exposeString('ruleName'),
    action: t.exposeString('action', { description: 'block, redact, replace, mask, hash, alert_only or refuse.' }),
    findings: t.stringList({ description: 'Entity types or detector names that matched, never the matched text.', resolve: (a) => [...(a.findings ?? [])] }),
    detail: t.string({ nullable: true, resolve: (a) => a.detail ?? null }),
    alert: t.boolean({ resolve: (a) => a.alert === true }),
  }),
});

const gid = (typename: string, id: string | null) => (id ? encodeGlobalId(typename, id) : null);
const num = (v: number | string | null) => (v === null ? null : Number(v));

export const AuditLogEntry = builder.objectRef<AuditEntryView>('AuditLogEntry').implement({
  description:
    'One leg of one call through a gateway. Needs logging.view; `body` and `headers` need logging.view_bodies as well (without it they resolve to null with a FORBIDDEN error naming that capability).',
  fields: (t) => ({
    id: t.id({ description: 'The entry id the data plane assigned (a UUID; the idempotency key of ingest).', resolve: (e) => e.id }),
    correlationId: t.string({ description: 'Shared by every leg of one call; see `auditCall`.', resolve: (e) => e.correlation_id }),
    leg: t.field({ type: AuditLegEnum, resolve: (e) => e.leg }),
    status: t.field({ type: AuditStatusEnum, resolve: (e) => e.status }),
    occurredAt: t.field({ type: 'DateTime', resolve: (e) => e.occurred_at }),
    ingestedAt: t.field({ type: 'DateTime', description: 'When the control plane stored it.', resolve: (e) => e.ingested_at }),
    durationMs: t.float({ nullable: true, description: 'Leg duration; for CLIENT_RESPONSE the whole call.', resolve: (e) => e.duration_ms }),
    gatewayMs: t.float({ nullable: true, description: 'Time spent in the gateway itself (CLIENT_RESPONSE).', resolve: (e) => e.gateway_ms }),
    upstreamMs: t.float({ nullable: true, description: 'Time spent waiting on upstreams.', resolve: (e) => e.upstream_ms }),
    gatewayId: t.id({ nullable: true, resolve: (e) => gid('Gateway', e.gateway_id) }),
    gateway: t.field({ type: GatewayRef, nullable: true, description: 'Null when deleted. Needs gateways.view.', resolve: (e, _a, ctx) => (e.gateway_id ? ctx.loaders.gateway.load(e.gateway_id) : null) }),
    serverId: t.id({ nullable: true, resolve: (e) => gid('Server', e.server_id) }),
    server: t.field({ type: ServerRef, nullable: true, description: 'Null when deleted. Needs servers.view.', resolve: (e, _a, ctx) => (e.server_id ? ctx.loaders.server.load(e.server_id) : null) }),
    assignmentId: t.id({ nullable: true, resolve: (e) => gid('Assignment', e.assignment_id) }),
    assignment: t.field({ type: AssignmentRef, nullable: true, resolve: (e, _a, ctx) => (e.assignment_id ? ctx.loaders.assignment.load(e.assignment_id) : null) }),
    hostId: t.id({ nullable: true, resolve: (e) => gid('Host', e.host_id) }),
    host: t.field({ type: HostRef, nullable: true, description: 'Needs hosts.view.', resolve: (e, _a, ctx) => (e.host_id ? ctx.loaders.host.load(e.host_id) : null) }),
    connectionId: t.id({ nullable: true, resolve: (e) => gid('Connection', e.connection_id) }),
    connection: t.field({ type: ConnectionRef, nullable: true, description: 'Needs hosts.view.', resolve: (e, _a, ctx) => (e.connection_id ? ctx.loaders.connection.load(e.connection_id) : null) }),
    accessTokenId: t.id({ nullable: true, resolve: (e) => gid('AccessToken', e.token_id) }),
    accessToken: t.field({ type: AccessTokenRef, nullable: true, resolve: (e, _a, ctx) => (e.token_id ? ctx.loaders.accessToken.load(e.token_id) : null) }),
    userId: t.id({ nullable: true, resolve: (e) => gid('User', e.user_id) }),
    user: t.field({ type: UserRef, nullable: true, description: 'Needs people.view.', resolve: (e, _a, ctx) => (e.user_id ? ctx.loaders.user.load(e.user_id) : null) }),
    clientName: t.string({ nullable: true, resolve: (e) => e.client_name }),
    clientVersion: t.string({ nullable: true, resolve: (e) => e.client_version }),
    sessionRef: t.string({ nullable: true, description: 'A SHA-256 prefix of the MCP session id, never the id itself.', resolve: (e) => e.session_ref }),
    method: t.string({ nullable: true, description: 'The MCP method (`tools/call`).', resolve: (e) => e.method }),
    featureName: t.string({ nullable: true, description: 'The exposed tool or prompt name, or resource URI.', resolve: (e) => e.feature_name }),
    jsonRpcId: t.string({ nullable: true, resolve: (e) => e.json_rpc_id }),
    errorCode: t.int({ nullable: true, resolve: (e) => e.error_code }),
    errorMessage: t.string({ nullable: true, resolve: (e) => e.error_message }),
    policyActions: t.field({ type: [AuditPolicyActionType], resolve: (e) => e.policy_actions ?? [] }),
    body: t.string({
      nullable: true,
      authScopes: { capability: 'logging.view_bodies' },
      description: 'JSON text, secret-scrubbed and cut at the gateway’s limit; null when the gateway records metadata only. Needs logging.view_bodies.',
      resolve: (e) => e.body ?? null,
    }),
    bodyTruncated: t.boolean({ resolve: (e) => e.body_truncated }),
    headers: t.field({
      type: 'JSONObject',
      nullable: true,
      authScopes: { capability: 'logging.view_bodies' },
      description: 'Scrubbed request headers (lowercase names). Needs logging.view_bodies.',
      resolve: (e) => e.headers ?? null,
    }),
    inputTokens: t.int({ nullable: true, description: 'Estimated tokens of the request params.', resolve: (e) => e.input_tokens }),
    outputTokens: t.int({ nullable: true, description: 'Estimated tokens of the result.', resolve: (e) => e.output_tokens }),
    bytesIn: t.int({ nullable: true, resolve: (e) => e.bytes_in }),
    bytesOut: t.int({ nullable: true, resolve: (e) => e.bytes_out }),
    originIp: t.string({ nullable: true, resolve: (e) => e.origin_ip }),
    userAgent: t.string({ nullable: true, resolve: (e) => e.user_agent }),
    dataPlaneId: t.id({ nullable: true, resolve: (e) => gid('DataPlane', e.data_plane_id) }),
    dataPlaneInstance: t.string({ resolve: (e) => e.data_plane_instance }),
    snapshotVersion: t.int({ nullable: true, resolve: (e) => num(e.snapshot_version) }),
  }),
});

export const AuditLogConnection = builder.connectionObject({ type: AuditLogEntry, name: 'AuditLogConnection' }, { name: 'AuditLogEdge' });

export const AuditLogFilterInput = builder.inputType('AuditLogFilter', {
  description: 'Every field narrows the list; omitted fields do not. Times are half-open: from ≤ occurredAt < to.',
  fields: (t) => ({
    from: t.field({ type: 'DateTime' }),
    to: t.field({ type: 'DateTime', description: 'Must be after `from`.' }),
    gatewayId: t.id(),
    serverId: t.id(),
    connectionId: t.id(),
    hostId: t.id(),
    userId: t.id(),
    teamId: t.id({ description: 'Entries of the users who are members of this team now.' }),
    feature: t.string({ description: 'Exact exposed feature name (tool, prompt, resource URI).' }),
    method: t.string({ description: 'Exact MCP method, e.g. `tools/call`.' }),
    status: t.field({ type: [AuditStatusEnum] }),
    leg: t.field({ type: [AuditLegEnum] }),
    correlationId: t.string({ description: 'A call’s correlation id (UUID).' }),
    search: t.string({
      description:
        'Case-insensitive text in the method, feature name and error message, and in bodies for viewers with logging.view_bodies. At most 200 characters; searches at most 31 days (by default the 31 days before `to`).',
    }),
  }),
});

/** GraphQL input (enum values already mapped, IDs still global) to the shared raw filter. */
export function rawFilter(input: Record<string, unknown> | null | undefined): RawAuditLogFilter {
  return (input ?? {}) as RawAuditLogFilter;
}

export function parseGraphQLFilter(input: Record<string, unknown> | null | undefined, scope: Partial<AuditLogFilter> = {}): AuditLogFilter {
  return { ...parseAuditLogFilter(rawFilter(input), 'filter'), ...scope };
}

const pageArgs = (args: AuditPageArgs): AuditPageArgs => ({ first: args.first, after: args.after, last: args.last, before: args.before });

const scopedLogs = (ctx: Context, args: AuditPageArgs & { filter?: Record<string, unknown> | null }, scope: Partial<AuditLogFilter>) =>
  ctx.services.auditLogs.list(ctx.viewer, parseGraphQLFilter(args.filter, scope), pageArgs(args));

const byLeg = (call: AuditCallView, leg: AuditLeg) => call.entries.filter((e) => e.leg === leg);

const AuditCall = builder.objectRef<AuditCallView>('AuditCall').implement({
  description: 'The legs of one call side by side.',
  fields: (t) => ({
    correlationId: t.exposeString('correlationId'),
    entries: t.field({ type: [AuditLogEntry], description: 'Every leg, in the order they happened.', resolve: (c) => [...c.entries] }),
    clientRequest: t.field({ type: AuditLogEntry, nullable: true, resolve: (c) => byLeg(c, 'client_request')[0] ?? null }),
    upstreamRequests: t.field({ type: [AuditLogEntry], description: 'One per upstream (several for a list fan-out).', resolve: (c) => byLeg(c, 'upstream_request') }),
    upstreamResponses: t.field({ type: [AuditLogEntry], resolve: (c) => byLeg(c, 'upstream_response') }),
    clientResponse: t.field({ type: AuditLogEntry, nullable: true, resolve: (c) => byLeg(c, 'client_response')[0] ?? null }),
    policyActions: t.field({ type: [AuditLogEntry], description: 'The POLICY_ACTION legs.', resolve: (c) => byLeg(c, 'policy_action') }),
    relayedRequests: t.field({
      type: [AuditLogEntry],
      description: 'Requests the upstream sent the client during the call (sampling, elicitation, roots), in order.',
      resolve: (c) => byLeg(c, 'relayed_request'),
    }),
    relayedResponses: t.field({ type: [AuditLogEntry], description: 'What went back upstream for each relayed request, in order.', resolve: (c) => byLeg(c, 'relayed_response') }),
    status: t.field({
      type: AuditStatusEnum,
      description: 'The client response’s status, or the worst status of any leg when it is missing.',
      resolve: (c) =>
        byLeg(c, 'client_response')[0]?.status ??
        (c.entries.some((e) => e.status === 'blocked') ? 'blocked' : c.entries.some((e) => e.status === 'error') ? 'error' : 'ok'),
    }),
    startedAt: t.field({ type: 'DateTime', resolve: (c) => c.entries[0]!.occurred_at }),
    durationMs: t.float({ nullable: true, description: 'The client response’s duration (the whole call).', resolve: (c) => byLeg(c, 'client_response')[0]?.duration_ms ?? null }),
  }),
});

builder.queryFields((t) => ({
  auditLogs: t.connection(
    {
      type: AuditLogEntry,
      description: 'The audit trail, newest first (keyset pagination on occurredAt and id; at most 100 per page).',
      authScopes: { capability: 'logging.view' },
      args: { filter: t.arg({ type: AuditLogFilterInput }) },
      resolve: (_r, args, ctx) => scopedLogs(ctx, args, {}),
    },
    AuditLogConnection,
  ),
  auditCall: t.field({
    type: AuditCall,
    nullable: true,
    description: 'Every leg of one call by its correlation id; null when this workspace has no such call.',
    authScopes: { capability: 'logging.view' },
    args: { correlationId: t.arg.string({ required: true }) },
    resolve: (_r, { correlationId }, ctx) => ctx.services.auditLogs.call(ctx.viewer, correlationId),
  }),
}));

const scopedField = (column: 'serverId' | 'gatewayId' | 'connectionId' | 'hostId', what: string) =>
  ({
    description: `This ${what}’s audit trail, newest first. The filter’s ${column} is replaced by this ${what}. Needs logging.view.`,
    authScopes: { capability: 'logging.view' },
  }) as const;

builder.objectField(ServerRef, 'auditLogs', (t) =>
  t.connection(
    { type: AuditLogEntry, ...scopedField('serverId', 'server'), args: { filter: t.arg({ type: AuditLogFilterInput }) }, resolve: (s, args, ctx) => scopedLogs(ctx, args, { serverId: s.id }) },
    AuditLogConnection,
  ),
);
builder.objectField(GatewayRef, 'auditLogs', (t) =>
  t.connection(
    { type: AuditLogEntry, ...scopedField('gatewayId', 'gateway'), args: { filter: t.arg({ type: AuditLogFilterInput }) }, resolve: (g, args, ctx) => scopedLogs(ctx, args, { gatewayId: g.id }) },
    AuditLogConnection,
  ),
);
builder.objectField(ConnectionRef, 'auditLogs', (t) =>
  t.connection(
    {
      type: AuditLogEntry,
      ...scopedField('connectionId', 'connection'),
      args: { filter: t.arg({ type: AuditLogFilterInput }) },
      resolve: (c, args, ctx) => scopedLogs(ctx, args, { connectionId: c.id }),
    },
    AuditLogConnection,
  ),
);
builder.objectField(HostRef, 'auditLogs', (t) =>
  t.connection(
    { type: AuditLogEntry, ...scopedField('hostId', 'host'), args: { filter: t.arg({ type: AuditLogFilterInput }) }, resolve: (h, args, ctx) => scopedLogs(ctx, args, { hostId: h.id }) },
    AuditLogConnection,
  ),
);

builder.objectField(WorkspaceRef, 'auditRetentionDays', (t) =>
  t.int({
    description: 'Days of audit entries the workspace keeps; older days are dropped.',
    resolve: (w, _a, ctx) => {
      const stored = (w as { audit_retention_days?: number }).audit_retention_days;
      return stored ?? ctx.services.auditLogs.retentionDays(w.id);
    },
  }),
);

const AuditSettings = builder.objectRef<{ retentionDays: number }>('AuditSettings').implement({
  fields: (t) => ({ retentionDays: t.exposeInt('retentionDays') }),
});

const UpdateAuditSettingsInput = builder.inputType('UpdateAuditSettingsInput', {
  fields: (t) => ({ retentionDays: t.int({ required: true, description: 'Days to keep audit entries, 1–3650.' }) }),
});

builder.mutationFields((t) => ({
  updateAuditSettings: t.field({
    type: AuditSettings,
    description: 'Sets the audit retention of the workspace. Needs workspace.manage_settings.',
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'settings' } },
    args: { input: t.arg({ type: UpdateAuditSettingsInput, required: true }) },
    resolve: (_r, { input }, ctx) => ctx.services.auditLogs.updateSettings(ctx.viewer, input),
  }),
}));
