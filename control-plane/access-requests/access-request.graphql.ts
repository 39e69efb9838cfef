import { resolveOffsetConnection } from '@pothos/plugin-relay';
import { builder } from '../graphql/builder.js';
import { COMMON_ERRORS } from '../graphql/error-types.js';
import { decodeIdOf, encodeGlobalId } from '../graphql/global-id.js';
import { GatewayRef, TeamRef, UserRef } from '../graphql/refs.js';
import type { GatewayAccessRequestRow } from './access-request.table.js';

const AccessRequestStateEnum = builder.enumType('GatewayAccessRequestState', {
  values: {
    PENDING: { value: 'pending', description: 'Waiting for an admin.' },
    APPROVED: { value: 'approved', description: 'The user was added to `team`, which has the gateway.' },
    DENIED: { value: 'denied', description: 'Refused; `decisionNote` may say why.' },
  } as const,
});

export const GatewayAccessRequestRef = builder.objectRef<GatewayAccessRequestRow>('GatewayAccessRequest');

export const GatewayAccessRequest = builder.node(GatewayAccessRequestRef, {
  description: 'A user’s request to use a gateway, and its decision. Readable with people.view or gateways.manage_access.',
  id: { resolve: (r) => r.id },
  loadMany: async (ids, ctx) => {
    const rows = await ctx.services.accessRequests.byIds(ctx.viewer, ids);
    return ids.map((id) => rows.find((r) => r.id === id) ?? null);
  },
  fields: (t) => ({
    state: t.field({ type: AccessRequestStateEnum, resolve: (r) => r.state }),
    reason: t.exposeString('reason'),
    userId: t.id({ resolve: (r) => encodeGlobalId('User', r.user_id) }),
    user: t.field({ type: UserRef, nullable: true, description: 'Needs people.view.', resolve: (r, _a, ctx) => ctx.loaders.user.load(r.user_id) }),
    gatewayId: t.id({ resolve: (r) => encodeGlobalId('Gateway', r.gateway_id) }),
    gateway: t.field({ type: GatewayRef, nullable: true, description: 'Needs gateways.view.', resolve: (r, _a, ctx) => ctx.loaders.gateway.load(r.gateway_id) }),
    teamId: t.id({ nullable: true, description: 'The team the user was added to, once approved.', resolve: (r) => (r.team_id ? encodeGlobalId('Team', r.team_id) : null) }),
    team: t.field({ type: TeamRef, nullable: true, resolve: (r, _a, ctx) => (r.team_id ? ctx.loaders.team.load(r.team_id) : null) }),
    requestedBy: t.exposeString('requested_by', { description: 'The actor that filed the request (`api_key:<id>`).' }),
    decidedBy: t.exposeString('decided_by', { nullable: true }),
    decidedAt: t.field({ type: 'DateTime', nullable: true, resolve: (r) => r.decided_at }),
    decisionNote: t.exposeString('decision_note', { nullable: true }),
    createdAt: t.field({ type: 'DateTime', resolve: (r) => r.created_at }),
    updatedAt: t.field({ type: 'DateTime', resolve: (r) => r.updated_at }),
  }),
});

const AccessRequestFilter = builder.inputType('GatewayAccessRequestFilter', {
  fields: (t) => ({
    state: t.field({ type: AccessRequestStateEnum }),
    userId: t.id(),
    gatewayId: t.id(),
  }),
});

const RequestGatewayAccessInput = builder.inputType('RequestGatewayAccessInput', {
  fields: (t) => ({
    gatewayId: t.id({ required: true }),
    userId: t.id({ required: true, description: 'The user asking. The caller files the request on their behalf (needs people.view).' }),
    reason: t.string({ description: 'Why they need it; shown to admins. At most 1000 characters.' }),
  }),
});

builder.queryFields((t) => ({
  gatewayAccessRequests: t.connection({
    type: GatewayAccessRequest,
    description: 'Gateway access requests, newest first. Needs people.view or gateways.manage_access.',
    args: { filter: t.arg({ type: AccessRequestFilter }) },
    resolve: (_r, args, ctx) => {
      const f = args.filter ?? {};
      const filter = {
        state: f.state ?? null,
        userId: f.userId ? decodeIdOf('User', String(f.userId), 'filter.userId') : null,
        gatewayId: f.gatewayId ? decodeIdOf('Gateway', String(f.gatewayId), 'filter.gatewayId') : null,
      };
      return resolveOffsetConnection({ args }, (page) => ctx.services.accessRequests.list(ctx.viewer, filter, page));
    },
  }),
  gatewayAccessRequest: t.field({
    type: GatewayAccessRequest,
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_r, { id }, ctx) => ctx.services.accessRequests.get(ctx.viewer, decodeIdOf('GatewayAccessRequest', String(id), 'id')),
  }),
}));

builder.objectFields(UserRef, (t) => ({
  gatewayAccessRequests: t.connection({
    type: GatewayAccessRequest,
    description: 'The user’s gateway access requests and their decisions, newest first.',
    args: { state: t.arg({ type: AccessRequestStateEnum }) },
    resolve: (u, args, ctx) =>
      resolveOffsetConnection({ args }, (page) => ctx.services.accessRequests.list(ctx.viewer, { userId: u.id, state: args.state ?? null }, page)),
  }),
}));

const requestMutation = () => ({ types: [...COMMON_ERRORS], dataField: { name: 'request' as const } });

builder.mutationFields((t) => ({
  requestGatewayAccess: t.field({
    type: GatewayAccessRequest,
    description: 'Files a request for a user to use a gateway and alerts the admins (GATEWAY_ACCESS_REQUEST). A duplicate pending request is a ConflictError.',
    errors: requestMutation(),
    args: { input: t.arg({ type: RequestGatewayAccessInput, required: true }) },
    resolve: (_r, { input }, ctx) =>
      ctx.services.accessRequests.request(ctx.viewer, {
        gatewayId: decodeIdOf('Gateway', String(input.gatewayId), 'input.gatewayId'),
        userId: decodeIdOf('User', String(input.userId), 'input.userId'),
        ...(input.reason != null && { reason: input.reason }),
      }),
  }),
  approveGatewayAccessRequest: t.field({
    type: GatewayAccessRequest,
    description: 'Approves a pending request by adding the user to a team the gateway is provisioned to (a ValidationError on `teamId` otherwise).',
    errors: requestMutation(),
    args: { id: t.arg.id({ required: true }), teamId: t.arg.id({ required: true }), note: t.arg.string() },
    resolve: (_r, { id, teamId, note }, ctx) =>
      ctx.services.accessRequests.approve(
        ctx.viewer,
        decodeIdOf('GatewayAccessRequest', String(id), 'id'),
        decodeIdOf('Team', String(teamId), 'teamId'),
        note,
      ),
  }),
  denyGatewayAccessRequest: t.field({
    type: GatewayAccessRequest,
    description: 'Denies a pending request; the note is readable by whoever reads the request.',
    errors: requestMutation(),
    args: { id: t.arg.id({ required: true }), note: t.arg.string() },
    resolve: (_r, { id, note }, ctx) => ctx.services.accessRequests.deny(ctx.viewer, decodeIdOf('GatewayAccessRequest', String(id), 'id'), note),
  }),
}));
