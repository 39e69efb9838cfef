import { resolveArrayConnection, resolveOffsetConnection } from '@pothos/plugin-relay';
import { builder } from '../graphql/builder.js';
import { COMMON_ERRORS } from '../graphql/error-types.js';
import { decodeIdOf, decodeIds, stripNulls } from '../graphql/global-id.js';
import { RoleRef, TeamRef, UserRef } from '../graphql/refs.js';
import { NotFoundError } from '../errors.js';
import type { UserTransition } from './user.service.js';

const UserState = builder.enumType('UserState', {
  values: {
    INVITED: { value: 'invited', description: 'Invited; has not signed in yet.' },
    ACTIVE: { value: 'active' },
    DEACTIVATED: { value: 'deactivated', description: 'Refused everywhere, immediately; history kept.' },
  } as const,
});

export const User = builder.node(UserRef, {
  description: 'A person in the workspace. Exactly one role; any number of teams.',
  authScopes: { capability: 'people.view' },
  id: { resolve: (u) => u.id },
  loadMany: (ids, ctx) => ids.map((id) => ctx.loaders.user.load(id)),
  fields: (t) => ({
    email: t.exposeString('email'),
    name: t.exposeString('name'),
    state: t.field({ type: UserState, resolve: (u) => u.state }),
    role: t.field({
      type: RoleRef,
      resolve: async (u, _a, ctx) => (await ctx.loaders.role.load(u.role_id)) ?? Promise.reject(new NotFoundError('Role', u.role_id)),
    }),
    teams: t.connection({
      type: TeamRef,
      resolve: async (u, args, ctx) => resolveArrayConnection({ args }, await ctx.loaders.userTeams.load(u.id)),
    }),
    invitedAt: t.field({ type: 'DateTime', resolve: (u) => u.invited_at }),
    activatedAt: t.field({ type: 'DateTime', nullable: true, resolve: (u) => u.activated_at }),
    deactivatedAt: t.field({ type: 'DateTime', nullable: true, resolve: (u) => u.deactivated_at }),
    createdAt: t.field({ type: 'DateTime', resolve: (u) => u.created_at }),
  }),
});

const UserFilter = builder.inputType('UserFilter', {
  fields: (t) => ({
    state: t.field({ type: UserState }),
    search: t.string({ description: 'Case-insensitive substring of email or name.' }),
  }),
});

builder.queryFields((t) => ({
  users: t.connection({
    type: User,
    authScopes: { capability: 'people.view' },
    args: { filter: t.arg({ type: UserFilter }) },
    resolve: (_r, args, ctx) =>
      resolveOffsetConnection({ args }, (page) => ctx.services.users.list(ctx.viewer, args.filter ?? {}, page)),
  }),
  user: t.field({
    type: User,
    nullable: true,
    authScopes: { capability: 'people.view' },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_r, { id }, ctx) => ctx.services.users.get(ctx.viewer, decodeIdOf('User', String(id), 'id')),
  }),
}));

const InviteUserInput = builder.inputType('InviteUserInput', {
  fields: (t) => ({
    email: t.string({ required: true }),
    name: t.string(),
    roleId: t.id({ required: true }),
    teamIds: t.idList({ description: 'Teams to add the user to at once.' }),
  }),
});
const UpdateUserInput = builder.inputType('UpdateUserInput', { fields: (t) => ({ name: t.string() }) });

const lifecycle = (action: UserTransition, description: string) =>
  builder.mutationField(`${action}User`, (t) =>
    t.field({
      type: User,
      description,
      errors: { types: [...COMMON_ERRORS], dataField: { name: 'user' } },
      args: { id: t.arg.id({ required: true }) },
      resolve: (_r, { id }, ctx) => ctx.services.users.transition(ctx.viewer, decodeIdOf('User', String(id), 'id'), action),
    }),
  );
lifecycle('activate', 'Marks an invited user active.');
lifecycle('deactivate', 'Deactivates an invited or active user; takes effect everywhere at once.');
lifecycle('reactivate', 'Returns a deactivated user to active.');

builder.mutationFields((t) => ({
  inviteUser: t.field({
    type: User,
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'user' } },
    args: { input: t.arg({ type: InviteUserInput, required: true }) },
    resolve: (_r, { input }, ctx) =>
      ctx.services.users.invite(ctx.viewer, {
        ...stripNulls(input),
        roleId: decodeIdOf('Role', String(input.roleId), 'input.roleId'),
        teamIds: decodeIds('Team', input.teamIds ?? [], 'input.teamIds'),
      }),
  }),
  updateUser: t.field({
    type: User,
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'user' } },
    args: { id: t.arg.id({ required: true }), input: t.arg({ type: UpdateUserInput, required: true }) },
    resolve: (_r, { id, input }, ctx) =>
      ctx.services.users.update(ctx.viewer, decodeIdOf('User', String(id), 'id'), stripNulls(input)),
  }),
  changeUserRole: t.field({
    type: User,
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'user' } },
    args: { id: t.arg.id({ required: true }), roleId: t.arg.id({ required: true }) },
    resolve: (_r, { id, roleId }, ctx) =>
      ctx.services.users.changeRole(
        ctx.viewer,
        decodeIdOf('User', String(id), 'id'),
        decodeIdOf('Role', String(roleId), 'roleId'),
      ),
  }),
}));
