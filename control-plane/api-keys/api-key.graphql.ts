import { resolveOffsetConnection } from '@pothos/plugin-relay';
import { NotFoundError } from '../errors.js';
import { builder } from '../graphql/builder.js';
import { COMMON_ERRORS } from '../graphql/error-types.js';
import { decodeIdOf, stripNulls } from '../graphql/global-id.js';
import { ApiKeyRef, RoleRef } from '../graphql/refs.js';
import type { CreatedApiKey } from './api-key.service.js';

export const ApiKey = builder.node(ApiKeyRef, {
  description: 'An admin API key for integrators and tooling. Acts with its role in its workspace.',
  authScopes: { capability: 'workspace.view_settings' },
  id: { resolve: (k) => k.id },
  loadMany: async (ids, ctx) => {
    const rows = await ctx.services.apiKeys.byIds(ctx.viewer.workspaceId, ids);
    return ids.map((id) => rows.find((r) => r.id === id) ?? null);
  },
  fields: (t) => ({
    name: t.exposeString('name'),
    prefix: t.exposeString('token_prefix', { description: 'The first characters of the key, to recognise it.' }),
    role: t.field({
      type: RoleRef,
      resolve: async (k, _a, ctx) => (await ctx.loaders.role.load(k.role_id)) ?? Promise.reject(new NotFoundError('Role', k.role_id)),
    }),
    createdBy: t.exposeString('created_by'),
    createdAt: t.field({ type: 'DateTime', resolve: (k) => k.created_at }),
    lastUsedAt: t.field({ type: 'DateTime', nullable: true, description: 'Accurate to about a minute.', resolve: (k) => k.last_used_at }),
    revokedAt: t.field({ type: 'DateTime', nullable: true, resolve: (k) => k.revoked_at }),
  }),
});

const CreatedApiKeyType = builder.objectRef<CreatedApiKey>('CreatedApiKey').implement({
  fields: (t) => ({
    apiKey: t.field({ type: ApiKey, resolve: (c) => c.apiKey }),
    secret: t.exposeString('secret', { description: 'The key. Shown only in this response; store it now.' }),
  }),
});

builder.queryFields((t) => ({
  apiKeys: t.connection({
    type: ApiKey,
    authScopes: { capability: 'workspace.view_settings' },
    args: { includeRevoked: t.arg.boolean({ defaultValue: false }) },
    resolve: (_r, args, ctx) =>
      resolveOffsetConnection({ args }, (page) => ctx.services.apiKeys.list(ctx.viewer, args.includeRevoked ?? false, page)),
  }),
}));

const CreateApiKeyInput = builder.inputType('CreateApiKeyInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    roleId: t.id({ required: true, description: 'The role the key acts with; it cannot exceed your own.' }),
  }),
});

builder.mutationFields((t) => ({
  createApiKey: t.field({
    type: CreatedApiKeyType,
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'created' } },
    args: { input: t.arg({ type: CreateApiKeyInput, required: true }) },
    resolve: (_r, { input }, ctx) =>
      ctx.services.apiKeys.create(ctx.viewer, {
        ...stripNulls(input),
        roleId: decodeIdOf('Role', String(input.roleId), 'input.roleId'),
      }),
  }),
  revokeApiKey: t.field({
    type: ApiKey,
    description: 'Revokes a key at once. Revoked keys stay listed (with includeRevoked) for audit.',
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'apiKey' } },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_r, { id }, ctx) => ctx.services.apiKeys.revoke(ctx.viewer, decodeIdOf('ApiKey', String(id), 'id')),
  }),
}));
