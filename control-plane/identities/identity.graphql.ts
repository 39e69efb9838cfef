import { resolveOffsetConnection } from '@pothos/plugin-relay';
import { NotFoundError } from '../errors.js';
import { builder } from '../graphql/builder.js';
import { COMMON_ERRORS } from '../graphql/error-types.js';
import { decodeIdOf } from '../graphql/global-id.js';
import { IdentityRef, ServerRef } from '../graphql/refs.js';

const IdentityKind = builder.enumType('IdentityKind', {
  values: {
    SHARED: { value: 'shared', description: 'The one service credential of a server, used by its shared-scheme assignments.' },
    PERSONAL: { value: 'personal', description: "A user's own credential for a server (personal-scheme assignments)." },
  } as const,
});

export const Identity = builder.node(IdentityRef, {
  description:
    'A credential Gatehouse presents to one upstream server. Only the handle is shown: secret values stay encrypted in the vault and are never returned.',
  authScopes: { capability: 'identities.view' },
  id: { resolve: (i) => i.id },
  loadMany: (ids, ctx) => ids.map((id) => ctx.loaders.identity.load(id)),
  fields: (t) => ({
    kind: t.field({ type: IdentityKind, resolve: (i) => i.kind }),
    name: t.exposeString('name'),
    server: t.field({
      type: ServerRef,
      resolve: async (i, _a, ctx) => (await ctx.loaders.server.load(i.server_id)) ?? Promise.reject(new NotFoundError('Server', i.server_id)),
    }),
    disabled: t.exposeBoolean('disabled', {
      description: 'Kill switch: while a shared identity is disabled, every shared-scheme assignment of its server is out of service.',
    }),
    createdAt: t.field({ type: 'DateTime', resolve: (i) => i.created_at }),
    updatedAt: t.field({ type: 'DateTime', resolve: (i) => i.updated_at }),
  }),
});

builder.objectField(ServerRef, 'sharedIdentity', (t) =>
  t.field({
    type: Identity,
    nullable: true,
    authScopes: { capability: 'identities.view' },
    description: 'The identity fronting the server’s auth headers; null for a server without header auth.',
    resolve: (s, _a, ctx) => ctx.loaders.sharedIdentity.load(s.id),
  }),
);

builder.queryFields((t) => ({
  identities: t.connection({
    type: Identity,
    authScopes: { capability: 'identities.view' },
    resolve: (_r, args, ctx) => resolveOffsetConnection({ args }, (page) => ctx.services.identities.list(ctx.viewer, page)),
  }),
  identity: t.field({
    type: Identity,
    nullable: true,
    authScopes: { capability: 'identities.view' },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_r, { id }, ctx) => ctx.services.identities.get(ctx.viewer, decodeIdOf('Identity', String(id), 'id')),
  }),
}));

builder.mutationFields((t) => ({
  setIdentityDisabled: t.field({
    type: Identity,
    description: 'Disables (kill switch) or re-enables an identity: every assignment that authenticates with it stops, on every gateway.',
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'identity' } },
    args: { id: t.arg.id({ required: true }), disabled: t.arg.boolean({ required: true }) },
    resolve: (_r, { id, disabled }, ctx) => ctx.services.identities.setDisabled(ctx.viewer, decodeIdOf('Identity', String(id), 'id'), disabled),
  }),
}));
