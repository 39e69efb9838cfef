import { resolveArrayConnection, resolveOffsetConnection } from '@pothos/plugin-relay';
import { NotFoundError } from '../errors.js';
import { builder } from '../graphql/builder.js';
import { COMMON_ERRORS } from '../graphql/error-types.js';
import { decodeIdOf, encodeGlobalId, stripNulls } from '../graphql/global-id.js';
import { AccessTokenRef, ConnectionRef, GatewayRef, HostRef, UserRef } from '../graphql/refs.js';
import type { CreatedAccessToken } from './host.service.js';

const HostKind = builder.enumType('HostKind', {
  values: {
    AGENT: { value: 'agent', description: 'A headless agent that presents API access tokens.' },
    APP: { value: 'app', description: 'An app that signs users in (OAuth; a later release).' },
  } as const,
});

export const Host = builder.node(HostRef, {
  description: 'An app or agent that connects to gateways.',
  authScopes: { capability: 'hosts.view' },
  id: { resolve: (h) => h.id },
  loadMany: (ids, ctx) => ids.map((id) => ctx.loaders.host.load(id)),
  fields: (t) => ({
    name: t.exposeString('name'),
    kind: t.field({ type: HostKind, resolve: (h) => h.kind }),
    description: t.exposeString('description'),
    disabled: t.exposeBoolean('disabled', { description: 'Kill switch: every connection of a disabled host refuses every call.' }),
    connections: t.connection({
      type: ConnectionRef,
      resolve: async (h, args, ctx) => resolveArrayConnection({ args }, await ctx.loaders.hostConnections.load(h.id)),
    }),
    createdAt: t.field({ type: 'DateTime', resolve: (h) => h.created_at }),
    updatedAt: t.field({ type: 'DateTime', resolve: (h) => h.updated_at }),
  }),
});

export const Connection = builder.node(ConnectionRef, {
  description: 'A host’s link to one gateway, optionally acting for one user. Access tokens belong to a connection.',
  authScopes: { capability: 'hosts.view' },
  id: { resolve: (c) => c.id },
  loadMany: (ids, ctx) => ids.map((id) => ctx.loaders.connection.load(id)),
  fields: (t) => ({
    name: t.exposeString('name'),
    host: t.field({
      type: Host,
      resolve: async (c, _a, ctx) => (await ctx.loaders.host.load(c.host_id)) ?? Promise.reject(new NotFoundError('Host', c.host_id)),
    }),
    gatewayId: t.id({ description: 'Global ID of the gateway this connection reaches.', resolve: (c) => encodeGlobalId('Gateway', c.gateway_id) }),
    gateway: t.field({
      type: GatewayRef,
      description: 'The gateway this connection reaches (needs gateways.view).',
      resolve: async (c, _a, ctx) => (await ctx.loaders.gateway.load(c.gateway_id)) ?? Promise.reject(new NotFoundError('Gateway', c.gateway_id)),
    }),
    user: t.field({
      type: UserRef,
      nullable: true,
      description: 'The user the agent acts for; calls are attributed to them. Null for a machine identity.',
      resolve: (c, _a, ctx) => (c.user_id ? ctx.loaders.user.load(c.user_id) : null),
    }),
    disabled: t.exposeBoolean('disabled', { description: 'Kill switch: a disabled connection’s tokens are refused everywhere.' }),
    tokens: t.connection({
      type: AccessTokenRef,
      args: { includeRevoked: t.arg.boolean({ defaultValue: false }) },
      resolve: async (c, args, ctx) => {
        const tokens = await ctx.loaders.connectionAccessTokens.load(c.id);
        return resolveArrayConnection({ args }, args.includeRevoked ? tokens : tokens.filter((k) => k.revoked_at === null));
      },
    }),
    createdAt: t.field({ type: 'DateTime', resolve: (c) => c.created_at }),
    updatedAt: t.field({ type: 'DateTime', resolve: (c) => c.updated_at }),
  }),
});

export const AccessToken = builder.node(AccessTokenRef, {
  description: 'An API access token a headless agent presents on one connection. Only its prefix is ever shown again.',
  authScopes: { capability: 'hosts.view' },
  id: { resolve: (k) => k.id },
  loadMany: (ids, ctx) => ids.map((id) => ctx.loaders.accessToken.load(id)),
  fields: (t) => ({
    name: t.exposeString('name'),
    prefix: t.exposeString('token_prefix', { description: 'The first characters of the token, to recognise it.' }),
    connection: t.field({
      type: Connection,
      resolve: async (k, _a, ctx) =>
        (await ctx.loaders.connection.load(k.connection_id)) ?? Promise.reject(new NotFoundError('Connection', k.connection_id)),
    }),
    createdBy: t.exposeString('created_by'),
    createdAt: t.field({ type: 'DateTime', resolve: (k) => k.created_at }),
    expiresAt: t.field({ type: 'DateTime', nullable: true, description: 'Null for a token that does not expire.', resolve: (k) => k.expires_at }),
    lastUsedAt: t.field({ type: 'DateTime', nullable: true, resolve: (k) => k.last_used_at }),
    revokedAt: t.field({ type: 'DateTime', nullable: true, resolve: (k) => k.revoked_at }),
  }),
});

const CreatedAccessTokenType = builder.objectRef<CreatedAccessToken>('CreatedAccessToken').implement({
  fields: (t) => ({
    accessToken: t.field({ type: AccessToken, resolve: (c) => c.accessToken }),
    secret: t.exposeString('secret', { description: 'The token. Shown only in this response; store it now.' }),
  }),
});

builder.queryFields((t) => ({
  hosts: t.connection({
    type: Host,
    authScopes: { capability: 'hosts.view' },
    resolve: (_r, args, ctx) => resolveOffsetConnection({ args }, (page) => ctx.services.hosts.list(ctx.viewer, page)),
  }),
  host: t.field({
    type: Host,
    nullable: true,
    authScopes: { capability: 'hosts.view' },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_r, { id }, ctx) => ctx.services.hosts.get(ctx.viewer, decodeIdOf('Host', String(id), 'id')),
  }),
}));

const CreateHostInput = builder.inputType('CreateHostInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    kind: t.field({ type: HostKind, description: 'Defaults to AGENT.' }),
    description: t.string(),
  }),
});
const UpdateHostInput = builder.inputType('UpdateHostInput', {
  fields: (t) => ({ name: t.string(), description: t.string() }),
});
const CreateConnectionInput = builder.inputType('CreateConnectionInput', {
  fields: (t) => ({
    hostId: t.id({ required: true }),
    gatewayId: t.id({ required: true, description: 'A gateway of this workspace that is not archived.' }),
    name: t.string({ required: true }),
    userId: t.id({ description: 'An active user the agent acts for.' }),
  }),
});
const CreateAccessTokenInput = builder.inputType('CreateAccessTokenInput', {
  fields: (t) => ({
    connectionId: t.id({ required: true }),
    name: t.string({ required: true }),
    expiresInDays: t.int({ description: 'Lifetime in days (1–3650). Omit for a token that does not expire.' }),
  }),
});

builder.mutationFields((t) => ({
  createHost: t.field({
    type: Host,
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'host' } },
    args: { input: t.arg({ type: CreateHostInput, required: true }) },
    resolve: (_r, { input }, ctx) => ctx.services.hosts.create(ctx.viewer, stripNulls(input)),
  }),
  updateHost: t.field({
    type: Host,
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'host' } },
    args: { id: t.arg.id({ required: true }), input: t.arg({ type: UpdateHostInput, required: true }) },
    resolve: (_r, { id, input }, ctx) => ctx.services.hosts.update(ctx.viewer, decodeIdOf('Host', String(id), 'id'), stripNulls(input)),
  }),
  setHostDisabled: t.field({
    type: Host,
    description: 'Disables (kill switch) or re-enables a host and with it every one of its connections.',
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'host' } },
    args: { id: t.arg.id({ required: true }), disabled: t.arg.boolean({ required: true }) },
    resolve: (_r, { id, disabled }, ctx) => ctx.services.hosts.setDisabled(ctx.viewer, decodeIdOf('Host', String(id), 'id'), disabled),
  }),
  deleteHost: t.field({
    type: 'ID',
    description: 'Deletes a host with its connections and their access tokens.',
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'deletedHostId' } },
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_r, { id }, ctx) => {
      await ctx.services.hosts.delete(ctx.viewer, decodeIdOf('Host', String(id), 'id'));
      return String(id);
    },
  }),
  createConnection: t.field({
    type: Connection,
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'connection' } },
    args: { input: t.arg({ type: CreateConnectionInput, required: true }) },
    resolve: (_r, { input }, ctx) =>
      ctx.services.hosts.createConnection(ctx.viewer, {
        ...stripNulls(input),
        hostId: decodeIdOf('Host', String(input.hostId), 'input.hostId'),
        gatewayId: decodeIdOf('Gateway', String(input.gatewayId), 'input.gatewayId'),
        ...(input.userId != null && { userId: decodeIdOf('User', String(input.userId), 'input.userId') }),
      }),
  }),
  setConnectionDisabled: t.field({
    type: Connection,
    description: 'Disables (kill switch) or re-enables one connection.',
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'connection' } },
    args: { id: t.arg.id({ required: true }), disabled: t.arg.boolean({ required: true }) },
    resolve: (_r, { id, disabled }, ctx) =>
      ctx.services.hosts.setConnectionDisabled(ctx.viewer, decodeIdOf('Connection', String(id), 'id'), disabled),
  }),
  deleteConnection: t.field({
    type: 'ID',
    description: 'Deletes a connection with its access tokens.',
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'deletedConnectionId' } },
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_r, { id }, ctx) => {
      await ctx.services.hosts.deleteConnection(ctx.viewer, decodeIdOf('Connection', String(id), 'id'));
      return String(id);
    },
  }),
  createAccessToken: t.field({
    type: CreatedAccessTokenType,
    description: 'Mints an API access token for one connection. The secret is returned once.',
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'created' } },
    args: { input: t.arg({ type: CreateAccessTokenInput, required: true }) },
    resolve: (_r, { input }, ctx) =>
      ctx.services.hosts.createAccessToken(ctx.viewer, {
        ...stripNulls(input),
        connectionId: decodeIdOf('Connection', String(input.connectionId), 'input.connectionId'),
      }),
  }),
  revokeAccessToken: t.field({
    type: AccessToken,
    description: 'Revokes a token at once. Revoked tokens stay listed (with includeRevoked) for audit.',
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'accessToken' } },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_r, { id }, ctx) => ctx.services.hosts.revokeAccessToken(ctx.viewer, decodeIdOf('AccessToken', String(id), 'id')),
  }),
}));
